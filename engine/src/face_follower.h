// One face detector and tracker, frame by frame: what --crop face runs on each decode thread
// (and classify_frames on each frame alone). docs/faces.md.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "face_detector.h"
#include "face_tracker.h"
#include "fervid/faces.h"
#include "video.h"

namespace fervid {

// The detector of `crop` (face: CropSpec::detector_file()), loaded; fails with one line (an
// OptionError that starts with `what`) when there is none, saying how to make it.
DetectorWeights load_crop_detector(const CropSpec& crop, const std::string& what = "{{crop}} face");

class FaceFollower {
 public:
  // `weights` must outlive the follower. The detector runs on a CPU backend that leaves the
  // thread counts of OpenMP and OpenBLAS as they are (a count set here, on the thread that
  // makes the follower, slowed the classifier's network 1.6x: measured, docs/faces.md).
  FaceFollower(const DetectorWeights& weights, const FacesOptions& options);
  ~FaceFollower();
  FaceFollower(const FaceFollower&) = delete;
  FaceFollower& operator=(const FaceFollower&) = delete;

  // A new video: a new tracker (ids from 1 again).
  void restart();
  // The tracked faces of the video's next sampled frame (FaceTracking's rows: one with track 0
  // when it has none), each with its track's eye-line angle (the last seen while it coasts).
  std::vector<FaceRow> next(const ImageView& frame, int64_t index, double time_s);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A frame's crop around one tracked face, and that face's track id.
struct FaceCrop {
  CropRect rect;
  int track = 0;
};

// The square crop of the largest face among `faces` (by box area; the lower track id on a tie),
// widened by `margin` of its larger side on every side, moved inside the width x height frame,
// turned by the face's eye-line angle (CropRect::angle); nullopt without a face.
std::optional<FaceCrop> largest_face_crop(std::span<const FaceRow> faces, double margin, int width,
                                          int height);

}  // namespace fervid
