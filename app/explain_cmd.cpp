// fervid explain: per input, a classify run with per-frame rows, the frames that most raised the
// winner's probability and a few evenly spaced ones explained by Grad-CAM (docs/explain.md), drawn
// as overlays on their crops, every class's probability over time, the maps as .npy, and
// explain.json listing it all.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "annotate.h"
#include "canvas.h"
#include "cli.h"
#include "explain.h"
#include "fervid/error.h"
#include "fervid/output_file.h"
#include "output.h"

namespace fervid::cli {

using scoring::Canvas;
using scoring::draw_text;
using scoring::heat_colour;
using scoring::Rgb;
using scoring::series_colour;
using scoring::text_height;
using scoring::text_width;
using scoring::write_png;

std::vector<ChosenFrame> choose_frames(const VideoResult& r, int cls, int top, int spaced) {
  const int64_t n = int64_t(r.frame_rows.size());
  std::map<size_t, ChosenFrame> chosen;  // by position in frame_rows
  std::vector<size_t> order(size_t(n), 0);
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  // The winner's probability, largest first; ties by position (the frames' order).
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return r.frame_rows[a].probs[size_t(cls)] > r.frame_rows[b].probs[size_t(cls)];
  });
  for (int k = 0; k < std::min<int64_t>(top, n); ++k) {
    ChosenFrame& c = chosen[order[size_t(k)]];
    c.row = order[size_t(k)];
    c.top_rank = k + 1;
  }
  for (int j = 0; j < std::min<int64_t>(spaced, n); ++j) {
    const size_t at = spaced == 1 ? size_t(n / 2)
                                  : size_t(std::llround(double(j) * double(n - 1) / (spaced - 1)));
    ChosenFrame& c = chosen[at];
    c.row = at;
    c.spaced = true;
  }
  std::vector<ChosenFrame> out;
  for (const auto& [row, c] : chosen) out.push_back(c);
  return out;
}

std::string npy_f32(const std::vector<float>& data, const std::vector<int64_t>& shape) {
  std::string dims;
  for (size_t i = 0; i < shape.size(); ++i) dims += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) dims += ",";
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  // Magic, version 1.0, header length; the header padded with spaces so that the data starts
  // at a multiple of 64, ending in a newline.
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += char(header.size() & 0xff);
  out += char(header.size() >> 8);
  out += header;
  out.append(reinterpret_cast<const char*>(data.data()), data.size() * sizeof(float));
  return out;
}

namespace {

// The crop of the source frame resized to `size` x `size` (bilinear, half-pixel centres), the
// heat map blended over it, and a caption below.
Canvas overlay(const FrameExplanation& e, int size, const std::vector<std::string>& lines) {
  const int th = text_height(), pad = 6;
  Canvas c(size, size + int(lines.size()) * (th + 4) + 2 * pad, {255, 255, 255});
  const CropRect& cr = e.crop;
  const int S = e.map_size;
  const double cos_a = std::cos(double(cr.angle)), sin_a = std::sin(double(cr.angle));
  auto sample = [](double s, int n) {  // source coordinate of a half-pixel-centred output
    s = std::clamp(s, 0.0, double(n - 1));
    const int i0 = int(s), i1 = std::min(i0 + 1, n - 1);
    return std::tuple<int, int, double>(i0, i1, s - i0);
  };
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      // The frame's pixel under (x, y) of the crop (turned by its angle about its centre, as
      // the network saw it), clamped to the frame.
      const double dx = (x + 0.5) * double(cr.width) / size - 0.5 - (cr.width - 1) / 2.0;
      const double dy = (y + 0.5) * double(cr.height) / size - 0.5 - (cr.height - 1) / 2.0;
      const double fx = cr.x + (cr.width - 1) / 2.0 + cos_a * dx - sin_a * dy;
      const double fy = cr.y + (cr.height - 1) / 2.0 + sin_a * dx + cos_a * dy;
      const auto [x0, x1, ax] = sample(fx, e.width);
      const auto [y0, y1, ay] = sample(fy, e.height);
      // The map's value there (the map covers the crop at S x S).
      const auto [mx0, mx1, bx] = sample((x + 0.5) * double(S) / size - 0.5, S);
      const auto [my0, my1, by] = sample((y + 0.5) * double(S) / size - 0.5, S);
      auto m = [&](int yy, int xx) { return double(e.map[size_t(yy) * S + xx]); };
      const double v = (1 - by) * ((1 - bx) * m(my0, mx0) + bx * m(my0, mx1)) +
                       by * ((1 - bx) * m(my1, mx0) + bx * m(my1, mx1));
      const Rgb heat = heat_colour(float(v));
      const uint8_t hc[3] = {heat.r, heat.g, heat.b};
      uint8_t* out = &c.rgb[(size_t(y) * c.w + x) * 3];
      for (int ch = 0; ch < 3; ++ch) {
        auto px = [&](int yy, int xx) {
          return double(e.rgb[(size_t(yy) * e.width + xx) * 3 + ch]);
        };
        const double img = (1 - ay) * ((1 - ax) * px(y0, x0) + ax * px(y0, x1)) +
                           ay * ((1 - ax) * px(y1, x0) + ax * px(y1, x1));
        out[ch] = uint8_t(std::lround(std::clamp(0.55 * img + 0.45 * hc[ch], 0.0, 255.0)));
      }
    }
  int y = size + pad;
  for (const std::string& line : lines) {
    draw_text(c, pad, y, line, {0, 0, 0});
    y += th + 4;
  }
  return c;
}

