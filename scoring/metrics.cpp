#include "metrics.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <map>
#include <sstream>

#include "canvas.h"
#include "fervid/error.h"

namespace fervid::scoring {

namespace {

// Precision, recall and F1 per class from the video confusion matrix; macro-F1 over the classes
// that occur as truth or prediction, UAR over the classes that occur as truth, weighted F1.
void class_scores(EvalMetrics& m) {
  const int n = int(m.classes.size());
  int present = 0;
  double f1_sum = 0;
  for (int c = 0; c < n; ++c) {
    int64_t tp = m.confusion[c][c], truth = 0, predicted = 0;
    for (int k = 0; k < n; ++k) {
      truth += m.confusion[c][k];
      predicted += m.confusion[k][c];
    }
    ClassMetrics& cm = m.per_class[c];
    cm.support = truth;
    cm.precision = predicted ? double(tp) / double(predicted) : 0.0;
    cm.recall = truth ? double(tp) / double(truth) : 0.0;
    cm.f1 = cm.precision + cm.recall > 0 ? 2 * cm.precision * cm.recall / (cm.precision + cm.recall)
                                         : 0.0;
    if (truth || predicted) {
      ++present;
      f1_sum += cm.f1;
    }
  }
  m.macro_f1 = present ? f1_sum / present : 0.0;
  int truths = 0;
  double recall_sum = 0, weighted = 0;
  for (int c = 0; c < n; ++c) {
    if (m.per_class[c].support == 0) continue;
    ++truths;
    recall_sum += m.per_class[c].recall;
    weighted += m.per_class[c].f1 * double(m.per_class[c].support);
  }
  m.uar = truths ? recall_sum / truths : 0.0;
  m.weighted_f1 = m.videos ? weighted / double(m.videos) : 0.0;
}

}  // namespace

EvalMetrics compute_metrics(const std::vector<EvalRow>& rows,
                            const std::vector<std::string>& classes) {
  EvalMetrics m;
  m.classes = classes;
  const int n = int(classes.size());
  m.confusion.assign(n, std::vector<int64_t>(n, 0));
  m.frame_confusion.assign(n, std::vector<int64_t>(n, 0));
  m.per_class.assign(n, {});
  std::map<int, EvalMetrics::Actor> actors;
  for (const EvalRow& r : rows) {
    if (r.predicted < 0 || r.truth < 0) {
      ++m.videos_failed;
      continue;
    }
    ++m.videos;
    ++m.confusion[r.truth][r.predicted];
    const bool correct = r.truth == r.predicted;
    m.videos_correct += correct;
    for (int c = 0; c < n && c < int(r.counts.size()); ++c) {
      m.frame_confusion[r.truth][c] += r.counts[c];
      m.frames += r.counts[c];
    }
    m.frames_correct += r.truth < int(r.counts.size()) ? r.counts[r.truth] : 0;
    if (r.actor > 0) {
      EvalMetrics::Actor& a = actors[r.actor];
      a.actor = r.actor;
      ++a.videos;
      a.correct += correct;
    }
  }
  m.video_accuracy = m.videos ? double(m.videos_correct) / m.videos : 0.0;
  m.frame_accuracy = m.frames ? double(m.frames_correct) / double(m.frames) : 0.0;
  class_scores(m);
  for (const auto& [id, a] : actors) m.per_actor.push_back(a);
  return m;
}

namespace {

std::string pct(double v) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(2) << 100 * v << " %";
  return s.str();
}

}  // namespace

std::string metrics_text(const EvalMetrics& m) {
  std::ostringstream s;
  s << "videos: " << m.videos << " evaluated";
  if (m.videos_failed) s << ", " << m.videos_failed << " failed (not counted)";
  s << "\nframe accuracy: " << pct(m.frame_accuracy) << " (" << m.frames_correct << "/" << m.frames
    << " frames)\nvideo accuracy: " << pct(m.video_accuracy) << " (" << m.videos_correct << "/"
    << m.videos << " videos)\nunweighted average recall (UAR): " << pct(m.uar)
    << "\nmacro-F1: " << std::fixed << std::setprecision(4) << m.macro_f1
    << "\nweighted F1: " << m.weighted_f1 << "\n\n";
  size_t w = 9;
  for (const auto& c : m.classes) w = std::max(w, c.size() + 1);
  s << std::left << std::setw(int(w)) << "class" << std::right << std::setw(10) << "precision"
    << std::setw(10) << "recall" << std::setw(10) << "F1" << std::setw(9) << "videos\n";
  for (size_t c = 0; c < m.classes.size(); ++c) {
    const ClassMetrics& cm = m.per_class[c];
    s << std::left << std::setw(int(w)) << m.classes[c] << std::right << std::setprecision(4)
      << std::setw(10) << cm.precision << std::setw(10) << cm.recall << std::setw(10) << cm.f1
      << std::setw(8) << cm.support << "\n";
  }
  s << "\nconfusion matrix (videos; rows: true class, columns: predicted)\n"
    << std::setw(int(w)) << "";
  size_t cw = 6;
  for (const auto& c : m.classes) cw = std::max(cw, std::min<size_t>(c.size(), 9) + 1);
  for (const auto& c : m.classes) s << std::setw(int(cw)) << c.substr(0, 9);
  s << "\n";
  for (size_t t = 0; t < m.classes.size(); ++t) {
    s << std::left << std::setw(int(w)) << m.classes[t] << std::right;
    for (int64_t v : m.confusion[t]) s << std::setw(int(cw)) << v;
    s << "\n";
  }
  if (!m.per_actor.empty()) {
    s << "\nvideo accuracy per actor:";
    for (const auto& a : m.per_actor)
      s << "\n  actor " << std::setw(2) << a.actor << ": " << pct(double(a.correct) / a.videos)
        << " (" << a.correct << "/" << a.videos << ")";
    s << "\n";
  }
  return s.str();
}

