// global_avgpool (CPU) against a naive float64 mean.
#include "cpu/ops.h"
#include "test_util.h"

namespace fervid::test {
namespace {

TEST(GlobalAvgpool, MatchesFloat64Mean) {
  SeedTrace trace;
  for (auto [n, h, w, c] : {std::array<int, 4>{1, 1, 1, 3}, {2, 7, 7, 512}, {3, 5, 3, 17}}) {
    auto x = host_tensor({n, h, w, c}, DType::F32);
    fill_uniform(x.tensor, 0, 4);
    auto y = host_tensor({n, c}, DType::F32);
    poison(y.tensor);
    cpu::global_avgpool(x.tensor, y.tensor);
    std::vector<double> ref;
    for (int i = 0; i < n; ++i)
      for (int ch = 0; ch < c; ++ch) {
        double s = 0;
        for (int p = 0; p < h * w; ++p)
          s += x.tensor.ptr<float>()[(size_t(i) * h * w + p) * c + ch];
        ref.push_back(s / (h * w));
      }
    expect_close(y.tensor.ptr<float>(), ref, kFp32, "global_avgpool");
  }
}

}  // namespace
}  // namespace fervid::test
