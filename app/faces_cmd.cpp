// fervid faces: every sampled frame's faces with their track ids (fervid/faces.h), a row per face
// per frame and a row for a frame without one, as CSV or JSON Lines; with --weights each face's
// class and probabilities, and (--tracks) a row per track and per video with their votes. A bad
// input is a row with its error and the run goes on.
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>

#include "annotate.h"
#include "cli.h"
#include "dataset.h"
#include "fervid/crop.h"
#include "fervid/error.h"
#include "fervid/faces.h"
#include "fervid/fervid.h"
#include "fervid/input_file.h"
#include "fervid/output_file.h"
#include "fervid/plan.h"
#include "metrics.h"
#include "output.h"
#include "rows.h"

namespace fervid::cli {

namespace {

namespace fs = std::filesystem;

const char* const kKeypoints[] = {"right_eye", "left_eye",  "nose",
                                  "mouth",     "right_ear", "left_ear"};

std::string num(double v, int digits = 2) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

// How the rows are written: the format, and the classes when faces are classified.
struct FaceRowsFormat {
  bool jsonl = false;
  std::vector<std::string> classes;  // empty: detection and tracking only
  nlohmann::json run;                // JSON Lines: the settings, in each video's closing row
  std::string shard;                 // "K/N" of a --shard run, else ""
  // Scored runs (--labels, --summary, --confusion): each video's true class and actor.
  const std::map<std::string, scoring::LabelledInput>* truth = nullptr;
};

// The frames of a video with at least one face.
int64_t frames_with_face(const VideoFaces& v) {
  int64_t n = 0;
  for (size_t i = 0; i < v.rows.size(); ++i)
    n += v.rows[i].track > 0 && (i == 0 || v.rows[i - 1].frame_index != v.rows[i].frame_index);
  return n;
}

void csv_header(std::ostream& out, const FaceRowsFormat& f) {
  out << "video,frame,time_s,track,x,y,w,h,score";
  for (const char* k : kKeypoints) out << "," << k << "_x," << k << "_y";
  if (!f.classes.empty()) out << ",label";
  for (const std::string& c : f.classes) out << ",p_" << c;
  out << ",status\n";
}

void csv_classes(std::ostream& out, const FaceRowsFormat& f, const FaceRow* r) {
  if (f.classes.empty()) return;
  const bool has = r && r->label >= 0;
  out << "," << (has ? csv_field(f.classes[size_t(r->label)]) : "");
  for (size_t j = 0; j < f.classes.size(); ++j) out << "," << (has ? num(r->probs[j], 6) : "");
}

void csv_empty(std::ostream& out, const FaceRowsFormat& f, size_t fields) {
  for (size_t k = 0; k < fields; ++k) out << ",";
  for (size_t k = 0; k < std::size(kKeypoints); ++k) out << ",,";
  csv_classes(out, f, nullptr);
}

void csv_rows(std::ostream& out, const FaceRowsFormat& f, const VideoFaces& v) {
  if (!v.ok()) {
    out << csv_field(v.path) << ",,";
    csv_empty(out, f, 6);
    out << "," << csv_field("error: " + v.error) << "\n";
    return;
  }
  for (const FaceRow& r : v.rows) {
    out << csv_field(v.path) << "," << r.frame_index << "," << num(r.time_s, 3);
    if (r.track == 0) {
      csv_empty(out, f, 6);
      out << ",no face\n";
      continue;
    }
    out << "," << r.track << "," << num(r.x) << "," << num(r.y) << "," << num(r.w) << ","
        << num(r.h) << "," << num(r.score, 4);
    for (size_t k = 0; k < std::size(kKeypoints); ++k)
      out << "," << (r.keypoints.empty() ? "" : num(r.keypoints[2 * k])) << ","
          << (r.keypoints.empty() ? "" : num(r.keypoints[2 * k + 1]));
    csv_classes(out, f, &r);
    out << "," << (r.keypoints.empty() ? "predicted" : "ok") << "\n";
  }
}

nlohmann::json probs_json(const FaceRowsFormat& f, const std::vector<float>& probs) {
  nlohmann::json j = nlohmann::json::object();
  for (size_t c = 0; c < f.classes.size(); ++c) j[f.classes[c]] = probs[c];
  return j;
}

// A JSON Lines row of `v` beginning with its path (set_video: exact bytes for a non-UTF-8 one).
nlohmann::json video_json(const VideoFaces& v) {
  nlohmann::json j = nlohmann::json::object();
  set_video(j, v.path);
  return j;
}

// The row that closes a video's rows (JSON Lines): what was found, the video's label with
// --weights, and the run's settings (--resume takes a video with this row as done).
nlohmann::json closing_row(const FaceRowsFormat& f, const VideoFaces& v) {
  nlohmann::json j = video_json(v);
  const bool labelled = v.ok() && v.video.label >= 0;
  if (!v.ok()) {
    j["error"] = v.error;
  } else {
    j["frames"] = v.frames;
    j["with_face"] = frames_with_face(v);
    j["tracks"] = v.tracks;
  }
  if (!f.classes.empty()) {
    j["label"] = labelled ? nlohmann::json(f.classes[size_t(v.video.label)]) : nullptr;
    j["main_track"] = labelled ? nlohmann::json(v.video.track) : nullptr;
  }
  j["status"] = !v.ok()                           ? "error: " + v.error
                : v.tracks == 0                   ? std::string("no face")
                : !f.classes.empty() && !labelled ? std::string("no face classified")
                                                  : std::string("ok");
  if (f.truth) {
    const scoring::LabelledInput& l = f.truth->at(v.path);
    j["truth"] = l.truth >= 0 ? f.classes[size_t(l.truth)] : "";  // "": an input not read
    if (l.actor > 0) j["actor"] = l.actor;
    if (v.ok() && v.video.label >= 0) {
      nlohmann::json counts = nlohmann::json::object();
      for (size_t c = 0; c < f.classes.size(); ++c) counts[f.classes[c]] = v.video.counts[c];
      j["counts"] = counts;
    }
  }
  if (!f.shard.empty()) j["shard"] = f.shard;
  j["run"] = f.run;
  return j;
}

void jsonl_rows(std::ostream& out, const FaceRowsFormat& f, const VideoFaces& v) {
  for (const FaceRow& r : v.ok() ? v.rows : std::vector<FaceRow>{}) {
    nlohmann::json j = video_json(v);
    j["frame"] = r.frame_index;
    j["time_s"] = r.time_s;
    if (r.track == 0) {
      j["face"] = nullptr;
    } else {
      j["track"] = r.track;
      j["box"] = {r.x, r.y, r.w, r.h};
      j["score"] = r.score;
      j["detected"] = !r.keypoints.empty();
      if (!r.keypoints.empty()) j["keypoints"] = r.keypoints;
      if (r.label >= 0) {
        j["label"] = f.classes[size_t(r.label)];
        j["probs"] = probs_json(f, r.probs);
      }
    }
    out << json_line(j) << "\n";
  }
  out << json_line(closing_row(f, v)) << "\n";
}

// --tracks: a row per track, then the video's (track empty, main_track set).
void tracks_csv_header(std::ostream& out, const FaceRowsFormat& f) {
  out << "video,track,main_track,first_frame,last_frame,first_s,last_s,frames,classified,label";
  for (const std::string& c : f.classes) out << ",count_" << c;
  for (const std::string& c : f.classes) out << ",p_" << c;
  out << ",status\n";
}

void tracks_csv_row(std::ostream& out, const FaceRowsFormat& f, const VideoFaces& v,
                    const TrackVote* t, bool video) {
  out << csv_field(v.path) << ",";
  if (!t) {
    out << ",,,,,,,,";
    for (size_t j = 0; j < 2 * f.classes.size(); ++j) out << ",";
    out << "," << csv_field(v.ok() ? "no face" : "error: " + v.error) << "\n";
    return;
  }
  out << (video ? "" : std::to_string(t->track)) << "," << (video ? std::to_string(t->track) : "")
      << "," << t->first_frame << "," << t->last_frame << "," << num(t->first_s, 3) << ","
      << num(t->last_s, 3) << "," << t->frames << "," << t->classified << ","
      << (t->label >= 0 ? csv_field(f.classes[size_t(t->label)]) : "");
  for (int32_t c : t->counts) out << "," << c;
  for (double p : t->mean_probs) out << "," << (t->label >= 0 ? num(p, 6) : "");
  out << "," << (t->label >= 0 ? "ok" : "no face classified") << "\n";
}

nlohmann::json track_json(const FaceRowsFormat& f, const VideoFaces& v, const TrackVote& t,
                          bool video) {
  nlohmann::json j = video_json(v);
  j.update(nlohmann::json{{"track", video ? nlohmann::json(nullptr) : nlohmann::json(t.track)},
                          {"first_frame", t.first_frame},
                          {"last_frame", t.last_frame},
                          {"first_s", t.first_s},
                          {"last_s", t.last_s},
                          {"frames", t.frames},
                          {"classified", t.classified}});
  if (video) j["main_track"] = t.track;
  j["label"] = t.label >= 0 ? nlohmann::json(f.classes[size_t(t.label)]) : nlohmann::json(nullptr);
  nlohmann::json counts = nlohmann::json::object();
  for (size_t c = 0; c < f.classes.size(); ++c) counts[f.classes[c]] = t.counts[c];
  j["votes"] = counts;
  if (t.label >= 0)
    j["mean_probs"] = probs_json(f, std::vector<float>(t.mean_probs.begin(), t.mean_probs.end()));
  return j;
}

void track_rows(std::ostream& out, const FaceRowsFormat& f, const VideoFaces& v) {
  const bool any = v.ok() && !v.track_votes.empty();
  if (f.jsonl) {
    if (!any) {
      nlohmann::json j = video_json(v);
      j[v.ok() ? "face" : "error"] = v.ok() ? nlohmann::json(nullptr) : nlohmann::json(v.error);
      out << json_line(j) << "\n";
      return;
    }
    for (const TrackVote& t : v.track_votes) out << json_line(track_json(f, v, t, false)) << "\n";
    out << json_line(track_json(f, v, v.video, true)) << "\n";
    return;
  }
  if (!any) return tracks_csv_row(out, f, v, nullptr, false);
  for (const TrackVote& t : v.track_votes) tracks_csv_row(out, f, v, &t, false);
  tracks_csv_row(out, f, v, &v.video, true);
}

void summary_line(const FaceRowsFormat& f, const VideoFaces& v) {
  const int64_t with_face = frames_with_face(v);
  std::cerr << "fervid: " << v.path << ": " << v.frames << " frames, " << with_face
            << " with a face, " << v.tracks << (v.tracks == 1 ? " track" : " tracks");
  if (!f.classes.empty() && v.video.label >= 0)
    std::cerr << ", " << f.classes[size_t(v.video.label)] << " (track " << v.video.track << ")";
  std::cerr << "\n";
}

// The classifier of --weights, made as classify makes its engine.
struct FaceClassifier {
  std::unique_ptr<Engine> engine;
  std::optional<VoteMode> vote;
};

FaceClassifier face_classifier(const FacesArgs& a) {
  if (a.weights.empty()) return {};
  OptionValues values;
  values.device = a.device;
  values.precision = a.precision;
  values.threads = a.threads;
  values.batch = 16;
  values.vote = a.vote;
  const Plan plan = plan_of(values);
  Weights weights = load_weights(a.weights, a.spec);
  if (weights.untrained()) warn_untrained(a.weights);
  EngineOptions eo;
  plan.fill(eo);
  if (a.quiet) eo.notify = [](const std::string&) {};
  return {std::make_unique<Engine>(std::move(weights), eo), plan.vote};
}

FacesOptions faces_options(const FacesArgs& a) {
  if (a.stride < 1) fail_option("--stride " + std::to_string(a.stride) + ": must be at least 1");
  if (a.margin != -1 && !(a.margin >= 0 && a.margin <= ModelSpec::kMaxFaceMargin))
    fail_option("{{margin}} " + num(a.margin) + ": must lie in 0..2");
  FacesOptions o;
  o.sampling.stride = a.stride;
  o.sampling.max_frames = a.max_frames;
  o.batch = a.batch;
  o.choice = parse_face_choice(a.faces);
  o.margin = a.margin >= 0 ? a.margin : ModelSpec::kDefaultFaceMargin;
  return o;
}

// --annotate for one input; false (said on stderr) when it could not be written.
bool annotate_one(const InputItem& input, const VideoFaces& v, const SamplingOptions& sampling,
                  const FaceRowsFormat& f, const OutputTarget& target) {
  try {
    write_annotated_faces(input, v, sampling, f.classes, target);
    return true;
  } catch (const Error& e) {
    std::cerr << "fervid: --annotate: " << e.what() << "\n";
    return false;
  }
}

// What makes face rows comparable: --resume refuses rows written with other settings.
nlohmann::json run_identity(const FacesArgs& a, const FacesOptions& o, const Engine* classifier) {
  CropSpec crop;
  crop.detector = a.detector;
  nlohmann::json run{{"command", "faces"},
                     {"detector", file_fingerprint(crop.detector_file())},
                     {"stride", a.stride},
                     {"max_frames", a.max_frames}};
  if (!classifier) return run;
  run["weights"] = file_fingerprint(a.weights);
  run["model"] = classifier->spec().name;
  run["classes"] = classifier->spec().classes;
  run["precision"] = precision_name(classifier->precision());
  run["vote"] = vote_name(o.vote);
  run["faces"] = a.faces;
  run["margin"] = o.margin;
  return run;
}

// An earlier run's rows in one of the outputs --resume continues: the .part of an interrupted
// run, else the finished file.
struct Earlier {
  std::string from;
  std::vector<std::string> lines;
  std::vector<nlohmann::json> rows;
};

Earlier earlier_rows(const OutputTarget& t) {
  Earlier e;
  e.from = fs::exists(t.partial()) ? t.partial() : fs::exists(t.file()) ? t.file() : "";
  if (e.from.empty()) return e;
  e.lines = complete_lines(e.from);
  for (size_t i = 0; i < e.lines.size(); ++i) {
    nlohmann::json row = nlohmann::json::parse(e.lines[i], nullptr, false);
    if (!row.is_object() || !row_video_checked(row))
      fail_option("--resume: " + e.from + ":" + std::to_string(i + 1) +
                  ": not a row of fervid faces' JSON Lines output");
    e.rows.push_back(std::move(row));
  }
  return e;
}

// --resume: the videos an earlier run finished. A video is finished when --output holds its
// closing row (written after its face rows) and, with --tracks, the tracks file its last row
// (the video's vote, or its no-face or error row). Both files are cut back to those videos'
// rows (the rows of a video a kill interrupted are dropped and the video is done again) and
// left as FILE.part for this run to append to.
struct Resumed {
  std::set<std::string> done;
  int failed = 0;                       // error rows among them
  std::vector<nlohmann::json> closing;  // their closing rows (scored with this run's)
};

Resumed resume_outputs(const OutputTarget& rows, const std::optional<OutputTarget>& tracks,
                       const nlohmann::json& run, bool quiet) {
  const Earlier out = earlier_rows(rows);
  Resumed r;
  std::set<std::string> failed;
  for (const nlohmann::json& row : out.rows) {
    if (!row.contains("run")) continue;  // a face row
    const std::string why = run_mismatch(row["run"], run);
    if (!why.empty())
      fail_option("--resume: " + out.from + " was written with other settings (" + why +
                  "); use another --output or the same settings");
    r.done.insert(row_video(row));
    if (row.contains("error")) failed.insert(row_video(row));
  }
  std::optional<Earlier> tr;
  if (tracks) {
    tr = earlier_rows(*tracks);
    std::set<std::string> closed;
    for (const nlohmann::json& row : tr->rows)
      if (row.contains("main_track") || row.contains("face") || row.contains("error"))
        closed.insert(row_video(row));
    std::erase_if(r.done, [&](const std::string& v) { return !closed.count(v); });
  }
  for (const std::string& v : failed) r.failed += r.done.count(v) > 0;
  for (const nlohmann::json& row : out.rows)
    if (row.contains("run") && r.done.count(row_video(row))) r.closing.push_back(row);
  // Each file rewritten as FILE.part.tmp with the finished videos' rows, renamed over FILE.part:
  // a kill meanwhile leaves the earlier rows where they were.
  auto keep = [&](const OutputTarget& t, const Earlier& e) {
    if (e.from.empty()) return;
    const std::string tmp = t.partial() + ".tmp";
    {
      std::ofstream o(tmp, std::ios::binary | std::ios::trunc);
      for (size_t i = 0; i < e.lines.size(); ++i)
        if (r.done.count(row_video(e.rows[i]))) o << e.lines[i] << "\n";
      o.flush();
      if (!o) fail("--resume: cannot write " + tmp);
    }
    fs::rename(tmp, t.partial());
  };
  keep(rows, out);
  if (tr) keep(*tracks, *tr);
  if (!quiet && !out.from.empty())
    std::cerr << "fervid: resuming " << out.from << ": " << r.done.size()
              << (r.done.size() == 1 ? " video" : " videos") << " already done\n";
  return r;
}

// The inputs of this run: --shard's share, less those --resume found done.
std::vector<InputItem> inputs_to_do(const std::vector<InputItem>& inputs, const std::string& shard,
                                    const std::set<std::string>& done) {
  std::vector<std::string> paths;
  for (const InputItem& i : inputs) paths.push_back(i.path);
  const scoring::Shard s = shard.empty() ? scoring::Shard{} : scoring::Shard::parse(shard);
  std::vector<InputItem> todo;
  for (size_t i : scoring::shard_positions(paths, s))
    if (!done.count(inputs[i].path)) todo.push_back(inputs[i]);
  return todo;
}

// A scored run (--labels, --summary, --confusion): the inputs labelled as eval labels them (a
// labels CSV, else RAVDESS names), by path; `inputs` becomes the labelled ones.
std::map<std::string, scoring::LabelledInput> label_faces(const FacesArgs& a,
                                                          std::vector<InputItem>& inputs,
                                                          const std::vector<std::string>& classes) {
  std::string notice;
  const std::vector<scoring::LabelledInput> job =
      scoring::label_inputs(inputs, classes, a.labels, scoring::RavdessFilter{}, &notice);
  if (job.empty())
    fail_option("faces: no inputs left to score" + (notice.empty() ? "" : " (" + notice + ")"));
  if (!notice.empty() && !a.quiet) std::cerr << "fervid: " << notice << "\n";
  std::map<std::string, scoring::LabelledInput> truth;
  inputs.clear();
  for (const scoring::LabelledInput& l : job)
    if (truth.emplace(l.item.path, l).second) inputs.push_back(l.item);
  return truth;
}

}  // namespace

int run_faces(const FacesArgs& a) {
  FacesOptions o = faces_options(a);
  if (!a.tracks.empty() && a.weights.empty())
    fail_option("faces: --tracks needs --weights (the votes are over classified faces)");
  if (!a.shard.empty()) scoring::Shard::parse(a.shard);  // a bad K/N fails before any work
  const bool scored = !a.labels.empty() || !a.summary.empty() || !a.confusion.empty();
  if (scored && a.weights.empty())
    fail_option(
        "faces: --labels, --summary and --confusion score the videos' labels: give --weights");
  const OutputTarget target = OutputTarget::at(a.output.empty() ? "-" : a.output, "--output");
  FaceRowsFormat f{rows_format(a.format, target) == Format::Jsonl, {}, nullptr, ""};
  std::optional<OutputTarget> tracks_target;
  if (!a.tracks.empty()) tracks_target = OutputTarget::at(a.tracks, "--tracks");
  const bool tracks_jsonl = tracks_target && frames_format(*tracks_target) == Format::Jsonl;
  if (a.resume && !(target.kind() == OutputTarget::Kind::File && f.jsonl))
    fail_option("--resume continues a JSON Lines output: give --output FILE.jsonl");
  if (a.resume && tracks_target &&
      !(tracks_target->kind() == OutputTarget::Kind::File && tracks_jsonl))
    fail_option("--resume continues JSON Lines outputs: give --tracks FILE.jsonl too");
  std::optional<OutputTarget> summary, confusion;
  if (!a.summary.empty()) summary = OutputTarget::at(a.summary, "--summary");
  if (!a.confusion.empty()) confusion = OutputTarget::at(a.confusion, "--confusion");
  WalkNotes walked;
  std::vector<InputItem> inputs = expand_inputs(a.inputs, &walked);
  {
    // Everything the run writes, apart from each other and from what it reads.
    std::vector<OutputTarget> all{target};
    for (const auto* t : {&tracks_target, &summary, &confusion})
      if (*t) all.push_back(**t);
    std::vector<std::string> read{a.detector, a.weights, a.labels};
    std::erase(read, std::string());
    for (const InputItem& i : inputs)
      if (i.kind == InputKind::Video || i.kind == InputKind::Image) read.push_back(i.path);
    check_distinct(all, read);
  }
  FaceClassifier classifier = face_classifier(a);
  std::map<std::string, scoring::LabelledInput> truth;
  if (classifier.engine) {
    f.classes = classifier.engine->spec().classes;
    o.vote = classifier.vote.value_or(classifier.engine->spec().vote);
    if (a.margin < 0) o.margin = classifier.engine->spec().face_margin;
    if (scored) {
      truth = label_faces(a, inputs, f.classes);
      f.truth = &truth;
    }
  }
  // The detector runs where the classifier does; without one, where --device says.
  o.detector_device =
      classifier.engine
          ? (classifier.engine->backend_name() == "cuda" ? DeviceChoice::Cuda : DeviceChoice::Cpu)
          : parse_device(a.device);
  FaceTracking tracking(a.detector, o);
  if (f.jsonl) f.run = run_identity(a, o, classifier.engine.get());
  if (!a.shard.empty()) {
    const scoring::Shard s = scoring::Shard::parse(a.shard);
    f.shard = std::to_string(s.index) + "/" + std::to_string(s.count);
  }
  const Resumed resumed =
      a.resume ? resume_outputs(target, tracks_target, f.run, a.quiet) : Resumed{};
  const std::vector<InputItem> todo = inputs_to_do(inputs, a.shard, resumed.done);
  FaceRowsFormat tf{tracks_jsonl, f.classes, f.run, f.shard};
  // JSON Lines outputs keep their .part when the run stops early, for --resume.
  OutputFile file(target, f.jsonl, a.resume);
  std::optional<OutputFile> tracks_file;
  if (tracks_target) tracks_file.emplace(*tracks_target, tracks_jsonl, a.resume);
  if (!f.jsonl) csv_header(file.stream(), f);
  if (tracks_file && !tf.jsonl) tracks_csv_header(tracks_file->stream(), tf);
  const std::vector<OutputTarget> annotated =
      a.annotate.empty() ? std::vector<OutputTarget>{} : annotate_targets(a.annotate, todo);
  int failed = resumed.failed;
  std::vector<scoring::EvalRow> scores;
  // The videos an earlier run did, scored by this run's labels (a video this run does not list
  // is left out).
  for (const nlohmann::json& row : resumed.closing) {
    const auto l = truth.find(row_video(row));
    if (scored && l != truth.end())
      scores.push_back(eval_row(row, f.classes, l->second.truth, l->second.actor));
  }
  for (size_t i = 0; i < todo.size(); ++i) {
    const VideoFaces v = tracking.run(todo[i], classifier.engine.get());
    if (scored) scores.push_back(eval_row(closing_row(f, v), f.classes));
    f.jsonl ? jsonl_rows(file.stream(), f, v) : csv_rows(file.stream(), f, v);
    file.stream().flush();  // the face rows before the tracks' (--resume reads them so)
    if (tracks_file) {
      track_rows(tracks_file->stream(), tf, v);
      tracks_file->stream().flush();
    }
    if (!v.ok()) {
      ++failed;
      std::cerr << "fervid: " << v.error << "\n";
      continue;
    }
    if (!a.quiet) summary_line(f, v);
    if (!annotated.empty() && !annotate_one(todo[i], v, o.sampling, f, annotated[i])) ++failed;
  }
  file.commit();
  if (tracks_file) tracks_file->commit();
  if (scored) {
    const scoring::EvalMetrics m = scoring::compute_metrics(scores, f.classes);
    nlohmann::json extra{
        {"run", f.run.is_null() ? run_identity(a, o, classifier.engine.get()) : f.run},
        {"labels", a.labels.empty() ? "RAVDESS file names" : a.labels},
        {"video_label",
         a.faces == "largest" ? "every frame's largest face" : "the main track's vote"}};
    if (!f.shard.empty()) extra["shard"] = f.shard;
    scoring::report_metrics(m, target.is_stdout() ? std::cerr : std::cout, summary, extra,
                            confusion, classifier.engine->spec().name);
    if (m.videos_failed > 0) ++failed;
  }
  return failed > 0 ? kExitSomeFailed : kExitOk;
}

}  // namespace fervid::cli
