// fervid classify, fervid eval and fervid merge: inputs -> (labels, shard, resume) -> the
// classifier -> per-video rows (and per-frame rows), and for eval the metrics, the JSON summary
// and the confusion heat map.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "cli.h"
#include "dataset.h"
#include "fervid/backend.h"
#include "fervid/error.h"
#include "fervid/pipeline.h"
#include "fervid/weights.h"
#include "metrics.h"
#include "output.h"

namespace fervid::cli {

namespace fs = std::filesystem;

namespace {

Weights load_weights(const std::string& path, const std::string& spec) {
  if (spec.empty()) return Weights::load(path);
  auto [s, origin] = resolve_spec(spec);
  return Weights::load(path, s, origin);
}

// Which weights produced a row, cheaply: FNV-1a (64 bits) over the file's 64-bit words (and its
// last bytes), read once in 1 MiB blocks.
std::string file_fingerprint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path + ": cannot read");
  constexpr uint64_t kPrime = 1099511628211ull;
  uint64_t h = 1469598103934665603ull;
  std::vector<uint64_t> buf((1 << 20) / 8);
  while (in) {
    in.read(reinterpret_cast<char*>(buf.data()), std::streamsize(buf.size() * 8));
    const size_t got = size_t(in.gcount());
    for (size_t i = 0; i < got / 8; ++i) h = (h ^ buf[i]) * kPrime;
    const auto* tail = reinterpret_cast<const uint8_t*>(buf.data()) + got / 8 * 8;
    for (size_t i = 0; i < got % 8; ++i) h = (h ^ tail[i]) * kPrime;
  }
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

// The rows of a JSON Lines output. A last line cut short by a killed run is dropped.
std::vector<nlohmann::json> read_rows(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail(path + ": cannot read");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  std::vector<nlohmann::json> rows;
  for (size_t i = 0; i < lines.size(); ++i) {
    nlohmann::json row = nlohmann::json::parse(lines[i], nullptr, false);
    if (row.is_discarded() && i + 1 == lines.size()) break;  // cut short
    if (row.is_discarded() || !row.is_object() || !row.contains("video") || !row.contains("run"))
      fail(path + ":" + std::to_string(i + 1) +
           ": not a row of fervid's JSON Lines output (--format jsonl)");
    rows.push_back(std::move(row));
  }
  return rows;
}

// "" when equal, else the first setting that differs, as "KEY OLD, this run has NEW".
std::string run_mismatch(const nlohmann::json& had, const nlohmann::json& now) {
  for (const auto& [key, value] : now.items()) {
    if (!had.contains(key)) return key + " missing";
    if (had[key] != value) return key + " " + had[key].dump() + ", this run has " + value.dump();
  }
  for (const auto& [key, value] : had.items())
    if (!now.contains(key)) return key + " " + value.dump() + ", this run has none";
  return "";
}

class Progress {
 public:
  Progress(size_t total, bool enabled)
      : total_(total), enabled_(enabled), t0_(std::chrono::steady_clock::now()) {}
  void update(size_t videos, int64_t frames) {
    if (!enabled_) return;
    const double s = seconds();
    std::ostringstream line;
    line << "\r\033[K" << videos << "/" << total_ << " videos, " << std::fixed
         << std::setprecision(1) << (s > 0 ? double(frames) / s : 0.0) << " frames/s";
    if (videos > 0 && videos < total_) {
      const int eta = int(s / double(videos) * double(total_ - videos));
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
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }
  size_t total_;
  bool enabled_, shown_ = false;
  std::chrono::steady_clock::time_point t0_;
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

// Writes `text` to `path` through PATH.part, renamed when complete.
void write_file(const std::string& path, const std::string& text) {
  AtomicFile f(path);
  f.stream() << text;
  f.commit();
}

}  // namespace

bool on_off(const std::string& option, const std::string& value) {
  if (value != "on" && value != "off") fail(option + " " + value + ": expected on or off");
  return value == "on";
}

std::unique_ptr<Backend> backend_for(const std::string& device, const std::string& precision,
                                     int threads, const std::string& conv_impl,
                                     const std::string& cuda_graphs) {
  BackendOptions o{device, precision, threads, conv_impl};
  o.cuda_graphs = on_off("--cuda-graphs", cuda_graphs);
  return make_backend(o);
}

std::string graphs_text(const Backend& backend) {
  const ReplayStats r = backend.replay_stats();
  if (!r.failure.empty()) return "CUDA graphs: off after a failed capture (" + r.failure + ")";
  if (!r.enabled) return "CUDA graphs: off";
  return "CUDA graphs: on, " + std::to_string(r.graphs) + " captured, " +
         std::to_string(r.replays) + " replays";
}

DecoderKind decoder_for(const std::string& requested, const Backend& backend, const CropSpec& crop,
                        const std::vector<InputItem>& inputs, bool quiet) {
  std::string notice;
  const DecoderKind kind =
      choose_decoder(requested, backend.device(), crop.mode == CropSpec::Mode::Face, &notice);
  const bool videos = std::any_of(inputs.begin(), inputs.end(),
                                  [](const InputItem& i) { return i.kind == InputKind::Video; });
  if (!notice.empty() && videos && !quiet) std::cerr << "fervid: notice: " << notice << "\n";
  return kind;
}

int run_videos(const RunArgs& a, bool eval) {
  if (a.batch < 1) fail("--batch must be at least 1");
  if (a.stride < 1) fail("--stride must be at least 1");
  if (a.max_frames < 0) fail("--max-frames must be 0 (no cap) or more");
  if (a.logits && a.frames.empty()) fail("--logits adds columns to --frames FILE; give --frames");
  const Format format = parse_format(a.format);
  if (a.resume && (a.output.empty() || format != Format::Jsonl))
    fail("--resume continues a JSON Lines output: give --output FILE --format jsonl");
  if (a.resume && !a.frames.empty())
    fail(
        "--resume continues the per-video rows only; run without --frames (or write the frame "
        "rows in a run of their own)");
  const Shard shard = a.shard.empty() ? Shard{} : Shard::parse(a.shard);
  const RavdessFilter filter = RavdessFilter::parse(a.actors, a.emotions, a.modality, a.channel);
  if (!eval && filter.any())
    fail("--actors, --emotions, --modality and --channel select a dataset for `fervid eval`");

  Weights weights = load_weights(a.weights, a.spec);
  const ModelSpec& spec = weights.spec;
  ClassifyOptions opt;
  opt.batch = a.batch;
  opt.sampling = {a.stride, a.max_frames};
  const std::string crop = a.crop.empty() ? spec.crop : a.crop;
  opt.crop = CropSpec::parse(crop);
  opt.vote = a.vote.empty() ? spec.vote : parse_vote(a.vote);
  opt.keep_frames = !a.frames.empty();
  opt.keep_logits = a.logits;
  opt.stage_streams = on_off("--stage-streams", a.stage_streams);

  // The inputs, labelled for eval, then this shard's share.
  std::vector<LabelledInput> job;
  std::string notice;
  if (eval) {
    job = label_inputs(expand_inputs(a.inputs), spec.classes, a.labels, filter, &notice);
    if (job.empty())
      fail("eval: no inputs left to evaluate" + (notice.empty() ? "" : " (" + notice + ")"));
  } else {
    for (InputItem& item : expand_inputs(a.inputs)) job.push_back({std::move(item), -1, 0});
  }
  {
    std::vector<std::string> paths;
    for (const auto& j : job) paths.push_back(j.item.path);
    std::vector<LabelledInput> mine;
    for (size_t i : shard_positions(paths, shard)) mine.push_back(job[i]);
    job = std::move(mine);
  }

  auto backend = backend_for(a.device, a.precision, a.threads, a.conv_impl, a.cuda_graphs);
  {
    std::vector<InputItem> items;
    for (const auto& j : job) items.push_back(j.item);
    opt.decoder = decoder_for(a.decoder, *backend, opt.crop, items, a.quiet);
  }
  opt.decode_threads = a.decode_threads;
  Model model(weights, *backend, a.batch);
  // What makes rows comparable: --resume and merge refuse rows written with other settings.
  // Only JSON Lines rows (and so --resume) and eval's summary carry them: the weights are read
  // once more for their fingerprint only then.
  nlohmann::json run;
  if (format == Format::Jsonl || !a.summary.empty())
    run = {{"weights", file_fingerprint(a.weights)},
           {"model", spec.name},
           {"classes", spec.classes},
           {"precision", backend->precision()},
           {"vote", vote_name(opt.vote)},
           {"crop", crop},
           {"stride", a.stride},
           {"max_frames", a.max_frames}};

  // --resume: the rows already written (FILE.part of an interrupted run, or FILE).
  std::vector<nlohmann::json> previous;
  if (a.resume) {
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
      std::cerr << "fervid: resuming " << (from.empty() ? a.output : from) << ": "
                << previous.size() << " videos already done\n";
  }
  std::set<std::string> done;
  for (const auto& row : previous) done.insert(row["video"].get<std::string>());
  std::vector<InputItem> todo;
  std::vector<const LabelledInput*> todo_labels;
  for (const LabelledInput& j : job)
    if (!done.count(j.item.path)) {
      todo.push_back(j.item);
      todo_labels.push_back(&j);
    }

  std::optional<AtomicFile> out_file, frames_file;
  if (!a.output.empty()) out_file.emplace(a.output, format == Format::Jsonl);
  if (!a.frames.empty()) frames_file.emplace(a.frames);
  // eval prints its metrics; its per-video rows go to --output only.
  std::ostringstream discard;
  std::ostream& out = out_file ? out_file->stream() : eval ? discard : std::cout;
  VideoWriter videos(out, format, spec.classes, run, eval);
  std::optional<FrameWriter> frame_rows;
  if (frames_file) {
    frame_rows.emplace(frames_file->stream(), spec.classes, a.logits);
    frame_rows->header();
  }
  if (format != Format::Jsonl) videos.header();
  for (const auto& row : previous) out << row.dump() << "\n";
  out.flush();

  std::map<std::string, const LabelledInput*> label_of;
  for (const LabelledInput& j : job) label_of[j.item.path] = &j;
  std::vector<EvalRow> eval_rows;
  for (const auto& row : previous) {
    auto it = label_of.find(row["video"].get<std::string>());
    if (it != label_of.end())
      eval_rows.push_back(eval_row(row, spec.classes, it->second->truth, it->second->actor));
  }

  if (!notice.empty() && !a.quiet) std::cerr << "fervid: " << notice << "\n";
  Progress progress(todo.size(), !a.quiet && isatty(STDERR_FILENO));
  size_t finished = 0;
  int64_t frames_seen = 0;
  Classifier classifier(model, opt);
  RunStats stats = classifier.run(todo, [&](const VideoResult& r) {
    const LabelledInput& l = *todo_labels[finished++];
    const std::string truth = l.truth >= 0 ? spec.classes[size_t(l.truth)] : "";
    videos.row(r, truth);
    if (frame_rows) frame_rows->rows(r);
    frames_seen += r.frames;
    if (!r.ok() || !r.warning.empty()) {
      progress.clear();
      if (!r.ok()) std::cerr << "fervid: " << r.error << "\n";
      if (!r.warning.empty())
        std::cerr << "fervid: warning: " << r.path << ": " << r.warning << "\n";
    }
    if (eval) {
      EvalRow e;
      e.path = r.path;
      e.truth = l.truth;
      e.actor = l.actor;
      e.error = r.error;
      if (r.ok()) {
        e.predicted = r.label;
        e.counts = r.counts;
      }
      eval_rows.push_back(std::move(e));
    }
    progress.update(finished, frames_seen);
  });
  progress.clear();
  if (out_file) out_file->commit();
  if (frames_file) frames_file->commit();
  if (!a.quiet) {
    std::ostringstream s;
    s << "fervid: " << (stats.videos_ok + stats.videos_failed) << " videos (" << stats.videos_failed
      << " failed), " << stats.frames << " frames in " << std::fixed << std::setprecision(2)
      << stats.seconds << " s (" << std::setprecision(1)
      << (stats.seconds > 0 ? stats.frames / stats.seconds : 0.0) << " frames/s) on "
      << backend->name() << ", vote " << vote_name(opt.vote) << "\n";
    std::cerr << s.str();
    if (!backend->replay_stats().failure.empty())
      std::cerr << "fervid: notice: " << graphs_text(*backend)
                << "; the frame stage ran op by op\n";
  }
  int failed = stats.videos_failed;
  if (eval) {
    const EvalMetrics m = compute_metrics(eval_rows, spec.classes);
    failed = m.videos_failed;
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
  }
  return failed > 0 ? kExitSomeFailed : kExitOk;
}

int merge_outputs(const std::string& output, const std::vector<std::string>& inputs) {
  if (inputs.empty()) fail("merge: give the shard outputs to join");
  std::vector<nlohmann::json> rows;
  nlohmann::json run;
  std::string run_from;
  std::map<std::string, std::string> seen;  // video -> the file it came from
  for (const std::string& path : inputs) {
    if (path.size() > 5 && path.compare(path.size() - 5, 5, ".part") == 0)
      fail(path + ": an unfinished output (finish it with --resume first)");
    for (nlohmann::json& row : read_rows(path)) {
      if (run.is_null()) {
        run = row["run"];
        run_from = path;
      }
      const std::string why = run_mismatch(run, row["run"]);
      if (!why.empty())
        fail(path + " was written with other settings than " + run_from + " (" + why + ")");
      const std::string video = row["video"].get<std::string>();
      auto [it, fresh] = seen.emplace(video, path);
      if (!fresh) fail(video + " is in both " + it->second + " and " + path);
      rows.push_back(std::move(row));
    }
  }
  std::stable_sort(rows.begin(), rows.end(), [](const nlohmann::json& x, const nlohmann::json& y) {
    return x["video"].get<std::string>() < y["video"].get<std::string>();
  });
  std::ostringstream text;
  for (const auto& row : rows) text << row.dump() << "\n";
  write_file(output, text.str());
  std::cerr << "fervid: merged " << rows.size() << " videos from " << inputs.size()
            << " files into " << output << "\n";
  return kExitOk;
}

}  // namespace fervid::cli
