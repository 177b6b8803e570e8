// open_video() of a build without FFmpeg (FERVID_VIDEO=OFF): videos are refused by name;
// images and image folders still work.
#include "fervid/error.h"
#include "video_decode.h"

namespace fervid {

std::unique_ptr<FrameSource> open_video(const std::string& path, const SamplingOptions&) {
  fail(path + ": this fervid was built without FFmpeg (FERVID_VIDEO=OFF); give image frames");
}

}  // namespace fervid
