// Image files (load_image: stb_image) on any bytes: an RGB frame of a consistent size, or an
// error of one line naming the file.
#include <cstdint>

#include "fuzz_util.h"
#include "video.h"

using namespace fervid;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::write_file("image.png", data, size);
  fuzz::expect_clean(path, [&] {
    const Frame f = load_image(path);
    if (f.width <= 0 || f.height <= 0 || f.stride < f.width * 3 ||
        f.rgb.size() < size_t(f.stride) * size_t(f.height))
      fuzz::finding("an image of " + std::to_string(f.width) + "x" + std::to_string(f.height) +
                    " in " + std::to_string(f.rgb.size()) + " bytes");
  });
  return 0;
}