nlohmann::json metrics_json(const EvalMetrics& m) {
  nlohmann::json per_class = nlohmann::json::array(), actors = nlohmann::json::array();
  for (size_t c = 0; c < m.classes.size(); ++c)
    per_class.push_back({{"class", m.classes[c]},
                         {"precision", m.per_class[c].precision},
                         {"recall", m.per_class[c].recall},
                         {"f1", m.per_class[c].f1},
                         {"support", m.per_class[c].support}});
  for (const auto& a : m.per_actor)
    actors.push_back({{"actor", a.actor},
                      {"videos", a.videos},
                      {"correct", a.correct},
                      {"video_accuracy", double(a.correct) / a.videos}});
  return {{"classes", m.classes},
          {"videos", m.videos},
          {"videos_failed", m.videos_failed},
          {"videos_correct", m.videos_correct},
          {"frames", m.frames},
          {"frames_correct", m.frames_correct},
          {"frame_accuracy", m.frame_accuracy},
          {"video_accuracy", m.video_accuracy},
          {"macro_f1", m.macro_f1},
          {"uar", m.uar},
          {"weighted_f1", m.weighted_f1},
          {"per_class", per_class},
          {"confusion", m.confusion},
          {"frame_confusion", m.frame_confusion},
          {"per_actor", actors}};
}

// ---- the PNG heat map ----

PngLayout confusion_png_layout(const std::vector<std::string>& classes) {
  int label = text_width("predicted");
  for (const auto& c : classes) label = std::max(label, text_width(c));
  PngLayout l{};
  l.cell = 56;
  l.left = 8 + text_height() + 8 + label + 10;  // "true" (vertical), then the row labels
  l.top = 8 + text_height() + 8 + label + 10;   // the title, then the column labels (vertical)
  l.right = 16;
  l.bottom = 8 + text_height() + 8;  // "predicted"
  const int n = int(classes.size());
  l.width = l.left + n * l.cell + l.right;
  l.height = l.top + n * l.cell + l.bottom;
  return l;
}

void write_confusion_png(const EvalMetrics& m, const OutputTarget& target,
                         const std::string& title) {
  const PngLayout l = confusion_png_layout(m.classes);
  const int n = int(m.classes.size());
  Canvas c(l.width, l.height);
  const Rgb black{0, 0, 0}, white{255, 255, 255}, grid{200, 200, 200};
  const int th = text_height();
  draw_text(c, 8, 8, title, black);
  draw_text(c, 8, l.top + n * l.cell / 2 + text_width("true") / 2, "true", black, true);
  draw_text(c, l.left + n * l.cell / 2 - text_width("predicted") / 2, l.top + n * l.cell + 8,
            "predicted", black);
  for (int i = 0; i < n; ++i) {
    // Row labels right-aligned before the grid; column labels reading upwards above it.
    draw_text(c, l.left - 10 - text_width(m.classes[i]), l.top + i * l.cell + (l.cell - th) / 2,
              m.classes[i], black);
    draw_text(c, l.left + i * l.cell + (l.cell - th) / 2, l.top - 10, m.classes[i], black, true);
  }
  for (int t = 0; t < n; ++t) {
    int64_t row = 0;
    for (int64_t v : m.confusion[t]) row += v;
    for (int p = 0; p < n; ++p) {
      const int64_t v = m.confusion[t][p];
      const double f = row ? double(v) / double(row) : 0.0;
      // White to dark blue by the fraction of the true class's videos.
      const Rgb shade{uint8_t(std::lround(255 - f * (255 - 8))),
                      uint8_t(std::lround(255 - f * (255 - 48))),
                      uint8_t(std::lround(255 - f * (255 - 107)))};
      const int x0 = l.left + p * l.cell, y0 = l.top + t * l.cell;
      c.fill(x0, y0, x0 + l.cell, y0 + l.cell, grid);
      c.fill(x0 + 1, y0 + 1, x0 + l.cell - 1, y0 + l.cell - 1, shade);
      const std::string text = std::to_string(v);
      draw_text(c, x0 + (l.cell - text_width(text)) / 2, y0 + (l.cell - th) / 2, text,
                f > 0.5 ? white : black);
    }
  }
  write_png(c, target);
}

void report_metrics(const EvalMetrics& m, std::ostream& text,
                    const std::optional<OutputTarget>& summary, const nlohmann::json& extra,
                    const std::optional<OutputTarget>& confusion, const std::string& model) {
  text << metrics_text(m);
  text.flush();
  if (summary) {
    nlohmann::json j = metrics_json(m);
    for (const auto& [key, value] : extra.items()) j[key] = value;
    write_output(*summary, j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  }
  if (confusion) {
    std::ostringstream title;
    title << model << ": video accuracy " << std::fixed << std::setprecision(1)
          << 100 * m.video_accuracy << " %, " << m.videos << " videos";
    write_confusion_png(m, *confusion, title.str());
  }
}

}  // namespace fervid::scoring
