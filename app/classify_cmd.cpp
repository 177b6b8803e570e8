// fervid classify and fervid eval: inputs -> (labels, shard, resume) -> the engine -> per-video
// rows (and per-frame rows), and for eval the metrics, the JSON summary and the confusion heat
// map. All classifying is the engine's (fervid/fervid.h); this file is options, files and rows.
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "annotate.h"
#include "cli.h"
#include "dataset.h"
#include "fervid/fervid.h"
#include "fervid/output_file.h"
#include "metrics.h"
#include "output.h"
#include "rows.h"

namespace fervid::cli {

using scoring::compute_metrics;
using scoring::EvalMetrics;
using scoring::EvalRow;
using scoring::label_inputs;
using scoring::LabelledInput;
using scoring::RavdessFilter;
using scoring::report_metrics;
using scoring::Shard;
using scoring::shard_positions;

namespace fs = std::filesystem;

namespace {

// The run's progress on stderr: on a terminal a line rewritten in place after every video;
// elsewhere (a Slurm or nohup log) a line every kLogSeconds (FERVID_PROGRESS_SECONDS to change).
class ProgressLine {
 public:
  static constexpr double kLogSeconds = 30;
  explicit ProgressLine(bool enabled) : enabled_(enabled), terminal_(isatty(STDERR_FILENO) == 1) {
    if (const char* s = std::getenv("FERVID_PROGRESS_SECONDS")) every_s_ = std::atof(s);
    next_s_ = every_s_;
  }
  void update(const Progress& p) {
    if (!enabled_) return;
    if (!terminal_) {
      if (p.seconds < next_s_) return;
      next_s_ = p.seconds + every_s_;
      std::cerr << "fervid: progress: " << text(p) << "\n" << std::flush;
      return;
    }
    std::cerr << "\r\033[K" << text(p) << std::flush;
    shown_ = true;
  }
  void clear() {
    if (shown_) std::cerr << "\r\033[K" << std::flush;
    shown_ = false;
  }

