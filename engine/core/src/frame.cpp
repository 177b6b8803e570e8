#include "fervid/frame.h"

#include <algorithm>
#include <charconv>
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

double crop_degrees(float radians) {
  return std::round(double(radians) * 18000.0 / 3.14159265358979323846) / 100.0;
}

TurnedMap turned_map(const CropRect& c, const ResizeWindow& w) {
  TurnedMap m;
  m.cx = float(c.x + (c.width - 1) / 2.0);
  m.cy = float(c.y + (c.height - 1) / 2.0);
  m.cos_a = float(std::cos(double(c.angle)));
  m.sin_a = float(std::sin(double(c.angle)));
  m.step_x = float(c.width) / float(w.width);
  m.step_y = float(c.height) / float(w.height);
  m.half_w = float((c.width - 1) / 2.0);
  m.half_h = float((c.height - 1) / 2.0);
  m.left = w.left;
  m.top = w.top;
  return m;
}

CropRect turned_bounds(const CropRect& c, int width, int height) {
  if (c.angle == 0) return c;
  const double cx = c.x + c.width / 2.0, cy = c.y + c.height / 2.0;
  const double co = std::cos(double(c.angle)), si = std::sin(double(c.angle));
  const double ex = (std::abs(co) * c.width + std::abs(si) * c.height) / 2.0;
  const double ey = (std::abs(si) * c.width + std::abs(co) * c.height) / 2.0;
  const double x0 = std::max(0.0, std::floor(cx - ex) - 1),
               y0 = std::max(0.0, std::floor(cy - ey) - 1);
  const double x1 = std::min(double(width), std::ceil(cx + ex) + 1);
  const double y1 = std::min(double(height), std::ceil(cy + ey) + 1);
  CropRect b{int(x0), int(y0), int(std::max(1.0, x1 - x0)), int(std::max(1.0, y1 - y0))};
  return b;
}

bool crop_fits(const CropRect& c, int width, int height) {
  return c.width > 0 && c.height > 0 && c.x >= 0 && c.y >= 0 && int64_t(c.x) + c.width <= width &&
         int64_t(c.y) + c.height <= height;
}

std::string crop_outside(const CropRect& c, int width, int height) {
  return "crop " + std::to_string(c.width) + "x" + std::to_string(c.height) + "+" +
         std::to_string(c.x) + "+" + std::to_string(c.y) + " lies outside the " +
         std::to_string(width) + "x" + std::to_string(height) + " frame";
}

std::optional<CropRect> parse_box(std::string_view xywh) {
  int v[4];
  for (int i = 0; i < 4; ++i) {
    const size_t comma = i < 3 ? xywh.find(',') : xywh.size();
    if (comma == std::string_view::npos) return std::nullopt;
    std::string_view field = xywh.substr(0, comma);
    while (!field.empty() && (field.front() == ' ' || field.front() == '\t'))
      field.remove_prefix(1);
    while (!field.empty() && (field.back() == ' ' || field.back() == '\t')) field.remove_suffix(1);
    const auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), v[i]);
    if (field.empty() || ec != std::errc() || end != field.data() + field.size())
      return std::nullopt;
    xywh.remove_prefix(std::min(comma + 1, xywh.size()));
  }
  const CropRect box{v[0], v[1], v[2], v[3]};
  if (box.x < 0 || box.y < 0 || box.width <= 0 || box.height <= 0) return std::nullopt;
  return box;
}

}  // namespace fervid
