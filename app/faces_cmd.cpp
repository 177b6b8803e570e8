// fervid faces: every sampled frame's faces with their track ids (fervid/faces.h), a row per face
// per frame and a row for a frame without one, as CSV or JSON Lines; a bad input is a row with
// its error and the run goes on.
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli.h"
#include "fervid/faces.h"
#include "fervid/output_file.h"
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

void csv_header(std::ostream& out) {
  out << "video,frame,time_s,track,x,y,w,h,score";
  for (const char* k : kKeypoints) out << "," << k << "_x," << k << "_y";
  out << ",status\n";
}

void csv_rows(std::ostream& out, const VideoFaces& v) {
  if (!v.ok()) {
    out << csv_field(v.path) << ",,,,,,,,";
    for (size_t k = 0; k < std::size(kKeypoints); ++k) out << ",,";
    out << "," << csv_field("error: " + v.error) << "\n";
    return;
  }
  for (const FaceRow& r : v.rows) {
    out << csv_field(v.path) << "," << r.frame_index << "," << num(r.time_s, 3) << ",";
    if (r.track == 0) {
      out << ",,,,,";
      for (size_t k = 0; k < std::size(kKeypoints); ++k) out << ",,";
      out << ",no face\n";
      continue;
    }
    out << r.track << "," << num(r.x) << "," << num(r.y) << "," << num(r.w) << "," << num(r.h)
        << "," << num(r.score, 4);
    for (size_t k = 0; k < std::size(kKeypoints); ++k)
      out << "," << (r.keypoints.empty() ? "" : num(r.keypoints[2 * k])) << ","
          << (r.keypoints.empty() ? "" : num(r.keypoints[2 * k + 1]));
    out << "," << (r.keypoints.empty() ? "predicted" : "ok") << "\n";
  }
}

void jsonl_rows(std::ostream& out, const VideoFaces& v) {
  if (!v.ok()) {
    out << nlohmann::json{{"video", v.path}, {"error", v.error}}.dump() << "\n";
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
    }
    out << j.dump() << "\n";
  }
}

}  // namespace

int run_faces(const FacesArgs& a) {
  if (a.detector.empty()) fail_option("faces: give --detector FILE (tools/export_detector.py)");
  FacesOptions o;
  o.sampling.stride = a.stride;
  o.sampling.max_frames = a.max_frames;
  o.batch = a.batch;
  o.threads = a.threads;
  if (a.stride < 1) fail_option("--stride " + std::to_string(a.stride) + ": must be at least 1");
  const OutputTarget target = OutputTarget::at(a.output.empty() ? "-" : a.output, "--output");
  const bool jsonl = rows_format(a.format, target) == Format::Jsonl;  // else CSV
  WalkNotes walked;
  const std::vector<InputItem> inputs = expand_inputs(a.inputs, &walked);
  FaceTracking tracking(a.detector, o);
  OutputFile file(target);
  if (!jsonl) csv_header(file.stream());
  int failed = 0;
  for (const InputItem& in : inputs) {
    const VideoFaces v = tracking.run(in);
    jsonl ? jsonl_rows(file.stream(), v) : csv_rows(file.stream(), v);
    if (!v.ok()) {
      ++failed;
      std::cerr << "fervid: " << v.error << "\n";
    } else if (!a.quiet) {
      int64_t with_face = 0;
      for (size_t i = 0; i < v.rows.size(); ++i)
        with_face +=
            v.rows[i].track > 0 && (i == 0 || v.rows[i - 1].frame_index != v.rows[i].frame_index);
      std::cerr << "fervid: " << v.path << ": " << v.frames << " frames, " << with_face
                << " with a face, " << v.tracks << (v.tracks == 1 ? " track" : " tracks") << "\n";
    }
  }
  file.commit();
  return failed > 0 ? kExitSomeFailed : kExitOk;
}

}  // namespace fervid::cli
