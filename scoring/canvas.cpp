#include "canvas.h"

#include <stb_easy_font.h>
#include <stb_image_write.h>

#include <algorithm>
#include <cmath>

#include "fervid/error.h"

namespace fervid::scoring {

Canvas::Canvas(int width, int height, Rgb background) : w(width), h(height) {
  rgb.resize(size_t(width) * height * 3);
  for (size_t i = 0; i < rgb.size(); i += 3) {
    rgb[i] = background.r;
    rgb[i + 1] = background.g;
    rgb[i + 2] = background.b;
  }
}

void Canvas::fill(int x0, int y0, int x1, int y1, Rgb c) {
  for (int y = std::max(0, y0); y < std::min(h, y1); ++y)
    for (int x = std::max(0, x0); x < std::min(w, x1); ++x) {
      uint8_t* p = &rgb[(size_t(y) * w + x) * 3];
      p[0] = c.r;
      p[1] = c.g;
      p[2] = c.b;
    }
}

void Canvas::line(double x0, double y0, double x1, double y1, Rgb c, int width) {
  const int steps = int(std::ceil(std::max(std::abs(x1 - x0), std::abs(y1 - y0)))) + 1;
  const int lo = -(width - 1) / 2, hi = lo + width;
  for (int i = 0; i <= steps; ++i) {
    const double t = double(i) / steps;
    const int x = int(std::lround(x0 + t * (x1 - x0))), y = int(std::lround(y0 + t * (y1 - y0)));
    fill(x + lo, y + lo, x + hi, y + hi, c);
  }
}

std::string Canvas::png() const {
  std::string out;
  auto append = [](void* to, void* data, int size) {
    static_cast<std::string*>(to)->append(static_cast<const char*>(data), size_t(size));
  };
  if (!stbi_write_png_to_func(append, &out, w, h, 3, rgb.data(), w * 3)) return "";
  return out;
}

int text_width(const std::string& text, int scale) {
  std::string t = text;
  return stb_easy_font_width(t.data()) * scale;
}

int text_height(int scale) {
  char t[] = "X";
  return stb_easy_font_height(t) * scale;
}

void draw_text(Canvas& c, int x, int y, const std::string& text, Rgb colour, bool vertical,
               int scale) {
  std::string t = text;
  std::vector<char> buf(t.size() * 1024 + 1024);  // ~270 B per character on average
  const int quads = stb_easy_font_print(0, 0, t.data(), nullptr, buf.data(), int(buf.size()));
  for (int q = 0; q < quads; ++q) {
    const float* v0 = reinterpret_cast<const float*>(buf.data() + q * 64);
    const float* v2 = reinterpret_cast<const float*>(buf.data() + q * 64 + 32);
    const int qx0 = int(std::lround(v0[0] * scale)), qy0 = int(std::lround(v0[1] * scale));
    const int qx1 = int(std::lround(v2[0] * scale)), qy1 = int(std::lround(v2[1] * scale));
    if (!vertical)
      c.fill(x + qx0, y + qy0, x + qx1, y + qy1, colour);
    else
      c.fill(x + qy0, y - qx1, x + qy1, y - qx0, colour);
  }
}

Rgb heat_colour(float v) {
  // Piecewise linear through dark blue, blue, cyan, yellow, red, dark red.
  static const float stops[6][3] = {{0, 0, 0.5f}, {0, 0, 1}, {0, 1, 1},
                                    {1, 1, 0},    {1, 0, 0}, {0.5f, 0, 0}};
  const float t = std::clamp(std::isfinite(v) ? v : 0.0f, 0.0f, 1.0f) * 5;
  const int i = std::min(int(t), 4);
  const float f = t - float(i);
  auto mix = [&](int ch) {
    return uint8_t(std::lround(255 * (stops[i][ch] + f * (stops[i + 1][ch] - stops[i][ch]))));
  };
  return {mix(0), mix(1), mix(2)};
}

// Okabe and Ito's colour-blind safe palette without its black (the axes' and the text's) and its
// yellow (it fades on white), with a violet and a dark brown: the eight RAVDESS classes each
// distinct, none grey (the timeline's markers, an unlabelled box).
Rgb series_colour(int i) {
  static const Rgb colours[8] = {{0, 114, 178},   {230, 159, 0},  {0, 158, 115},  {213, 94, 0},
                                 {204, 121, 167}, {86, 180, 233}, {110, 60, 160}, {120, 70, 30}};
  return colours[((i % 8) + 8) % 8];
}

double luminance(Rgb c) {
  auto lin = [](uint8_t v) {
    const double s = v / 255.0;
    return s <= 0.04045 ? s / 12.92 : std::pow((s + 0.055) / 1.055, 2.4);
  };
  return 0.2126 * lin(c.r) + 0.7152 * lin(c.g) + 0.0722 * lin(c.b);
}

double contrast(Rgb a, Rgb b) {
  const double la = luminance(a), lb = luminance(b);
  return (std::max(la, lb) + 0.05) / (std::min(la, lb) + 0.05);
}

Rgb text_on(Rgb background) {
  const Rgb white{255, 255, 255}, black{0, 0, 0};
  return contrast(white, background) >= contrast(black, background) ? white : black;
}

void write_png(const Canvas& c, const OutputTarget& target) {
  const std::string png = c.png();
  if (png.empty()) fail(target.path() + ": cannot encode the PNG");
  write_output(target, png);
}

}  // namespace fervid::scoring
