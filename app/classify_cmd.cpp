// fervid classify and fervid eval: inputs -> (labels, shard, resume) -> the engine -> per-video
// rows (and per-frame rows), and for eval the metrics, the JSON summary and the confusion heat
// map. All classifying is the engine's (fervid/fervid.h); this file is options, files and rows.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "cli.h"
#include "dataset.h"
#include "fervid/fervid.h"
#include "metrics.h"
#include "output.h"
#include "rows.h"

namespace fervid::cli {

namespace fs = std::filesystem;

namespace {

class ProgressLine {
 public:
  explicit ProgressLine(bool enabled) : enabled_(enabled) {}
  void update(const Progress& p) {
    if (!enabled_) return;
    std::ostringstream line;
    line << "\r\033[K" << p.videos_done << "/" << p.videos_total << " videos, " << std::fixed
         << std::setprecision(1) << (p.seconds > 0 ? double(p.frames) / p.seconds : 0.0)
         << " frames/s";
    if (p.videos_done > 0 && p.videos_done < p.videos_total) {
      const int eta =
          int(p.seconds / double(p.videos_done) * double(p.videos_total - p.videos_done));
      line << ", ETA " << eta / 60 << "m" << std::setw(2) << std::setfill('0') << eta % 60 << "s";
    }
    std::cerr << line.str() << std::flush;
    shown_ = true;
  }
  void clear() {
    if (shown_) std::cerr << "\r\033[K" << std::flush;
    shown_ = false;
  }

