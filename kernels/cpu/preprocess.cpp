// preprocess (CPU reference): RGB u8 frames -> crop -> bilinear resize to S x S with half-pixel
// centres (torch.nn.functional.interpolate, mode="bilinear", align_corners=False, no antialias),
// or, with Preprocess::resize, to the shorter side `resize` and the centred S x S window of that
// (resize_window) -> channel order, value * scale, (v - mean) / std.
// Layout: each frame packed RGB rows of `stride` bytes -> out [N,S,S,3] f32 (NHWC).
// Source coordinate of output pixel o: s = (o + 0.5) * (in / S) - 0.5, clamped below at 0;
// i0 = floor(s), i1 = min(i0 + 1, in - 1), weight of i1 = s - i0. A turned crop (angle != 0)
// samples the frame at the points turned_map gives (fervid/frame.h).
#include <algorithm>
#include <vector>

#include "cpu/check.h"
#include "cpu/ops.h"
#include "cpu/resize_taps.h"

namespace fervid::cpu {

namespace {

// Frame f's turned crop (CropRect::angle != 0) -> dst [S,S,3]: each output pixel's point of the
// frame by turned_map (fervid/frame.h), bilinear with the point clamped to the frame.
void turned_crop(const ImageView& f, const CropRect& c, const ResizeWindow& w, int64_t size,
                 const Preprocess& pp, float* dst) {
  const TurnedMap m = turned_map(c, w);
  const float max_x = float(f.width - 1), max_y = float(f.height - 1);
  for (int64_t oy = 0; oy < size; ++oy)
    for (int64_t ox = 0; ox < size; ++ox) {
      const float dx = (float(ox + m.left) + 0.5f) * m.step_x - 0.5f - m.half_w;
      const float dy = (float(oy + m.top) + 0.5f) * m.step_y - 0.5f - m.half_h;
      const float x = std::clamp(m.cx + m.cos_a * dx - m.sin_a * dy, 0.0f, max_x);
      const float y = std::clamp(m.cy + m.sin_a * dx + m.cos_a * dy, 0.0f, max_y);
      const int x0 = int(x), y0 = int(y);
      const int x1 = std::min(x0 + 1, f.width - 1), y1 = std::min(y0 + 1, f.height - 1);
      const float ax = x - float(x0), ay = y - float(y0);
      const uint8_t* r0 = f.data + int64_t(y0) * f.stride;
      const uint8_t* r1 = f.data + int64_t(y1) * f.stride;
      for (int oc = 0; oc < 3; ++oc) {
        const int k = pp.bgr ? 2 - oc : oc;
        const float top = float(r0[x0 * 3 + k]) * (1 - ax) + float(r0[x1 * 3 + k]) * ax;
        const float bottom = float(r1[x0 * 3 + k]) * (1 - ax) + float(r1[x1 * 3 + k]) * ax;
        const float v = top * (1 - ay) + bottom * ay;
        dst[(oy * size + ox) * 3 + oc] = v * (pp.scale / pp.std[oc]) - pp.mean[oc] / pp.std[oc];
      }
    }
}

}  // namespace

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
    float* dst = out.ptr<float>() + i * 3 * size * size;
    if (c.angle != 0) {
      turned_crop(f, c, w, size, pp, dst);
      continue;
    }
    const std::vector<Tap> tx = window_taps(c.width, w.width, w.left, int(size)),
                           ty = window_taps(c.height, w.height, w.top, int(size));
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
