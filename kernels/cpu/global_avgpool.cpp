// global_avgpool (CPU reference): mean over H and W per channel, the study's `gap` head.
// Layout: x [N,H,W,C] (NHWC) -> y [N,C], f32, accumulated in f64. Memory-bound.
#include <vector>

#include "cpu/check.h"
#include "cpu/ops.h"

namespace fervid::cpu {

void global_avgpool(const Tensor& x, const Tensor& y) {
  constexpr const char* op = "global_avgpool";
  if (x.rank() != 4) fail(std::string(op) + ": x must be rank 4");
  const int64_t n = x.dim(0), hw = x.dim(1) * x.dim(2), c = x.dim(3);
  expect(x, x.shape(), DType::F32, op, "x");
  expect(y, {n, c}, DType::F32, op, "y");
  if (hw == 0) fail(std::string(op) + ": empty spatial size");
  std::vector<double> sum(static_cast<size_t>(c));
  for (int64_t i = 0; i < n; ++i) {
    std::fill(sum.begin(), sum.end(), 0.0);
    const float* p = x.ptr<const float>() + i * hw * c;
    for (int64_t q = 0; q < hw; ++q)
      for (int64_t ch = 0; ch < c; ++ch) sum[ch] += p[q * c + ch];
    for (int64_t ch = 0; ch < c; ++ch) y.ptr<float>()[i * c + ch] = float(sum[ch] / double(hw));
  }
}

}  // namespace fervid::cpu
