// Videos from memory (ClipDecoder::add_bytes: fervid's own AVIOContext over the bytes) through
// their first decoded frames: every clip ends, once, with frames of a consistent size or an
// error of one line; nothing crashes, leaks or hangs.
#include <cstdint>
#include <memory>

#include "fuzz_util.h"
#include "video.h"

using namespace fervid;

namespace {

void check_frame(const Frame& f) {
  if (f.width <= 0 || f.height <= 0 || f.stride < f.width * 3 ||
      f.rgb.size() < size_t(f.stride) * size_t(f.height - 1) + size_t(f.width) * 3)
    fuzz::finding("a frame of " + std::to_string(f.width) + "x" + std::to_string(f.height) +
                  ", stride " + std::to_string(f.stride) + ", " + std::to_string(f.rgb.size()) +
                  " bytes");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string name = "fuzz-input";
  auto bytes = std::make_shared<const std::string>(reinterpret_cast<const char*>(data), size);
  fuzz::expect_clean("", [&] {
    SamplingOptions sampling;
    sampling.max_frames = 8;
    auto decoder = ClipDecoder::create(sampling, {});
    decoder->add_bytes(0, name, bytes);
    decoder->flush();
    ClipEvent e;
    int ends = 0, frames = 0;
    while (decoder->next(e)) {
      if (e.clip != 0) fuzz::finding("an event of clip " + std::to_string(e.clip));
      if (ends) fuzz::finding("an event after the clip's end");
      if (e.end) {
        ++ends;
        for (const std::string* m : {&e.error, &e.warning})
          if (m->find_first_of("\r\n") != std::string::npos)
            fuzz::finding("a message of more than one line: " + *m);
        if (e.error.empty() && frames == 0) fuzz::finding("a clip without frames and no error");
        continue;
      }
      ++frames;
      check_frame(e.frame);
    }
    if (ends != 1) fuzz::finding("the clip ended " + std::to_string(ends) + " times");
    if (frames > sampling.max_frames)
      fuzz::finding(std::to_string(frames) + " frames, over the cap");
  });
  return 0;
}
