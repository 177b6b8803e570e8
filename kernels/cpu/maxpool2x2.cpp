// maxpool2x2 (CPU reference): 2x2 window, stride 2, floor for odd sizes (torch's MaxPool2d(2)).
// Layout: x [N,H,W,C] -> y [N,H/2,W/2,C] (NHWC), f32 (and u8 rows for the int8 layers).
// Memory-bound: 4 reads per write.
#include <algorithm>

#include "cpu/check.h"
#include "cpu/ops.h"

namespace fervid::cpu {

namespace {

template <class T>
void maxpool_rows(const T* in, int n, int h, int w, int c, T* out) {
  const int oh = h / 2, ow = w / 2;
  for (int64_t row = 0; row < int64_t(n) * oh; ++row) {
    const int64_t img = row / oh, i = row % oh;
    const T* r0 = in + ((img * h + 2 * i) * w) * c;
    const T* r1 = r0 + int64_t(w) * c;
    T* dst = out + row * ow * c;
    for (int j = 0; j < ow; ++j)
      for (int ch = 0; ch < c; ++ch) {
        const int64_t a = int64_t(2 * j) * c + ch, b = a + c;
        dst[int64_t(j) * c + ch] = std::max(std::max(r0[a], r0[b]), std::max(r1[a], r1[b]));
      }
  }
}

}  // namespace

void maxpool_nhwc(const float* in, int n, int h, int w, int c, float* out) {
  maxpool_rows(in, n, h, w, c, out);
}
void maxpool_nhwc_u8(const uint8_t* in, int n, int h, int w, int c, uint8_t* out) {
  maxpool_rows(in, n, h, w, c, out);
}

void maxpool2x2(const Tensor& x, const Tensor& y) {
  constexpr const char* op = "maxpool2x2";
  if (x.rank() != 4) fail(std::string(op) + ": x must be rank 4");
  const int64_t n = x.dim(0), h = x.dim(1), w = x.dim(2), c = x.dim(3);
  expect(x, {n, h, w, c}, DType::F32, op, "x");
  expect(y, {n, h / 2, w / 2, c}, DType::F32, op, "y");
  maxpool_nhwc(x.ptr<const float>(), int(n), int(h), int(w), int(c), y.ptr<float>());
}

}  // namespace fervid::cpu
