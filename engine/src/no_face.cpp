// Builds without OpenCV (FERVID_FACE=OFF): no Haar cascade; --crop haar fails with one line.
#include "face.h"
#include "fervid/error.h"

namespace fervid {

struct FaceFinder::Impl {};

FaceFinder::FaceFinder(const std::string&) {
  fail_option(
      "{{crop}} haar: this build of fervid has no face detector (built with FERVID_FACE=OFF)");
}
FaceFinder::~FaceFinder() = default;
std::vector<CropRect> FaceFinder::detect(const ImageView&) { return {}; }
std::optional<CropRect> FaceFinder::video_box(std::span<const ImageView>, double, int*) {
  return std::nullopt;
}

}  // namespace fervid
