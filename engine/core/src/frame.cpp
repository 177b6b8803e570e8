#include "fervid/frame.h"

#include <cmath>

namespace fervid {

YuvCoefficients yuv_coefficients(const ColorSpec& cs) {
  const double kr = cs.bt709 ? 0.2126 : 0.299, kb = cs.bt709 ? 0.0722 : 0.114;
  const double kg = 1.0 - kr - kb;
  const double c = cs.full_range ? 1.0 : 255.0 / 224.0;
  YuvCoefficients k;
  k.y_offset = cs.full_range ? 0.0f : 16.0f;
  k.y_scale = float(cs.full_range ? 1.0 : 255.0 / 219.0);
  k.rv = float(2.0 * (1.0 - kr) * c);
  k.gu = float(-2.0 * kb * (1.0 - kb) / kg * c);
  k.gv = float(-2.0 * kr * (1.0 - kr) / kg * c);
  k.bu = float(2.0 * (1.0 - kb) * c);
  return k;
}

ResizeWindow resize_window(int crop_width, int crop_height, int size, int resize) {
  if (resize <= 0) return {size, size, 0, 0};
  const bool wide = crop_width >= crop_height;
  const int shorter = wide ? crop_height : crop_width, longer = wide ? crop_width : crop_height;
  const int scaled = int(double(resize) * double(longer) / double(shorter));
  ResizeWindow w;
  w.width = wide ? scaled : resize;
  w.height = wide ? resize : scaled;
  // std::nearbyint rounds half to even in the default rounding mode, as Python's round().
  w.left = int(std::nearbyint((w.width - size) / 2.0));
  w.top = int(std::nearbyint((w.height - size) / 2.0));
  return w;
}

}  // namespace fervid