 private:
  bool enabled_, shown_ = false;
};

EvalRow eval_row(const nlohmann::json& row, const std::vector<std::string>& classes, int truth,
                 int actor) {
  EvalRow r;
  r.path = row["video"].get<std::string>();
  r.truth = truth;
  r.actor = actor;
  if (row["label"].is_string()) {
    auto it = std::find(classes.begin(), classes.end(), row["label"].get<std::string>());
    r.predicted = it == classes.end() ? -1 : int(it - classes.begin());
    for (const auto& c : classes)
      r.counts.push_back(row.contains("counts") ? row["counts"].value(c, int64_t(0)) : 0);
  } else {
    r.error = row.value("status", "error");
  }
  return r;
}

EvalRow eval_row(const VideoResult& r, const LabelledInput& l) {
  EvalRow e;
  e.path = r.path;
  e.truth = l.truth;
  e.actor = l.actor;
  e.error = r.error;
  if (r.ok()) {
    e.predicted = r.label;
    e.counts = r.counts;
  }
  return e;
}

// The options of a run, typed: everything that does not need the weights, checked up front.
struct Settings {
  Format format = Format::Table;
  Shard shard;
  RavdessFilter filter;
  EngineOptions engine;
  std::string crop;  // "" = the card's
  std::optional<VoteMode> vote;
  DecoderChoice decoder = DecoderChoice::Auto;
  bool stage_streams = true;
};

Settings settings_of(const RunArgs& a, bool eval) {
  if (a.logits && a.frames.empty()) fail("--logits adds columns to --frames FILE; give --frames");
  Settings s;
  s.format = parse_format(a.format);
  if (a.resume && (a.output.empty() || s.format != Format::Jsonl))
    fail("--resume continues a JSON Lines output: give --output FILE --format jsonl");
  if (a.resume && !a.frames.empty())
    fail(
        "--resume continues the per-video rows only; run without --frames (or write the frame "
        "rows in a run of their own)");
  s.shard = a.shard.empty() ? Shard{} : Shard::parse(a.shard);
  s.filter = RavdessFilter::parse(a.actors, a.emotions, a.modality, a.channel);
  if (!eval && s.filter.any())
    fail("--actors, --emotions, --modality and --channel select a dataset for `fervid eval`");
  s.engine = engine_options(a.device, a.precision, a.threads, a.conv_impl, a.cuda_graphs);
  s.engine.max_batch = a.batch;
  s.crop = a.crop;
  if (!a.vote.empty()) s.vote = parse_vote(a.vote);
  s.decoder = parse_decoder(a.decoder);
  s.stage_streams = parse_on_off("--stage-streams", a.stage_streams);
  return s;
}

// The inputs, labelled for eval, then this shard's share.
std::vector<LabelledInput> job_of(const RunArgs& a, bool eval, const Settings& s,
                                  const ModelSpec& spec, std::string* notice) {
  std::vector<LabelledInput> job;
  if (eval) {
    job = label_inputs(expand_inputs(a.inputs), spec.classes, a.labels, s.filter, notice);
    if (job.empty())
      fail("eval: no inputs left to evaluate" + (notice->empty() ? "" : " (" + *notice + ")"));
  } else {
    for (InputItem& item : expand_inputs(a.inputs)) job.push_back({std::move(item), -1, 0});
  }
  std::vector<std::string> paths;
  for (const auto& j : job) paths.push_back(j.item.path);
  std::vector<LabelledInput> mine;
  for (size_t i : shard_positions(paths, s.shard)) mine.push_back(job[i]);
  return mine;
}

// What makes rows comparable: --resume and merge refuse rows written with other settings. Only
// JSON Lines rows (and so --resume) and eval's summary carry them: the weights are read once more
// for their fingerprint only then.
nlohmann::json run_identity(const RunArgs& a, const Settings& s, const Engine& engine,
                            const ClassifyOptions& opt, const std::string& crop) {
  if (s.format != Format::Jsonl && a.summary.empty()) return nullptr;
  const ModelSpec& spec = engine.spec();
  return {{"weights", file_fingerprint(a.weights)},
          {"model", spec.name},
          {"classes", spec.classes},
          {"precision", precision_name(engine.precision())},
          {"vote", vote_name(opt.vote)},
          {"crop", crop},
          {"stride", a.stride},
          {"max_frames", a.max_frames}};
}

// --resume: the rows already written (FILE.part of an interrupted run, or FILE), each checked
// against this run's settings.
std::vector<nlohmann::json> previous_rows(const RunArgs& a, const nlohmann::json& run) {
  std::vector<nlohmann::json> previous;
  if (!a.resume) return previous;
  const std::string part = a.output + ".part";
  const std::string from = fs::exists(part) ? part : fs::exists(a.output) ? a.output : "";
  if (!from.empty()) previous = read_rows(from);
  for (const auto& row : previous) {
    const std::string why = run_mismatch(row["run"], run);
    if (!why.empty())
      fail("--resume: " + from + " was written with other settings (" + why +
           "); use another --output or the same settings");
  }
  if (!a.quiet)
    std::cerr << "fervid: resuming " << (from.empty() ? a.output : from) << ": " << previous.size()
              << " videos already done\n";
  return previous;
}

// The inputs still to classify after --resume, with their labels.
struct Todo {
  std::vector<InputItem> items;
  std::vector<const LabelledInput*> labels;
};

Todo todo_of(const std::vector<LabelledInput>& job, const std::vector<nlohmann::json>& previous) {
  std::set<std::string> done;
  for (const auto& row : previous) done.insert(row["video"].get<std::string>());
  Todo todo;
  for (const LabelledInput& j : job)
    if (!done.count(j.item.path)) {
      todo.items.push_back(j.item);
      todo.labels.push_back(&j);
    }
  return todo;
}

// eval's rows of the videos --resume found done.
std::vector<EvalRow> previous_eval_rows(const std::vector<LabelledInput>& job,
                                        const std::vector<nlohmann::json>& previous,
                                        const std::vector<std::string>& classes) {
  std::map<std::string, const LabelledInput*> label_of;
  for (const LabelledInput& j : job) label_of[j.item.path] = &j;
  std::vector<EvalRow> rows;
  for (const auto& row : previous) {
    auto it = label_of.find(row["video"].get<std::string>());
    if (it != label_of.end())
      rows.push_back(eval_row(row, classes, it->second->truth, it->second->actor));
  }
  return rows;
}

void print_summary(const RunStats& stats, const Engine& engine, VoteMode vote) {
  std::ostringstream s;
  s << "fervid: " << (stats.videos_ok + stats.videos_failed) << " videos (" << stats.videos_failed
    << " failed), " << stats.frames << " frames in " << std::fixed << std::setprecision(2)
    << stats.seconds << " s (" << std::setprecision(1)
    << (stats.seconds > 0 ? stats.frames / stats.seconds : 0.0) << " frames/s) on "
    << engine.backend_name() << ", vote " << vote_name(vote) << "\n";
  std::cerr << s.str();
}

// eval's outputs: the metrics on stdout, the JSON summary and the confusion heat map on request.
int score(const RunArgs& a, const ModelSpec& spec, const std::vector<EvalRow>& rows,
          const nlohmann::json& run) {
  const EvalMetrics m = compute_metrics(rows, spec.classes);
  std::cout << metrics_text(m);
  if (!a.summary.empty()) {
    nlohmann::json summary = metrics_json(m);
    summary["run"] = run;
    summary["labels"] = a.labels.empty() ? "RAVDESS file names" : a.labels;
    if (!a.shard.empty()) summary["shard"] = a.shard;
    write_file(a.summary, summary.dump(2) + "\n");
  }
  if (!a.confusion.empty()) {
    const std::string part = a.confusion + ".part";
    std::ostringstream title;
    title << spec.name << ": video accuracy " << std::fixed << std::setprecision(1)
          << 100 * m.video_accuracy << " %, " << m.videos << " videos";
    write_confusion_png(m, part, title.str());
    fs::rename(part, a.confusion);
  }
  return m.videos_failed;
}

}  // namespace

EngineOptions engine_options(const std::string& device, const std::string& precision, int threads,
                             const std::string& conv_impl, const std::string& cuda_graphs) {
  EngineOptions o;
  o.backend.device = parse_device(device);
  o.backend.precision = parse_precision(precision);
  o.backend.threads = threads;
  o.backend.conv_impl = parse_conv_impl(conv_impl);
  o.backend.cuda_graphs = parse_on_off("--cuda-graphs", cuda_graphs);
  return o;
}

int run_videos(const RunArgs& a, bool eval) {
  const Settings s = settings_of(a, eval);
  Weights weights = load_weights(a.weights, a.spec);
  const ModelSpec spec = weights.spec;
  const std::string crop = s.crop.empty() ? spec.crop : s.crop;
  ClassifyOptions opt;
  opt.batch = a.batch;
  opt.sampling = {a.stride, a.max_frames};
  opt.sampling.fps = a.fps;
  opt.crop = CropSpec::parse(crop);
  opt.vote = s.vote.value_or(spec.vote);
  opt.keep_frames = !a.frames.empty();
  opt.keep_logits = a.logits;
  opt.stage_streams = s.stage_streams;
  opt.decoder = s.decoder;
  opt.decode_threads = a.decode_threads;
  check_classify_options(opt, a.batch);
  std::string notice;
  const std::vector<LabelledInput> job = job_of(a, eval, s, spec, &notice);
  Engine engine(std::move(weights), s.engine);
  const nlohmann::json run = run_identity(a, s, engine, opt, crop);
  const std::vector<nlohmann::json> previous = previous_rows(a, run);

  const Todo todo = todo_of(job, previous);

  std::optional<AtomicFile> out_file, frames_file;
  if (!a.output.empty()) out_file.emplace(a.output, s.format == Format::Jsonl);
  if (!a.frames.empty()) frames_file.emplace(a.frames);
  // eval prints its metrics; its per-video rows go to --output only.
  std::ostringstream discard;
  std::ostream& out = out_file ? out_file->stream() : eval ? discard : std::cout;
  VideoWriter videos(out, s.format, spec.classes, run, eval);
  std::optional<FrameWriter> frame_rows;
  if (frames_file) {
    frame_rows.emplace(frames_file->stream(), spec.classes, a.logits);
    frame_rows->header();
  }
  for (const auto& row : previous) out << row.dump() << "\n";
  out.flush();

  std::vector<EvalRow> eval_rows = previous_eval_rows(job, previous, spec.classes);

  if (!notice.empty() && !a.quiet) std::cerr << "fervid: " << notice << "\n";
  ProgressLine progress(!a.quiet && isatty(STDERR_FILENO));
  const NoticeSink run_notice = [&](const std::string& line) {
    if (!a.quiet) std::cerr << "fervid: notice: " << line << "\n";
  };
  const RunStats stats = engine.classify(
      todo.items, opt,
      [&](const VideoResult& r, const Progress& p) {
        const LabelledInput& l = *todo.labels[p.videos_done - 1];
        videos.row(r, l.truth >= 0 ? spec.classes[size_t(l.truth)] : "");
        if (frame_rows) frame_rows->rows(r);
        if (!r.ok() || !r.warning.empty()) {
          progress.clear();
          if (!r.ok()) std::cerr << "fervid: " << r.error << "\n";
          if (!r.warning.empty())
            std::cerr << "fervid: warning: " << r.path << ": " << r.warning << "\n";
        }
        if (eval) eval_rows.push_back(eval_row(r, l));
        progress.update(p);
      },
      run_notice);
  progress.clear();
  videos.end();
  if (out_file) out_file->commit();
  if (frames_file) frames_file->commit();
  if (!a.quiet) print_summary(stats, engine, opt.vote);
  const int failed = eval ? score(a, spec, eval_rows, run) : stats.videos_failed;
  return failed > 0 ? kExitSomeFailed : kExitOk;
}

}  // namespace fervid::cli
