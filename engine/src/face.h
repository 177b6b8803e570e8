// Face crop (--crop face): OpenCV's cascade classifier (Viola-Jones, the frontal-face cascade of
// Debian's opencv-data) finds the face on a few frames of a video; one smoothed box, widened by a
// margin and made square, is then used for every frame. Builds without OpenCV (FERVID_FACE=OFF)
// have no detector and say so.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "fervid/crop.h"
#include "fervid/frame.h"

namespace fervid {

class FaceFinder {
 public:
  // The cascade file: `cascade`, else $FERVID_FACE_CASCADE, else the one found at build time.
  // Throws with one line when there is no detector or the file cannot be loaded.
  explicit FaceFinder(const std::string& cascade = "");
  ~FaceFinder();
  FaceFinder(const FaceFinder&) = delete;
  FaceFinder& operator=(const FaceFinder&) = delete;

  // The faces in one RGB frame, largest first.
  std::vector<CropRect> detect(const ImageView& frame);

  // The crop for a video from some of its frames: the largest face of each frame that has one,
  // the median of their centres and sizes (robust to a missed or spurious detection), widened by
  // `margin` of the face's size on every side, made square and moved inside the frame. nullopt
  // when no frame has a face. `found` receives the number of frames with a face.
  std::optional<CropRect> video_box(std::span<const ImageView> frames, double margin,
                                    int* found = nullptr);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fervid