 private:
  static std::string text(const Progress& p) {
    std::ostringstream line;
    line << p.videos_done << "/" << p.videos_total << " videos, " << std::fixed
         << std::setprecision(1) << (p.seconds > 0 ? double(p.frames) / p.seconds : 0.0)
         << " frames/s";
    if (p.videos_done > 0 && p.videos_done < p.videos_total) {
      const int eta =
          int(p.seconds / double(p.videos_done) * double(p.videos_total - p.videos_done));
      line << ", ETA " << eta / 60 << "m" << std::setw(2) << std::setfill('0') << eta % 60 << "s";
    }
    return line.str();
  }
  bool enabled_, terminal_, shown_ = false;
  double every_s_ = kLogSeconds, next_s_ = 0;
};

EvalRow eval_row_of(const VideoResult& r, const LabelledInput& l) {
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
  Shard shard;
  RavdessFilter filter;
  Plan plan;
  EngineOptions engine;
};

Settings settings_of(const ClassifyArgs& a, bool eval) {
  if (a.logits && a.frames.empty())
    fail_option("--logits adds columns to --frames FILE; give --frames");
  Settings s;
  s.shard = a.shard.empty() ? Shard{} : Shard::parse(a.shard);
  s.filter = RavdessFilter::parse(a.actors, a.emotions, a.modality, a.channel);
  if (!eval && s.filter.any())
    fail_option(
        "--actors, --emotions, --modality and --channel select a dataset for `fervid eval`");
  s.plan = plan_of(option_values(a));
  s.plan.fill(s.engine);
  if (a.quiet) s.engine.notify = [](const std::string&) {};
  return s;
}

// Where a run writes, decided before any work (fervid/output_file.h, output.h's formats).
struct Outputs {
  std::optional<OutputTarget> rows, frames, summary, confusion;
  std::map<std::string, OutputTarget> annotate;  // input path -> its annotated video
  Format format = Format::Table, frames_format = Format::Csv;
  bool rows_written = true;     // eval writes rows only when asked (--output or --format)
  bool text_to_stderr = false;  // eval's metrics text, when stdout carries rows or the summary
};

Outputs outputs_of(const ClassifyArgs& a, bool eval, const std::vector<InputItem>& inputs) {
  Outputs o;
  std::vector<OutputTarget> all;
  if (!a.output.empty()) all.push_back(*(o.rows = OutputTarget::at(a.output, "--output")));
  o.rows_written = !eval || o.rows || !a.format.empty();
  o.format = rows_format(a.format, o.rows);
  if (o.rows_written && !o.rows) all.push_back(OutputTarget::at("-", "the rows"));
  if (!a.frames.empty()) {
    all.push_back(*(o.frames = OutputTarget::at(a.frames, "--frames")));
    o.frames_format = frames_format(*o.frames);
  }
  if (!a.summary.empty()) all.push_back(*(o.summary = OutputTarget::at(a.summary, "--summary")));
  if (!a.confusion.empty())
    all.push_back(*(o.confusion = OutputTarget::at(a.confusion, "--confusion")));
  if (!a.annotate.empty()) {
    const std::vector<OutputTarget> videos = annotate_targets(a.annotate, inputs);
    for (size_t i = 0; i < videos.size(); ++i) {
      o.annotate.emplace(inputs[i].path, videos[i]);  // a path given twice: its first name
      all.push_back(videos[i]);
    }
  }
  for (const OutputTarget& t : all) o.text_to_stderr = o.text_to_stderr || t.is_stdout();
  if (a.resume &&
      !(o.rows && o.rows->kind() == OutputTarget::Kind::File && o.format == Format::Jsonl))
    fail_option("--resume continues a JSON Lines output: give --output FILE.jsonl");
  if (a.resume && o.frames)
    fail_option(
        "--resume continues the per-video rows only; run without --frames (or write the frame "
        "rows in a run of their own)");
  // Everything the run reads: an output naming one of them is refused.
  std::vector<std::string> read = {a.weights};
  if (!a.labels.empty()) read.push_back(a.labels);
  if (a.crop.rfind("boxes=", 0) == 0) read.push_back(a.crop.substr(6));
  for (const InputItem& i : inputs)
    if (i.kind == InputKind::Video || i.kind == InputKind::Image) read.push_back(i.path);
  check_distinct(all, read);
  return o;
}

// The inputs, labelled for eval, then this shard's share.
std::vector<LabelledInput> job_of(const ClassifyArgs& a, bool eval, const Settings& s,
                                  const std::vector<InputItem>& inputs, const ModelSpec& spec,
                                  std::string* notice) {
  std::vector<LabelledInput> job;
  if (eval) {
    job = label_inputs(inputs, spec.classes, a.labels, s.filter, notice);
    if (job.empty())
      fail_option("eval: no inputs left to evaluate" +
                  (notice->empty() ? "" : " (" + *notice + ")"));
  } else {
    for (const InputItem& item : inputs) job.push_back({item, -1, 0});
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
nlohmann::json run_identity(const ClassifyArgs& a, const Outputs& o, const Engine& engine,
                            const ClassifyOptions& opt, const std::string& crop) {
  if (!(o.rows_written && o.format == Format::Jsonl) && !o.summary) return nullptr;
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
// against this run's settings, and the file they came from.
struct Previous {
  std::vector<nlohmann::json> rows;
  std::string from;
  int failed = 0;  // error rows among them
};

Previous previous_rows(const ClassifyArgs& a, const Outputs& o, const nlohmann::json& run) {
  Previous p;
  if (!a.resume) return p;
  const std::string part = o.rows->partial(), file = o.rows->file();
  p.from = fs::exists(part) ? part : fs::exists(file) ? file : "";
  if (!p.from.empty()) p.rows = read_rows(p.from);
  for (const auto& row : p.rows) {
    const std::string why = run_mismatch(row["run"], run);
    if (!why.empty())
      fail_option("--resume: " + p.from + " was written with other settings (" + why +
                  "); use another --output or the same settings");
    p.failed += !row["label"].is_string();
  }
  if (!a.quiet && !p.from.empty())
    std::cerr << "fervid: resuming " << p.from << ": " << p.rows.size() << " videos already done\n";
  return p;
}

// Continuing a finished FILE: its rows become FILE.part (a copy renamed into place, so that FILE
// stays whole until the run completes), which the run then appends to.
void reopen_finished(const OutputTarget& rows) {
  const std::string tmp = rows.partial() + ".tmp";
  fs::copy_file(rows.file(), tmp, fs::copy_options::overwrite_existing);
  fs::rename(tmp, rows.partial());
}

// The inputs still to classify after --resume, with their labels.
struct Todo {
  std::vector<InputItem> items;
  std::vector<const LabelledInput*> labels;
};

Todo todo_of(const std::vector<LabelledInput>& job, const std::vector<nlohmann::json>& previous) {
  std::set<std::string> done;
  for (const auto& row : previous) done.insert(row_video(row));
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
    auto it = label_of.find(row_video(row));
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

}  // namespace

OptionValues option_values(const ClassifyArgs& a) {
  OptionValues v;
  v.device = a.device;
  v.precision = a.precision;
  v.conv_impl = a.conv_impl;
  v.cuda_graphs = parse_on_off("cuda_graphs", a.cuda_graphs);
  v.threads = a.threads;
  v.batch = a.batch;
  v.stride = a.stride;
  v.max_frames = a.max_frames;
  v.decode_threads = a.decode_threads;
  v.fps = a.fps;
  v.crop = a.crop;
  v.vote = a.vote;
  v.decoder = a.decoder;
  v.stage_streams = parse_on_off("stage_streams", a.stage_streams);
  v.keep_frames = !a.frames.empty() || !a.annotate.empty();
  v.keep_logits = a.logits;
  return v;
}

void check_run_args(const ClassifyArgs& a, bool eval) { settings_of(a, eval); }

void warn_untrained(const std::string& weights) {
  std::cerr << "fervid: warning: " << weights
            << " holds untrained weights (fervid make-weights): its labels mean nothing\n";
}

namespace {

// Everything a classify or eval run settles before the engine exists: the options checked, the
// inputs listed, labelled (eval) and shared out (--shard), where the results go, the weights.
struct CommandPlan {
  Settings settings;
  WalkNotes walked;
  std::vector<InputItem> inputs;
  Outputs outputs;
  Weights weights;
  bool untrained = false;
  ModelSpec spec;
  std::string crop;
  ClassifyOptions options;
  std::vector<LabelledInput> job;
  std::string notice;           // what labelling left out
  std::string classes_warning;  // the card's class order taken on trust
  std::string shard;            // "K/N" of a --shard run, else ""
};

CommandPlan plan_command(const ClassifyArgs& a, bool eval) {
  CommandPlan p;
  p.settings = settings_of(a, eval);
  p.inputs = expand_inputs(a.inputs, &p.walked);
  p.outputs = outputs_of(a, eval, p.inputs);
  p.weights = load_weights(a.weights, a.spec);
  p.untrained = p.weights.untrained();
  p.classes_warning = p.weights.classes_warning();
  p.spec = p.weights.spec;
  p.crop = p.settings.plan.crop_text(p.spec);
  p.options = p.settings.plan.for_card(p.spec);
  p.job = job_of(a, eval, p.settings, p.inputs, p.spec, &p.notice);
  if (!a.shard.empty())
    p.shard = std::to_string(p.settings.shard.index) + "/" + std::to_string(p.settings.shard.count);
  return p;
}

// eval's sink: each video's predicted and true class; at the end the metrics (text, --summary,
// --confusion).
class Scores {
 public:
  Scores(const ClassifyArgs& a, const CommandPlan& p, const nlohmann::json& run,
         const Previous& previous)
      : a_(a), p_(p), run_(run), rows_(previous_eval_rows(p.job, previous.rows, p.spec.classes)) {}
  void take(const VideoResult& r, const LabelledInput& l) { rows_.push_back(eval_row_of(r, l)); }
  // Whether a video failed (this run's or an earlier one's, --resume).
  bool report() const {
    const EvalMetrics m = compute_metrics(rows_, p_.spec.classes);
    nlohmann::json extra{{"run", run_},
                         {"labels", a_.labels.empty() ? "RAVDESS file names" : a_.labels}};
    if (!p_.shard.empty()) extra["shard"] = p_.shard;
    const Outputs& o = p_.outputs;
    report_metrics(m, o.text_to_stderr ? std::cerr : std::cout, o.summary, extra, o.confusion,
                   p_.spec.name);
    return m.videos_failed > 0;
  }

 private:
  const ClassifyArgs& a_;
  const CommandPlan& p_;
  const nlohmann::json& run_;
  std::vector<EvalRow> rows_;
};

// Where a run's results go, each video as it comes, in input order: the rows, the frame rows,
// the annotated videos and, for eval, the scores. finish() completes them.
class Sinks {
 public:
  Sinks(const ClassifyArgs& a, const CommandPlan& p, const nlohmann::json& run,
        const Previous& previous, bool eval)
      : a_(a), spec_(p.spec), outputs_(p.outputs) {
    const Outputs& o = p.outputs;
    if (!previous.from.empty() && previous.from == o.rows->file()) reopen_finished(*o.rows);
    if (o.rows_written)
      rows_file_.emplace(o.rows ? *o.rows : OutputTarget::at("-", "the rows"),
                         o.format == Format::Jsonl, a.resume);
    if (o.frames) frames_file_.emplace(*o.frames);
    std::ostream& out = rows_file_ ? rows_file_->stream() : discard_;
    const bool tracks = p.options.crop.mode == CropSpec::Mode::Face;
    videos_.emplace(
        out, o.format, spec_.classes, run,
        VideoColumns{eval, p.shard, rows_file_ && rows_file_->target().is_terminal(), tracks});
    if (frames_file_) {
      const FrameColumns columns{a.logits, eval, tracks};
      frame_rows_.emplace(frames_file_->stream(), o.frames_format, spec_.classes, columns);
      frame_rows_->header();
    }
    if (eval) scores_.emplace(a, p, run, previous);
    if (!o.annotate.empty()) annotator_.emplace(spec_.classes, p.options.sampling);
  }

  void take(const VideoResult& r, const LabelledInput& l) {
    const RowLabel label{l.truth >= 0 ? spec_.classes[size_t(l.truth)] : "", l.actor};
    videos_->row(r, label);
    if (frame_rows_) frame_rows_->rows(r, label);
    if (annotator_) annotator_->add(l.item, r, outputs_.annotate.at(l.item.path));
    if (scores_) scores_->take(r, l);
  }

  // The rows' files committed, the annotated videos written, eval's metrics reported; whether
  // something failed there (an annotated video, or for eval any video).
  bool finish(size_t videos) {
    videos_->end();
    if (rows_file_) rows_file_->commit();
    if (frames_file_) frames_file_->commit();
    const bool annotate_failed = finish_annotations(videos) > 0;
    return (scores_ && scores_->report()) || annotate_failed;
  }

 private:
  int finish_annotations(size_t videos) {
    if (!annotator_) return 0;
    if (!a_.quiet && videos > 1) std::cerr << "fervid: writing the annotated videos\n";
    const std::vector<std::string> failures = annotator_->finish();
    for (const std::string& line : failures) std::cerr << "fervid: " << line << "\n";
    if (!a_.quiet && annotator_->written() > 0)
      std::cerr << "fervid: " << annotator_->written() << " annotated "
                << (annotator_->written() == 1 ? "video" : "videos") << " (" << annotator_->codec()
                << ") in " << a_.annotate << "\n";
    return int(failures.size());
  }

  const ClassifyArgs& a_;
  const ModelSpec& spec_;
  const Outputs& outputs_;
  std::optional<OutputFile> rows_file_, frames_file_;
  std::ostringstream discard_;  // the rows of an eval that writes none
  std::optional<VideoWriter> videos_;
  std::optional<FrameWriter> frame_rows_;
  std::optional<Annotator> annotator_;
  std::optional<Scores> scores_;
};

void print_notices(const ClassifyArgs& a, const CommandPlan& p) {
  if (!p.classes_warning.empty()) std::cerr << "fervid: warning: " << p.classes_warning << "\n";
  if (a.quiet) return;
  if (!p.notice.empty()) std::cerr << "fervid: " << p.notice << "\n";
  for (const std::string& line : p.walked.lines()) std::cerr << "fervid: notice: " << line << "\n";
}

// A video's error or warning on stderr, below the progress line.
void print_problems(const VideoResult& r, ProgressLine& progress) {
  if (r.ok() && r.warning.empty()) return;
  progress.clear();
  if (!r.ok()) std::cerr << "fervid: " << r.error << "\n";
  if (!r.warning.empty()) std::cerr << "fervid: warning: " << r.path << ": " << r.warning << "\n";
}

}  // namespace

int classify_videos(const ClassifyArgs& a, bool eval) {
  CommandPlan p = plan_command(a, eval);
  Engine engine(std::move(p.weights), p.settings.engine);
  const nlohmann::json run = run_identity(a, p.outputs, engine, p.options, p.crop);
  const Previous previous = previous_rows(a, p.outputs, run);
  const Todo todo = todo_of(p.job, previous.rows);
  Sinks sinks(a, p, run, previous, eval);
  print_notices(a, p);
  ProgressLine progress(!a.quiet);
  const NoticeSink run_notice = [&](const std::string& line) {
    if (!a.quiet) std::cerr << "fervid: notice: " << line << "\n";
  };
  const RunStats stats = engine.classify(
      todo.items, p.options,
      [&](const VideoResult& r, const Progress& prog) {
        sinks.take(r, *todo.labels[prog.videos_done - 1]);
        print_problems(r, progress);
        progress.update(prog);
      },
      run_notice);
  progress.clear();
  const bool sink_failed = sinks.finish(todo.items.size());
  if (p.untrained) warn_untrained(a.weights);
  if (!a.quiet) print_summary(stats, engine, p.options.vote);
  const bool failed = sink_failed || (!eval && stats.videos_failed + previous.failed > 0);
  return failed ? kExitSomeFailed : kExitOk;
}

}  // namespace fervid::cli
