// open_video() of a build without FFmpeg (FERVID_VIDEO=OFF): videos are refused by name;
// images and image folders still work.
#include <deque>

#include "fervid/error.h"
#include "fervid/video_encoder.h"
#include "video_decode.h"

namespace fervid {

std::unique_ptr<FrameSource> open_video(const std::string& path, const SamplingOptions&,
                                        const DecodeOptions&) {
  fail(path + ": this fervid was built without FFmpeg (FERVID_VIDEO=OFF); give image frames");
}

std::unique_ptr<FrameSource> open_live(const std::string& path, const DecodeOptions&) {
  return open_video(path, {});
}

}  // namespace fervid

namespace fervid {

bool nvdec_in_ffmpeg() { return false; }

namespace {

// Every clip ends with the reason.
class NoClipDecoder final : public ClipDecoder {
 public:
  void add(int clip, const std::string& path) override {
    ClipEvent ev;
    ev.end = true;
    ev.clip = clip;
    ev.error =
        path + ": this fervid was built without FFmpeg (FERVID_VIDEO=OFF); give image frames";
    ready_.push_back(std::move(ev));
  }
  void add_bytes(int clip, const std::string& name, std::shared_ptr<const std::string>) override {
    add(clip, name);
  }
  void flush() override {}
  int decoders_opened() const override { return 0; }
  bool next(ClipEvent& event) override {
    if (ready_.empty()) return false;
    event = std::move(ready_.front());
    ready_.pop_front();
    return true;
  }

 private:
  std::deque<ClipEvent> ready_;
};

}  // namespace

std::unique_ptr<ClipDecoder> ClipDecoder::create(const SamplingOptions&, const DecodeOptions&) {
  return std::make_unique<NoClipDecoder>();
}

}  // namespace fervid

namespace fervid {

// VideoEncoder without FFmpeg: refused by name.
struct VideoEncoder::Impl {};

bool VideoEncoder::available(VideoCodec) { return false; }

VideoEncoder::VideoEncoder(const OutputTarget& target, int, int, double, VideoCodec) {
  fail(target.path() + ": this fervid was built without FFmpeg (FERVID_VIDEO=OFF): no video out");
}
VideoEncoder::~VideoEncoder() = default;
void VideoEncoder::write(const ImageView&, double) {}
void VideoEncoder::finish() {}
std::string VideoEncoder::codec_name() const { return ""; }
int64_t VideoEncoder::frames_written() const { return 0; }

}  // namespace fervid
