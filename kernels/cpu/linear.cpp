// linear (CPU reference): y[N,out] = x[N,in] * w[out,in]^T + b, then ReLU when asked.
// A rank-4 x [N,H,W,C] is first transposed to [N,C,H,W] so that it flattens in torchvision's
// order (CHW); that copy is small (25088 floats per frame for VGG16).
// Arithmetic: one SGEMV per frame (2*in FLOPs per output), bound by reading w. Not one SGEMM for
// the batch: OpenBLAS's result for a row depends on the batch size and the row's place in it,
// and a frame's output must not depend on the frames batched with it
// (tests/batch_invariance_test.cpp). Measured with `fervid bench --spec
// weights/torchvision-vgg16.json --batch 8 --threads 2`: the three dense layers take 74-98 ms a
// batch this way against 49-55 ms as one SGEMM, beside ~1,150 ms of convolutions.
#include <cblas.h>

#include <algorithm>
#include <vector>

#include "cpu/check.h"
#include "cpu/ops.h"

namespace fervid::cpu {

void linear(const Tensor& x, const Tensor& w, const Tensor& b, bool relu, const Tensor& y) {
  constexpr const char* op = "linear";
  if (x.rank() < 2 || w.rank() != 2) fail(std::string(op) + ": x must be rank >= 2, w rank 2");
  const int64_t n = x.dim(0), in = x.numel() / std::max<int64_t>(n, 1), out = w.dim(0);
  expect(x, x.shape(), DType::F32, op, "x");
  expect(w, {out, in}, DType::F32, op, "w");
  expect(b, {out}, DType::F32, op, "b");
  expect(y, {n, out}, DType::F32, op, "y");
  if (n == 0) return;
  const float* xp = x.ptr<const float>();
  thread_local std::vector<float> chw;
  if (x.rank() == 4) {
    const int64_t h = x.dim(1), w = x.dim(2), c = x.dim(3);
    chw.resize(size_t(x.numel()));
    for (int64_t i = 0; i < n; ++i)
      for (int64_t p = 0; p < h * w; ++p)
        for (int64_t ch = 0; ch < c; ++ch)
          chw[(i * c + ch) * h * w + p] = xp[(i * h * w + p) * c + ch];
    xp = chw.data();
  }
  float* yp = y.ptr<float>();
  for (int64_t i = 0; i < n; ++i)
    cblas_sgemv(CblasRowMajor, CblasNoTrans, int(out), int(in), 1.0f, w.ptr<const float>(), int(in),
                xp + i * in, 1, 0.0f, yp + i * out, 1);
  const float* bp = b.ptr<const float>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < out; ++j) {
      float v = yp[i * out + j] + bp[j];
      yp[i * out + j] = relu ? std::max(v, 0.0f) : v;
    }
}

}  // namespace fervid::cpu