// About 6 ticks with labels under the time axis at `y`, at round steps from t0 to t1.
template <typename Px>
void time_ticks(Canvas& c, double t0, double t1, Px&& px, int y, Rgb colour) {
  const double span = t1 - t0, raw = span / 6, mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double f : {1.0, 2.0, 5.0, 10.0})
    if (f * mag >= raw) {
      step = f * mag;
      break;
    }
  for (double t = std::ceil(t0 / step) * step; t <= t1 + 1e-9; t += step) {
    c.line(px(t), y, px(t), y + 5, colour);
    const std::string label = fixed(std::abs(t) < step * 1e-6 ? 0.0 : t, step < 1 ? 1 : 0);
    draw_text(c, int(px(t)) - text_width(label) / 2, y + 8, label, colour);
  }
}

// Every class's probability over time, the frames shown marked, the vote's result in the title.
Canvas timeline(const VideoResult& r, const std::vector<std::string>& classes,
                const std::vector<double>& marks, const std::string& title) {
  const int th = text_height();
  int legend = 0;  // the widest name, with the winner's " *"
  for (const auto& name : classes) legend = std::max(legend, text_width(name + " *"));
  const int left = 16 + text_width("1.0") + 8, top = 16 + th + 12, plot_w = 760, plot_h = 300;
  const int right = 24 + 28 + legend + 16, bottom = 12 + th + 8 + th + 12;
  Canvas c(left + plot_w + right, top + plot_h + bottom);
  const Rgb black{0, 0, 0}, grey{190, 190, 190}, light{235, 235, 235};
  draw_text(c, 16, 12, title, black);
  double t0 = 0, t1 = 1;
  if (!r.frame_rows.empty()) {
    t0 = r.frame_rows.front().time_s;
    t1 = r.frame_rows.back().time_s;
    for (const FrameResult& f : r.frame_rows)
      t0 = std::min(t0, f.time_s), t1 = std::max(t1, f.time_s);
  }
  if (!(t1 > t0)) t1 = t0 + 1;
  // A little room at both ends, so that the first and last frames' marks and lines stay off
  // the axes.
  const double room = 0.02 * (t1 - t0);
  t0 -= room;
  t1 += room;
  auto px = [&](double t) { return left + (t - t0) / (t1 - t0) * plot_w; };
  auto py = [&](double p) { return top + (1 - p) * plot_h; };
  for (int i = 0; i <= 4; ++i) {  // horizontal grid and labels 0 .. 1
    const double p = i / 4.0;
    c.line(left, py(p), left + plot_w, py(p), light);
    const std::string label = fixed(p, 2);
    draw_text(c, left - 8 - text_width(label), int(py(p)) - th / 2, label, black);
  }
  for (double m : marks) c.line(px(m), top, px(m), top + plot_h, grey, 2);
  time_ticks(c, t0, t1, px, top + plot_h, black);
  draw_text(c, left + plot_w / 2 - text_width("time_s") / 2, top + plot_h + 12 + th, "time_s",
            black);
  for (size_t k = 0; k < classes.size(); ++k) {
    const Rgb col = series_colour(int(k));
    const int width = int(k) == r.label ? 3 : 2;
    for (size_t i = 0; i + 1 < r.frame_rows.size(); ++i) {
      const FrameResult &a = r.frame_rows[i], &b = r.frame_rows[i + 1];
      c.line(px(a.time_s), py(a.probs[k]), px(b.time_s), py(b.probs[k]), col, width);
    }
    if (r.frame_rows.size() == 1) {
      const FrameResult& a = r.frame_rows[0];
      c.fill(int(px(a.time_s)) - 3, int(py(a.probs[k])) - 3, int(px(a.time_s)) + 4,
             int(py(a.probs[k])) + 4, col);
    }
    // The legend: a swatch and the name (the winner's marked).
    const int ly = top + int(k) * (th + 8), lx = left + plot_w + 24;
    c.fill(lx, ly + th / 2 - 2, lx + 22, ly + th / 2 + 2, col);
    draw_text(c, lx + 28, ly, classes[k] + (int(k) == r.label ? " *" : ""), black);
  }
  // The frame of the plot.
  c.line(left, top, left, top + plot_h, black);
  c.line(left, top + plot_h, left + plot_w, top + plot_h, black);
  return c;
}

