// --crop boxes=FILE (path,x,y,w,h) on any bytes: refused with one line naming the CSV, or boxes
// that lie at x,y >= 0 with w,h > 0 and are checked against a frame without overflow.
#include <cstdint>

#include "fervid/crop.h"
#include "fuzz_util.h"

using namespace fervid;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string csv = fuzz::write_file("boxes.csv", data, size);
  fuzz::expect_clean(csv, [&] {
    const CropSpec crop = CropSpec::parse("boxes=" + csv);
    for (const auto& entry : *crop.boxes) {
      const CropRect& box = entry.second;
      if (box.x < 0 || box.y < 0 || box.width <= 0 || box.height <= 0)
        fuzz::finding("a box at " + std::to_string(box.x) + "," + std::to_string(box.y) + "," +
                      std::to_string(box.width) + "," + std::to_string(box.height) + " for " +
                      entry.first);
      fuzz::expect_clean("", [&] { check_crop_inside(box, 1920, 1080); });
    }
  });
  return 0;
}
