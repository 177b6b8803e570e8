// The crop a run takes from each frame before the resize: --crop full | center | box=x,y,w,h |
// face[=DETECTOR] | haar | boxes=FILE, parsed once into a CropSpec.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "fervid/frame.h"

namespace fervid {

struct CropSpec {
  enum class Mode { Full, Center, Box, Face, Haar, Boxes } mode = Mode::Full;
  CropRect box;
  // face: every frame's own crop, the largest face the face detector finds and its tracker
  // follows (docs/faces.md), squared and widened by `margin` of its size on every side; the
  // centre crop on a frame without a face (the video's row counts them in a warning).
  // `detector` is the detector's weights (face=FILE); "" = default_detector().
  std::string detector;
  // haar: OpenCV's Haar cascade on the first kFaceProbeFrames sampled frames of each video (one
  // in kFaceProbeStep searched), the median box for the whole video, widened by `margin`; the
  // centre crop, with a warning in the video's row, when none is found. An Engine sets `margin`
  // to its card's face_margin (ModelSpec) whatever it was.
  double margin = 0.25;
  static constexpr int kFaceProbeFrames = 24, kFaceProbeStep = 4;
  // boxes=FILE: a CSV of path,x,y,w,h (header optional, paths relative to the CSV's folder),
  // keyed by canonical_path(); a video it does not list fails with an error row.
  std::string boxes_file;
  std::shared_ptr<const std::map<std::string, CropRect>> boxes;

  // Whether the crop is found in the frames' pixels (face, haar): they are read on the CPU.
  bool finds_faces() const { return mode == Mode::Face || mode == Mode::Haar; }
  // The detector of face: `detector`, else $FERVID_DETECTOR, else
  // ${XDG_CACHE_HOME:-~/.cache}/fervid/blazeface-short-range.safetensors (tools/setup.sh writes
  // it there).
  std::string detector_file() const;
  static CropSpec parse(const std::string& text);
  // The rectangle for a width x height frame (full, center, box); throws when a box lies outside.
  CropRect rect_for(int width, int height) const;
};

// Fails with one line ("crop box x,y,w,h lies outside the WxH frame") unless `box` lies inside a
// width x height frame.
void check_crop_inside(const CropRect& box, int width, int height);

// The square crop of side `side` centred on (cx, cy), moved (and if need be shrunk) to lie inside
// a width x height frame.
CropRect square_inside(double cx, double cy, double side, int width, int height);
// The centred square of the frame's shorter side (square_inside's rounding): the crop of a frame
// where face or haar finds no face.
CropRect centre_square(int width, int height);

}  // namespace fervid
