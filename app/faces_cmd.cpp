// fervid faces: every sampled frame's faces with their track ids (fervid/faces.h), a row per face
// per frame and a row for a frame without one, as CSV or JSON Lines; with --weights each face's
// class and probabilities, and (--tracks) a row per track and per video with their votes. A bad
// input is a row with its error and the run goes on.
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "annotate.h"
#include "cli.h"
#include "fervid/faces.h"
#include "fervid/fervid.h"
#include "fervid/output_file.h"
#include "fervid/plan.h"
#include "output.h"

namespace fervid::cli {

namespace {

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
};

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

void jsonl_rows(std::ostream& out, const FaceRowsFormat& f, const VideoFaces& v) {
  if (!v.ok()) {
    out << json_line({{"video", v.path}, {"error", v.error}}) << "\n";
    return;
  }
  for (const FaceRow& r : v.rows) {
    nlohmann::json j{{"video", v.path}, {"frame", r.frame_index}, {"time_s", r.time_s}};
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
  nlohmann::json j{{"video", v.path},
                   {"track", video ? nlohmann::json(nullptr) : nlohmann::json(t.track)},
                   {"first_frame", t.first_frame},
                   {"last_frame", t.last_frame},
                   {"first_s", t.first_s},
                   {"last_s", t.last_s},
                   {"frames", t.frames},
                   {"classified", t.classified}};
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
      out << json_line({{"video", v.path},
                        {v.ok() ? "face" : "error",
                         v.ok() ? nlohmann::json(nullptr) : nlohmann::json(v.error)}})
          << "\n";
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
  int64_t with_face = 0;
  for (size_t i = 0; i < v.rows.size(); ++i)
    with_face +=
        v.rows[i].track > 0 && (i == 0 || v.rows[i - 1].frame_index != v.rows[i].frame_index);
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

}  // namespace

int run_faces(const FacesArgs& a) {
  FacesOptions o = faces_options(a);
  if (!a.tracks.empty() && a.weights.empty())
    fail_option("faces: --tracks needs --weights (the votes are over classified faces)");
  const OutputTarget target = OutputTarget::at(a.output.empty() ? "-" : a.output, "--output");
  FaceRowsFormat f{rows_format(a.format, target) == Format::Jsonl, {}};
  std::optional<OutputTarget> tracks_target;
  if (!a.tracks.empty()) tracks_target = OutputTarget::at(a.tracks, "--tracks");
  WalkNotes walked;
  const std::vector<InputItem> inputs = expand_inputs(a.inputs, &walked);
  FaceClassifier classifier = face_classifier(a);
  if (classifier.engine) {
    f.classes = classifier.engine->spec().classes;
    o.vote = classifier.vote.value_or(classifier.engine->spec().vote);
    if (a.margin < 0) o.margin = classifier.engine->spec().face_margin;
  }
  FaceTracking tracking(a.detector, o);
  FaceRowsFormat tf{tracks_target && frames_format(*tracks_target) == Format::Jsonl, f.classes};
  OutputFile file(target);
  std::optional<OutputFile> tracks_file;
  if (tracks_target) tracks_file.emplace(*tracks_target);
  if (!f.jsonl) csv_header(file.stream(), f);
  if (tracks_file && !tf.jsonl) tracks_csv_header(tracks_file->stream(), tf);
  const std::vector<OutputTarget> annotated =
      a.annotate.empty() ? std::vector<OutputTarget>{} : annotate_targets(a.annotate, inputs);
  int failed = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const VideoFaces v = tracking.run(inputs[i], classifier.engine.get());
    f.jsonl ? jsonl_rows(file.stream(), f, v) : csv_rows(file.stream(), f, v);
    if (tracks_file) track_rows(tracks_file->stream(), tf, v);
    if (!v.ok()) {
      ++failed;
      std::cerr << "fervid: " << v.error << "\n";
      continue;
    }
    if (!a.quiet) summary_line(f, v);
    if (!annotated.empty() && !annotate_one(inputs[i], v, o.sampling, f, annotated[i])) ++failed;
  }
  file.commit();
  if (tracks_file) tracks_file->commit();
  return failed > 0 ? kExitSomeFailed : kExitOk;
}

}  // namespace fervid::cli
