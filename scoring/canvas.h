// The CLI's pictures (the confusion matrix, Grad-CAM overlays, probability timelines): an RGB
// canvas, filled rectangles, lines, text in stb_easy_font's glyphs, and the PNG (stb).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fervid/output_file.h"

namespace fervid::scoring {

struct Rgb {
  uint8_t r, g, b;
};

struct Canvas {
  int w, h;
  std::vector<uint8_t> rgb;  // rows of w * 3 bytes
  Canvas(int width, int height, Rgb background = {255, 255, 255});
  void fill(int x0, int y0, int x1, int y1, Rgb c);  // [x0, x1) x [y0, y1), clipped
  // A line `width` pixels thick from (x0, y0) to (x1, y1).
  void line(double x0, double y0, double x1, double y1, Rgb c, int width = 1);
  // The PNG's bytes.
  std::string png() const;
};

inline constexpr int kTextScale = 2;  // stb_easy_font's glyphs are ~6x7 pixels; drawn at 2x
int text_width(const std::string& text, int scale = kTextScale);
int text_height(int scale = kTextScale);
// Draws `text` with its top-left corner at (x, y); `vertical` turns it 90 degrees
// counter-clockwise (reading upwards, its baseline on the right), (x, y) then the bottom-left.
void draw_text(Canvas& c, int x, int y, const std::string& text, Rgb colour, bool vertical = false,
               int scale = kTextScale);

// A colour for a value in [0, 1] on a blue -> cyan -> yellow -> red scale (heat maps).
Rgb heat_colour(float v);
// Distinct colours for up to 8 series (colour-blind safe, none grey), then repeating.
Rgb series_colour(int i);
// The WCAG contrast ratio of two colours (1 to 21), and the text colour (white or black) that
// reads best on `background`.
double contrast(Rgb a, Rgb b);
Rgb text_on(Rgb background);

// Writes the canvas as a PNG to `target` (OutputFile's rules: a .part renamed when complete).
void write_png(const Canvas& c, const OutputTarget& target);

}  // namespace fervid::scoring
