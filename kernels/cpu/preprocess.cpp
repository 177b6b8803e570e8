// preprocess (CPU reference): RGB u8 frames -> crop -> bilinear resize to S x S with half-pixel
// centres (torch.nn.functional.interpolate, mode="bilinear", align_corners=False, no antialias),
// or, with Preprocess::resize, to the shorter side `resize` and the centred S x S window of that
// (resize_window) -> channel order, value * scale, (v - mean) / std.
// Layout: each frame packed RGB rows of `stride` bytes -> out [N,S,S,3] f32 (NHWC).
// Source coordinate of output pixel o: s = (o + 0.5) * (in / S) - 0.5, clamped below at 0;
// i0 = floor(s), i1 = min(i0 + 1, in - 1), weight of i1 = s - i0.
#include <algorithm>
#include <vector>

#include "cpu/check.h"
#include "cpu/ops.h"
#include "cpu/resize_taps.h"

namespace fervid::cpu {

void preprocess(std::span<const ImageView> frames, std::span<const CropRect> crops,
                const Preprocess& pp, const Tensor& out) {
  constexpr const char* op = "preprocess";
  if (out.rank() != 4) fail(std::string(op) + ": out must be rank 4");
  const int64_t n = int64_t(frames.size()), size = out.dim(2);
  expect(out, {n, size, size, 3}, DType::F32, op, "out");
  if (crops.size() != frames.size()) fail(std::string(op) + ": one crop per frame is needed");
  for (int64_t i = 0; i < n; ++i) {
    const ImageView& f = frames[i];
    const CropRect& c = crops[i];
    if (!f.data || !crop_fits(c, f.width, f.height))
      fail(std::string(op) + ": " + crop_outside(c, f.width, f.height));
  }
#pragma omp parallel for schedule(dynamic)
  for (int64_t i = 0; i < n; ++i) {
    const ImageView& f = frames[i];
    const CropRect& c = crops[i];
    const ResizeWindow w = resize_window(c.width, c.height, int(size), pp.resize);
    const std::vector<Tap> tx = window_taps(c.width, w.width, w.left, int(size)),
                           ty = window_taps(c.height, w.height, w.top, int(size));
    float* dst = out.ptr<float>() + i * 3 * size * size;
    for (int oc = 0; oc < 3; ++oc) {
      const int src_c = pp.bgr ? 2 - oc : oc;
      const float scale = pp.scale / pp.std[oc], shift = pp.mean[oc] / pp.std[oc];
      for (int64_t oy = 0; oy < size; ++oy) {
        const Tap& y = ty[oy];
        const uint8_t* r0 = f.data + int64_t(c.y + y.i0) * f.stride + int64_t(c.x) * 3 + src_c;
        const uint8_t* r1 = f.data + int64_t(c.y + y.i1) * f.stride + int64_t(c.x) * 3 + src_c;
        for (int64_t ox = 0; ox < size; ++ox) {
          const Tap& x = tx[ox];
          float top = float(r0[x.i0 * 3]) * x.w0 + float(r0[x.i1 * 3]) * x.w1;
          float bottom = float(r1[x.i0 * 3]) * x.w0 + float(r1[x.i1 * 3]) * x.w1;
          float v = top * y.w0 + bottom * y.w1;
          dst[(oy * size + ox) * 3 + oc] = v * scale - shift;
        }
      }
    }
  }
}

}  // namespace fervid::cpu
