// linear (CPU) against a naive float64 loop; a rank-4 NHWC input flattens in CHW order.
#include <algorithm>

#include "cpu/ops.h"
#include "test_util.h"

namespace fervid::test {
namespace {

std::vector<double> reference(const float* x, const Tensor& w, const Tensor& b, int n, bool relu) {
  const int64_t out = w.dim(0), in = w.dim(1);
  std::vector<double> y;
  for (int i = 0; i < n; ++i)
    for (int64_t o = 0; o < out; ++o) {
      double acc = b.ptr<float>()[o];
      for (int64_t k = 0; k < in; ++k) acc += double(x[i * in + k]) * w.ptr<float>()[o * in + k];
      y.push_back(relu ? std::max(acc, 0.0) : acc);
    }
  return y;
}

TEST(Linear, MatchesFloat64Reference) {
  SeedTrace trace;
  for (auto [n, in, out, relu] :
       {std::array<int, 4>{1, 7, 3, 0}, {5, 512, 256, 1}, {8, 33, 19, 1}}) {
    auto x = host_tensor({n, in}, DType::F32);
    auto w = host_tensor({out, in}, DType::F32);
    auto b = host_tensor({out}, DType::F32);
    fill_uniform(x.tensor, -1, 1);
    fill_uniform(w.tensor, -0.2f, 0.2f);
    fill_uniform(b.tensor, -0.5, 0.5);
    auto y = host_tensor({n, out}, DType::F32);
    poison(y.tensor);
    cpu::linear(x.tensor, w.tensor, b.tensor, relu, y.tensor);
    expect_close(y.tensor.ptr<float>(),
                 reference(x.tensor.ptr<float>(), w.tensor, b.tensor, n, relu), kFp32, "linear");
  }
}

TEST(Linear, FlattensNhwcInTorchvisionChwOrder) {
  SeedTrace trace;
  const int n = 3, h = 2, wd = 3, c = 5, out = 4;
  auto x = host_tensor({n, h, wd, c}, DType::F32, Layout::NHWC);
  auto w = host_tensor({out, c * h * wd}, DType::F32);
  auto b = host_tensor({out}, DType::F32);
  fill_uniform(x.tensor, -1, 1);
  fill_uniform(w.tensor, -1, 1);
  fill_uniform(b.tensor, -1, 1);
  std::vector<float> chw(size_t(n) * c * h * wd);
  for (int i = 0; i < n; ++i)
    for (int ch = 0; ch < c; ++ch)
      for (int p = 0; p < h * wd; ++p)
        chw[(size_t(i) * c + ch) * h * wd + p] =
            x.tensor.ptr<float>()[(size_t(i) * h * wd + p) * c + ch];
  auto y = host_tensor({n, out}, DType::F32);
  poison(y.tensor);
  cpu::linear(x.tensor, w.tensor, b.tensor, false, y.tensor);
  expect_close(y.tensor.ptr<float>(), reference(chw.data(), w.tensor, b.tensor, n, false), kFp32,
               "linear(flatten)");
}

}  // namespace
}  // namespace fervid::test
