// preprocess_yuv420 (CPU reference): YUV 4:2:0 frames (planar or NV12) -> RGB -> the crop,
// bilinear resize and normalisation of preprocess (kernels/cpu/preprocess.cpp).
// RGB of pixel (x, y): Y = y[y][x], U and V from the chroma sample (x/2, y/2) (what FFmpeg's
// swscale does for yuv420p -> rgb24; measured on the shared videos: within 3 of its RGB, mean
// 0.4-1.1); each channel = rint((Y - y_offset) * y_scale + c_u (U - 128) + c_v (V - 128)),
// clamped to [0, 255], with the coefficients of yuv_coefficients (BT.601 or BT.709, limited or
// full range). The resize then reads these integer RGB values exactly as it reads RGB frames.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/check.h"
#include "cpu/ops.h"
#include "cpu/resize_taps.h"
#include "fervid/face_sample.h"

namespace fervid::cpu {

void yuv_pixel_rgb(const YuvView& f, const YuvCoefficients& k, int x, int y, float rgb[3]) {
  face_sample::yuv_rgb(f, k, x, y, rgb);
}

void preprocess_yuv420(std::span<const YuvView> frames, std::span<const CropRect> crops,
                       const ColorSpec& cs, const Preprocess& pp, const Tensor& out) {
  constexpr const char* op = "preprocess_yuv420";
  if (out.rank() != 4) fail(std::string(op) + ": out must be rank 4");
  const int64_t n = int64_t(frames.size()), size = out.dim(2);
  expect(out, {n, size, size, 3}, DType::F32, op, "out");
  if (crops.size() != frames.size()) fail(std::string(op) + ": one crop per frame is needed");
  for (int64_t i = 0; i < n; ++i) {
    const YuvView& f = frames[i];
    const CropRect& c = crops[i];
    if (f.on_device)
      fail(std::string(op) +
           ": the frame is in device memory (NVDEC); the CPU backend reads "
           "host frames (use {{decoder}} cpu)");
    if (!f.y || !f.u || !f.v || (f.uv_step != 1 && f.uv_step != 2) ||
        !crop_fits(c, f.width, f.height))
      fail(std::string(op) + ": " + crop_outside(c, f.width, f.height));
    if (c.angle != 0) fail(std::string(op) + ": a turned crop needs RGB frames (preprocess)");
  }
  const YuvCoefficients k = yuv_coefficients(cs);
#pragma omp parallel for schedule(dynamic)
  for (int64_t i = 0; i < n; ++i) {
    const YuvView& f = frames[i];
    const CropRect& c = crops[i];
    const ResizeWindow w = resize_window(c.width, c.height, int(size), pp.resize);
    const std::vector<Tap> tx = window_taps(c.width, w.width, w.left, int(size)),
                           ty = window_taps(c.height, w.height, w.top, int(size));
    float* dst = out.ptr<float>() + i * 3 * size * size;
    float scale[3], shift[3];
    for (int oc = 0; oc < 3; ++oc) {
      scale[oc] = pp.scale / pp.std[oc];
      shift[oc] = pp.mean[oc] / pp.std[oc];
    }
    for (int64_t oy = 0; oy < size; ++oy) {
      const Tap& y = ty[oy];
      for (int64_t ox = 0; ox < size; ++ox) {
        const Tap& x = tx[ox];
        float p00[3], p01[3], p10[3], p11[3];
        yuv_pixel_rgb(f, k, c.x + x.i0, c.y + y.i0, p00);
        yuv_pixel_rgb(f, k, c.x + x.i1, c.y + y.i0, p01);
        yuv_pixel_rgb(f, k, c.x + x.i0, c.y + y.i1, p10);
        yuv_pixel_rgb(f, k, c.x + x.i1, c.y + y.i1, p11);
        for (int oc = 0; oc < 3; ++oc) {
          const int sc = pp.bgr ? 2 - oc : oc;
          const float top = p00[sc] * x.w0 + p01[sc] * x.w1;
          const float bottom = p10[sc] * x.w0 + p11[sc] * x.w1;
          const float v = top * y.w0 + bottom * y.w1;
          dst[(oy * size + ox) * 3 + oc] = v * scale[oc] - shift[oc];
        }
      }
    }
  }
}

}  // namespace fervid::cpu
