#include "fervid/crop.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>

#include "fervid/error.h"
#include "fervid/input_file.h"
#include "fervid/inputs.h"

namespace fervid {

namespace {

// path,x,y,w,h rows -> canonical path -> box.
std::map<std::string, CropRect> read_boxes(const std::string& csv) {
  std::string text;
  try {
    text = read_text_file(csv, "boxes CSV", kMaxListBytes);
  } catch (const Error& e) {
    fail_option("{{crop}} boxes=" + std::string(e.what()));
  }
  std::map<std::string, CropRect> boxes;
  int lineno = 0;
  for (std::string_view text_line : text_lines(text)) {
    const std::string line(text_line);
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::optional<ListedRow> row = split_listed_row(csv, line, 4);
    if (row && lineno == 1 && row->path == "path") continue;  // header
    std::optional<CropRect> box;
    if (row) {
      const auto& f = row->fields;
      box = parse_box(f[0] + "," + f[1] + "," + f[2] + "," + f[3]);
    }
    if (!box)
      fail_option("{{crop}} boxes=" + csv + ":" + std::to_string(lineno) +
                  ": expected path,x,y,w,h with x,y >= 0 and w,h > 0");
    boxes[row->key] = *box;
  }
  return boxes;
}

std::string box_text(const CropRect& b) {
  return std::to_string(b.x) + "," + std::to_string(b.y) + "," + std::to_string(b.width) + "," +
         std::to_string(b.height);
}

}  // namespace

CropSpec CropSpec::parse(const std::string& text) {
  CropSpec c;
  if (text == "full") return c;
  if (text == "center") {
    c.mode = Mode::Center;
    return c;
  }
  if (text.rfind("box=", 0) == 0) {
    const std::optional<CropRect> box = parse_box(std::string_view(text).substr(4));
    if (!box) fail_option("{{crop}} " + text + ": expected box=x,y,w,h with x,y >= 0 and w,h > 0");
    c.box = *box;
    c.mode = Mode::Box;
    return c;
  }
  if (text == "face" || text.rfind("face=", 0) == 0) {
    c.mode = Mode::Face;
    c.detector = text.size() > 5 ? text.substr(5) : "";
    return c;
  }
  if (text == "haar") {
    c.mode = Mode::Haar;
    return c;
  }
  if (text.rfind("boxes=", 0) == 0) {
    c.mode = Mode::Boxes;
    c.boxes_file = text.substr(6);
    c.boxes = std::make_shared<const std::map<std::string, CropRect>>(read_boxes(c.boxes_file));
    return c;
  }
  fail_option("{{crop}} " + text +
              ": expected full, center, box=x,y,w,h, face, face=DETECTOR, haar or boxes=FILE");
}

std::string CropSpec::detector_file() const {
  if (!detector.empty()) return detector;
  if (const char* env = std::getenv("FERVID_DETECTOR"); env && *env) return env;
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  const std::string cache = xdg && *xdg ? xdg : std::string(home ? home : ".") + "/.cache";
  return cache + "/fervid/blazeface-short-range.safetensors";
}

CropRect CropSpec::rect_for(int width, int height) const {
  switch (mode) {
    case Mode::Full:
      return {0, 0, width, height};
    case Mode::Center: {
      int side = std::min(width, height);
      return {(width - side) / 2, (height - side) / 2, side, side};
    }
    case Mode::Box:
      check_crop_inside(box, width, height);
      return box;
    case Mode::Face:
    case Mode::Haar:
    case Mode::Boxes:
      fail("internal error: a per-video crop has no rectangle of its own");
  }
  return {0, 0, width, height};
}

void check_crop_inside(const CropRect& box, int width, int height) {
  if (!crop_fits(box, width, height))
    fail("crop box " + box_text(box) + " lies outside the " + std::to_string(width) + "x" +
         std::to_string(height) + " frame");
}

CropRect square_inside(double cx, double cy, double side, int width, int height) {
  const int s = std::max(1, std::min({int(std::lround(side)), width, height}));
  const int x = std::clamp(int(std::lround(cx - s / 2.0)), 0, width - s);
  const int y = std::clamp(int(std::lround(cy - s / 2.0)), 0, height - s);
  return {x, y, s, s};
}

CropRect centre_square(int width, int height) {
  return square_inside(width / 2.0, height / 2.0, std::min(width, height), width, height);
}

}  // namespace fervid