// What one explain run shares across its inputs.
struct ExplainRun {
  const ExplainArgs& args;
  const ModelSpec& spec;
  Engine& engine;
  const ClassifyOptions& options;
  int cls_named;               // --class, or -1: each video's label
  std::set<std::string> used;  // the folder names given so far
};

// The explained frames of one video, each an overlay PNG in `dir`; returns their explain.json
// entries, and their maps and times in `maps` and `marks`.
nlohmann::json write_frames(ExplainRun& run, const VideoResult& r, int cls,
                            const std::vector<ChosenFrame>& chosen,
                            const std::vector<FrameExplanation>& ex, const std::string& dir,
                            std::vector<float>& maps, std::vector<double>& marks) {
  namespace fs = std::filesystem;
  const std::vector<std::string>& classes = run.spec.classes;
  nlohmann::json frames = nlohmann::json::array();
  for (size_t i = 0; i < ex.size(); ++i) {
    const FrameExplanation& e = ex[i];
    const FrameResult& row = r.frame_rows[chosen[i].row];
    char name[64];
    std::snprintf(name, sizeof name, "frame_%06lld.png", static_cast<long long>(e.frame_index));
    const std::string file = dir + "/" + name;
    const std::string why = chosen[i].top_rank > 0 ? "top " + std::to_string(chosen[i].top_rank) +
                                                         (chosen[i].spaced ? ", spaced" : "")
                                                   : "spaced";
    const std::vector<std::string> lines{
        classes[size_t(cls)] + " " + fixed(row.probs[size_t(cls)], 3) + "  (" + why + ")",
        "frame " + std::to_string(e.frame_index) + ", t " + fixed(e.time_s, 2) + " s" +
            (row.track > 0 ? ", face #" + std::to_string(row.track) : ""),
        "frame's label: " + classes[size_t(row.label)]};
    write_png(overlay(e, run.args.size, lines),
              OutputTarget::at((fs::path(run.args.out) / file).string(), "--out"));
    maps.insert(maps.end(), e.map.begin(), e.map.end());
    marks.push_back(e.time_s);
    nlohmann::json entry{
        {"frame", e.frame_index},
        {"time_s", e.time_s},
        {"class", classes[size_t(cls)]},
        {"probability", row.probs[size_t(cls)]},
        {"frame_label", classes[size_t(row.label)]},
        {"chosen_as", why},
        {"crop", nlohmann::json::array({e.crop.x, e.crop.y, e.crop.width, e.crop.height})},
        {"crop_angle", crop_degrees(e.crop.angle)},
        {"file", file}};
    if (run.options.crop.mode == CropSpec::Mode::Face)
      entry["track"] = row.track > 0 ? nlohmann::json(row.track) : nlohmann::json(nullptr);
    frames.push_back(std::move(entry));
  }
  return frames;
}

