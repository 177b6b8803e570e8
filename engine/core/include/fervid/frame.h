// Frame value types shared by every layer: a host RGB frame, a YUV 4:2:0 frame (host or device),
// how YUV maps to RGB, a crop rectangle, and a run of a batch's frames that belong to one video.
// Views only: none of them owns the pixels it points at.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fervid {

// A host frame: 8-bit RGB, rows of `stride` bytes.
struct ImageView {
  const uint8_t* data = nullptr;
  int width = 0;
  int height = 0;
  int stride = 0;
};

// A host or device frame in 8-bit YUV 4:2:0: planar (u, v planes, uv_step 1) or NV12 (u = the
// interleaved UV plane, v = u + 1, uv_step 2), as decoders (and NVDEC) give them.
struct YuvView {
  const uint8_t* y = nullptr;
  const uint8_t* u = nullptr;
  const uint8_t* v = nullptr;
  int y_stride = 0, uv_stride = 0, uv_step = 1;
  int width = 0, height = 0;
  bool on_device = false;  // the planes are in the CUDA backend's device memory (NVDEC)
};

// How YUV maps to RGB: the stream's matrix (BT.601 unless it says BT.709) and range (limited
// 16-235 unless full). Chroma is taken from the sample covering the pixel (x/2, y/2), as
// FFmpeg's swscale does for yuv420p -> rgb24.
struct ColorSpec {
  bool bt709 = false;
  bool full_range = false;
};
// The coefficients of a ColorSpec: R = rnd((Y - y_offset) * y_scale + rv * (V - 128)), G with
// gu, gv, B with bu; each rounded to an integer and clamped to [0, 255]. One function for the
// CPU reference and the CUDA kernel, so that both convert with the same f32 values.
struct YuvCoefficients {
  float y_offset, y_scale, rv, gu, gv, bu;
};
YuvCoefficients yuv_coefficients(const ColorSpec& cs);

// A crop rectangle in source pixels; resized to the model's input size. A non-zero `angle`
// (radians) turns it about its centre: the crop's x axis runs along (cos angle, sin angle) of the
// frame (--crop face: the eye line, so that the eyes lie level in the crop). Parts of a turned
// crop outside the frame repeat the frame's edge pixels.
struct CropRect {
  int x = 0;
  int y = 0;
  int width = 0;
  int height = 0;
  float angle = 0;
};

// A face's aligned square (aligned_face, fervid/faces.h) among a batch of frames: frames[frame]'s
// square of side `side` pixels about (cx, cy), its x axis along (cos_a, sin_a) of the frame.
struct FaceSquare {
  int frame = 0;
  double cx = 0, cy = 0, side = 0, cos_a = 1, sin_a = 0;
};

// A crop's angle (CropRect::angle, radians) in degrees to 0.01, as rows write it.
double crop_degrees(float radians);

// Whether `c` is a non-empty rectangle inside a width x height frame; in 64-bit arithmetic, so
// that a box whose x + width passes INT_MAX is outside, not wrapped around.
bool crop_fits(const CropRect& c, int width, int height);
// "crop WxH+X+Y lies outside the FWxFH frame" for an error message.
std::string crop_outside(const CropRect& c, int width, int height);
// A box from its four numbers "x,y,w,h" (whole numbers that fit an int, x,y >= 0, w,h > 0,
// spaces around each allowed); nullopt when the text is anything else.
std::optional<CropRect> parse_box(std::string_view xywh);

// How a crop becomes the model's size x size input: resized (bilinear, half-pixel centres) to
// width x height, of which the size x size window at (left, top) is kept. Without a resize step
// that is size x size at (0, 0). With `resize` (Preprocess::resize) it is torchvision's
// Resize(resize) + CenterCrop(size): the shorter side becomes `resize`, the longer
// int(resize * longer / shorter), the window is centred (offsets rounded half to even, as
// Python's round).
struct ResizeWindow {
  int width = 0, height = 0, left = 0, top = 0;
};
ResizeWindow resize_window(int crop_width, int crop_height, int size, int resize);

// Where the output pixels of a turned crop sample the frame: output pixel (ox, oy) of the window
// is at crop coordinates s = (o + left + 0.5) * step - 0.5 (pixel i's centre at i, as the
// resize's taps), and at frame coordinates
//   X = cx + cos_a * (sx - half_w) - sin_a * (sy - half_h),
//   Y = cy + sin_a * (sx - half_w) + cos_a * (sy - half_h),
// sampled bilinearly with X, Y clamped to the frame. The CPU reference and the CUDA kernel take
// these floats from here.
struct TurnedMap {
  float cx = 0, cy = 0;          // the crop's centre in the frame (pixel centres at integers)
  float cos_a = 1, sin_a = 0;    // the crop's angle
  float step_x = 1, step_y = 1;  // crop pixels per resized pixel
  float half_w = 0, half_h = 0;  // (crop width - 1) / 2, (crop height - 1) / 2
  int left = 0, top = 0;         // the window's offset in the resized crop
};
TurnedMap turned_map(const CropRect& c, const ResizeWindow& w);
// The frame's pixels a turned crop can read (its turned corners, widened by a pixel, inside the
// width x height frame); the crop's own rectangle when it is not turned.
CropRect turned_bounds(const CropRect& c, int width, int height);

// Frames [first, first + count) of a batch belong to the video accumulating in vote slot `slot`.
struct Segment {
  int first = 0;
  int count = 0;
  int slot = 0;
};

}  // namespace fervid
