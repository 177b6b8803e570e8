// Faces in every frame (docs/faces.md): the face detector (MediaPipe's BlazeFace, converted by
// tools/export_detector.py) on every sampled frame of a video, letterboxed, and its detections
// linked into tracks with stable ids; with an Engine, each face classified on its own aligned
// crop and a vote per track. `fervid faces` writes these rows.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fervid/inputs.h"
#include "fervid/options.h"
#include "fervid/run.h"

namespace fervid {

class Engine;

// Which faces of a frame are classified: every tracked face, or the largest alone (one person
// in front of the camera, RAVDESS style: the video's vote is over each frame's largest face).
enum class FaceChoice { All, Largest };
FaceChoice parse_face_choice(const std::string& text);  // "all" | "largest"

struct FacesOptions {
  SamplingOptions sampling;
  // Frames per detector batch (on the CPU a frame costs more in larger ones). The detector runs
  // on one CPU thread whatever the process's thread count: its layers are too small to share
  // (on two threads, fork and join took most of the time; docs/faces.md).
  int batch = 1;
  // Where the detector runs: the CPU (one thread), or the GPU (Cuda; Auto: the GPU when one is
  // there), as a batch of frames letterboxed on the host, only the raw outputs copied back.
  DeviceChoice detector_device = DeviceChoice::Cpu;
  float min_score = 0.5f;     // a detection from here starts a track (MediaPipe's threshold)
  float keep_score = 0.3f;    // a detection from here keeps a track going (a face turning)
  double max_gap_s = 1.0;     // how long a track coasts without a detection before it ends
  double report_gap_s = 0.2;  // of that, how long it is still reported ("predicted" rows)
  // With an Engine (FaceTracking::run): which faces are classified, the margin of the aligned
  // square crop on each side (a share of the box's larger side), and the vote per track.
  FaceChoice choice = FaceChoice::All;
  double margin = 0.25;
  VoteMode vote = VoteMode::Confidence;
  // Where frames are cut for the detector and the classifier. Host: RGB frames (swscale's, the
  // reference path) letterboxed and cropped on the host, the inputs copied to the backends.
  // Backend: video frames kept in YUV 4:2:0, each uploaded once into the detector backend's
  // memory, letterboxed and its faces cut there (FaceFrameOps), only boxes and results coming
  // back; the classifier must run on the same kind of backend. Auto: Backend when the detector
  // runs on the GPU and the classifier (if any) too. Frames that are not 4:2:0 video (images,
  // rotated or 4:4:4 video) take the host path either way.
  enum class FramePath { Auto, Host, Backend };
  FramePath frame_path = FramePath::Auto;
  // On the backend path with a backend that reads frames in device memory: videos decoded by
  // NVDEC straight into it (auto: where the driver has it, else libavcodec on the CPU; nvdec:
  // refused in one line without it), or by libavcodec (cpu) and uploaded once.
  DecoderChoice decoder = DecoderChoice::Auto;
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
  float angle = 0;                   // the eye line's slope in radians (the crop is turned by it)
  int label = -1;                    // with an Engine: the class of this face (-1: not classified)
  std::vector<float> probs;          // its class probabilities
};

// The vote of one track over its classified faces (or, as VideoFaces::video, over the faces the
// video's vote counts).
struct TrackVote {
  int track = 0;
  int64_t first_frame = 0, last_frame = 0;
  double first_s = 0, last_s = 0;
  int64_t frames = 0;              // frames the track is reported on
  int64_t classified = 0;          // of those, the frames whose face was classified
  int label = -1;                  // -1: none classified
  std::vector<int32_t> counts;     // frames per class
  std::vector<double> mean_probs;  // mean class probabilities
};

struct VideoFaces {
  std::string path;
  std::string error;  // "" when the video was read to its end
  int width = 0, height = 0;
  int64_t frames = 0;  // sampled frames
  int tracks = 0;      // tracks reported
  std::vector<FaceRow> rows;
  // With an Engine: a vote per track (in order of id), and the video's: the main track's vote
  // (the track classified on most frames, the lower id on a tie) with FaceChoice::All, the vote
  // over every frame's largest face with Largest. video.label is -1 when no face was classified.
  std::vector<TrackVote> track_votes;
  TrackVote video;
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

// The square around `face` that the classifier sees: centred on its box, of side (1 + 2 margin)
// times the box's larger side, turned by face.angle so that the eyes lie level, resampled to
// out [size, size, 3] bytes (bilinear, k x k samples a pixel where the square is k times
// larger); black outside the frame.
void aligned_face(const ImageView& frame, const FaceRow& face, double margin, int size,
                  uint8_t* out);
// The square aligned_face cuts out for `face` (of frames[frame] in a batch): the device path's
// crops (Backend's FaceFrameOps) take the same one.
FaceSquare face_square(const FaceRow& face, double margin, int frame = 0);

// The votes of VideoFaces (track_votes, video) from its classified rows.
void vote_faces(VideoFaces& faces, int classes, VoteMode vote, FaceChoice choice);

class FaceTracking {
 public:
  // Loads the detector's weights (safetensors with its card; "": CropSpec::detector_file()'s
  // default); fails in one line.
  FaceTracking(const std::string& detector, const FacesOptions& options);
  ~FaceTracking();
  FaceTracking(const FaceTracking&) = delete;
  FaceTracking& operator=(const FaceTracking&) = delete;
  // "cpu" or "cuda": where the detector runs (FacesOptions::detector_device resolved).
  std::string detector_backend() const;
  // Whether run() with `classifier` cuts frames on the backend (FacesOptions::frame_path
  // resolved); fails in one line where Backend is asked for and cannot be.
  bool frames_on_backend(const Engine* classifier) const;
  // A bad input is its error, never an exception. With `classifier`, every face the options
  // choose is classified on its aligned crop (crop full: the crop is the engine's input) and
  // the votes are made.
  VideoFaces run(const InputItem& input, Engine* classifier = nullptr);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fervid