// One input: classified with per-frame rows, its chosen frames explained and written with the
// maps and the timeline into a folder of its own. Returns its explain.json entry; a bad input
// throws InputError.
nlohmann::json explain_video(ExplainRun& run, const InputItem& input) {
  namespace fs = std::filesystem;
  const ExplainArgs& a = run.args;
  const ModelSpec& spec = run.spec;
  VideoResult r;
  run.engine.classify({input}, run.options,
                      [&](const VideoResult& res, const Progress&) { r = res; });
  if (!r.ok()) fail_input(r.error);
  if (r.frame_rows.empty()) fail_input(input.path + ": no frames to explain");
  const int cls = run.cls_named >= 0 ? run.cls_named : r.label;
  const std::vector<ChosenFrame> chosen = choose_frames(r, cls, a.top, a.spaced);
  std::vector<ExplainRequest> requests;
  for (const ChosenFrame& c : chosen)
    requests.push_back({r.frame_rows[c.row].frame_index, r.frame_rows[c.row].crop, cls});
  const std::vector<FrameExplanation> ex =
      run.engine.explain(input, run.options.sampling, requests);
  const std::string dir = unique_name_for(input_file_name(input.path), run.used);
  std::error_code ec;
  fs::create_directories(fs::path(a.out) / dir, ec);
  if (ec) fail_option(a.out + "/" + dir + ": cannot make the folder (" + ec.message() + ")");
  std::vector<float> maps;
  std::vector<double> marks;
  const nlohmann::json frames = write_frames(run, r, cls, chosen, ex, dir, maps, marks);
  const int S = spec.input_size;
  write_output(OutputTarget::at((fs::path(a.out) / dir / "maps.npy").string(), "--out"),
               npy_f32(maps, {int64_t(ex.size()), S, S}));
  const std::string title = fs::path(input.path).filename().string() + ": " +
                            spec.classes[size_t(r.label)] + " (" + vote_name(r.vote) + " vote, " +
                            std::to_string(r.frames) + " frames)";
  write_png(timeline(r, spec.classes, marks, title),
            OutputTarget::at((fs::path(a.out) / dir / "timeline.png").string(), "--out"));
  if (!a.run.quiet)
    std::cerr << "fervid: " << input.path << ": " << spec.classes[size_t(r.label)] << ", "
              << ex.size() << " frames explained in " << (fs::path(a.out) / dir).string() << "\n";
  return {{"video", input.path},
          {"label", spec.classes[size_t(r.label)]},
          {"vote", vote_name(r.vote)},
          {"frames_used", r.frames},
          {"class_explained", spec.classes[size_t(cls)]},
          {"timeline", dir + "/timeline.png"},
          {"maps", dir + "/maps.npy"},
          {"frames", frames}};
}

// --class as an index of the card's classes, or -1.
int class_named(const std::string& cls, const ModelSpec& spec) {
  if (cls.empty()) return -1;
  const auto it = std::find(spec.classes.begin(), spec.classes.end(), cls);
  if (it == spec.classes.end()) fail_option("--class " + cls + ": not a class of " + spec.name);
  return int(it - spec.classes.begin());
}

}  // namespace

int run_explain(const ExplainArgs& a) {
  check_explain_args(a);
  const ClassifyArgs& ra = a.run;
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(a.out, ec) && !fs::is_directory(a.out, ec))
    fail_option("--out " + a.out + ": exists and is not a folder");
  WalkNotes walked;
  const std::vector<InputItem> inputs = expand_inputs(ra.inputs, &walked);
  Weights weights = load_weights(ra.weights, ra.spec);
  const ModelSpec spec = weights.spec;
  const bool untrained = weights.untrained();
  const int cls_named = class_named(a.cls, spec);
  OptionValues values = option_values(ra);
  values.explain = true;
  values.keep_frames = true;
  const Plan plan = plan_of(values);
  EngineOptions eo;
  plan.fill(eo);
  if (ra.quiet) eo.notify = [](const std::string&) {};
  const ClassifyOptions opt = plan.for_card(spec);
  fs::create_directories(a.out, ec);
  if (ec) fail_option("--out " + a.out + ": cannot make the folder (" + ec.message() + ")");
  Engine engine(std::move(weights), eo);
  if (!ra.quiet)
    for (const std::string& line : walked.lines()) std::cerr << "fervid: notice: " << line << "\n";
  ExplainRun run{a, spec, engine, opt, cls_named, {}};
  nlohmann::json videos = nlohmann::json::array();
  int failed = 0;
  for (const InputItem& input : inputs) {
    try {
      videos.push_back(explain_video(run, input));
    } catch (const InputError& e) {
      ++failed;
      videos.push_back({{"video", input.path}, {"error", e.what()}});
      std::cerr << "fervid: " << e.what() << "\n";
    }
  }
  nlohmann::json doc{{"weights", ra.weights},
                     {"model", spec.name},
                     {"classes", spec.classes},
                     {"input_size", spec.input_size},
                     {"method", "Grad-CAM at " + spec.conv_layers().back().name +
                                    " (activated, before its pool), maps max-normalised"},
                     {"backend", engine.backend_name()},
                     {"videos", videos}};
  write_output(OutputTarget::at((fs::path(a.out) / "explain.json").string(), "--out"),
               doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  if (untrained) warn_untrained(ra.weights);
  return failed > 0 ? kExitSomeFailed : kExitOk;
}

void check_explain_args(const ExplainArgs& a) {
  if (a.top < 0 || a.spaced < 0) fail_option("--top and --spaced must be 0 or more");
  if (a.top + a.spaced < 1) fail_option("--top and --spaced are both 0: no frame to explain");
  if (a.size < 64 || a.size > 2048) fail_option("--size must be within 64..2048");
  if (a.out.empty()) fail_option("--out names the folder to write");
  check_run_args(a.run, false);
}

}  // namespace fervid::cli
