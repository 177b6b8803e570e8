// Faces in every frame (docs/faces.md): the face detector (MediaPipe's BlazeFace, converted by
// tools/export_detector.py) on every sampled frame of a video, letterboxed, and its detections
// linked into tracks with stable ids. `fervid faces` writes these rows; classification per face
// is the next step.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fervid/inputs.h"
#include "fervid/run.h"

namespace fervid {

struct FacesOptions {
  SamplingOptions sampling;
  int batch = 1;  // frames per detector batch (on the CPU a frame costs more in larger ones)
  float min_score = 0.5f;   // a detection from here starts a track (MediaPipe's threshold)
  float keep_score = 0.3f;  // a detection from here keeps a track going (a face turning)
  double max_gap_s = 1.0;   // how long a track coasts without a detection before it ends
  int threads = 0;          // CPU threads (0: all cores)
};

// One face of one frame, in the frame's pixels, or the frame's row saying it has none
// (track 0).
struct FaceRow {
  int64_t frame_index = 0;
  double time_s = 0;
  int track = 0;
  float x = 0, y = 0, w = 0, h = 0;  // the tracked (filtered) box
  float score = 0;                   // this frame's detection (0: the track coasted)
  std::vector<float> keypoints;      // x, y pairs (eyes, nose, mouth, ears) when detected
};

struct VideoFaces {
  std::string path;
  std::string error;  // "" when the video was read to its end
  int width = 0, height = 0;
  int64_t frames = 0;  // sampled frames
  int tracks = 0;      // tracks reported
  std::vector<FaceRow> rows;
  bool ok() const { return error.empty(); }
};

// The detector's letterbox of a w x h frame into a size x size input: the frame scaled by
// `scale`, its top-left corner at (pad_x, pad_y) input pixels.
struct Letterbox {
  float scale = 1, pad_x = 0, pad_y = 0;
  static Letterbox of(int width, int height, int size);
  float frame_x(float input_x) const { return (input_x - pad_x) / scale; }
  float frame_y(float input_y) const { return (input_y - pad_y) / scale; }
};
// `frame` letterboxed into out [size, size, 3] floats in [-1, 1] (rgb / 127.5 - 1): each input
// pixel the mean of the frame's pixels it covers (area resampling), the bars -1 (black).
void letterbox_frame(const ImageView& frame, int size, float* out);

class FaceTracking {
 public:
  // Loads the detector's weights (safetensors with its card); fails in one line.
  FaceTracking(const std::string& detector, const FacesOptions& options);
  ~FaceTracking();
  FaceTracking(const FaceTracking&) = delete;
  FaceTracking& operator=(const FaceTracking&) = delete;
  // A bad input is its error, never an exception.
  VideoFaces run(const InputItem& input);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fervid
