// maxpool2x2 (CPU) against a naive loop, including odd sizes (floor).
#include <algorithm>

#include "cpu/ops.h"
#include "test_util.h"

namespace fervid::test {
namespace {

TEST(Maxpool2x2, MatchesReferenceOnOddShapes) {
  SeedTrace trace;
  for (auto [n, h, w, c] : {std::array<int, 4>{1, 4, 4, 1}, {3, 7, 9, 5}, {2, 13, 17, 64}}) {
    auto x = host_tensor({n, h, w, c}, DType::F32);
    fill_uniform(x.tensor, -3, 3);
    auto y = host_tensor({n, h / 2, w / 2, c}, DType::F32);
    poison(y.tensor);
    cpu::maxpool2x2(x.tensor, y.tensor);
    std::vector<double> ref;
    const float* xp = x.tensor.ptr<float>();
    for (int i = 0; i < n; ++i)
      for (int yy = 0; yy < h / 2; ++yy)
        for (int xx = 0; xx < w / 2; ++xx)
          for (int ch = 0; ch < c; ++ch) {
            double m = -INFINITY;
            for (int dy = 0; dy < 2; ++dy)
              for (int dx = 0; dx < 2; ++dx)
                m = std::max(
                    m, double(xp[((size_t(i) * h + 2 * yy + dy) * w + 2 * xx + dx) * c + ch]));
            ref.push_back(m);
          }
    expect_close(y.tensor.ptr<float>(), ref, {0, 0, 0}, "maxpool2x2");
  }
}

}  // namespace
}  // namespace fervid::test
