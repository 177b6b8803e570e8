// softmax_argmax (CPU) against float64 softmax; argmax takes the lowest index among ties.
#include <cmath>

#include "cpu/ops.h"
#include "test_util.h"

namespace fervid::test {
namespace {

TEST(SoftmaxArgmax, MatchesFloat64Softmax) {
  SeedTrace trace;
  const int n = 9, c = 8;
  auto logits = host_tensor({n, c}, DType::F32);
  fill_uniform(logits.tensor, -30, 30);
  auto probs = host_tensor({n, c}, DType::F32);
  auto labels = host_tensor({n}, DType::I32);
  poison(probs.tensor);
  poison(labels.tensor);
  cpu::softmax_argmax(logits.tensor, probs.tensor, labels.tensor);
  std::vector<double> ref;
  for (int i = 0; i < n; ++i) {
    const float* l = logits.tensor.ptr<float>() + i * c;
    double m = l[0], s = 0;
    int best = 0;
    for (int j = 1; j < c; ++j)
      if (l[j] > l[best]) best = j;
    m = l[best];
    for (int j = 0; j < c; ++j) s += std::exp(double(l[j]) - m);
    for (int j = 0; j < c; ++j) ref.push_back(std::exp(double(l[j]) - m) / s);
    EXPECT_EQ(labels.tensor.ptr<int32_t>()[i], best) << "frame " << i;
  }
  expect_close(probs.tensor.ptr<float>(), ref, {1e-7, 1e-5, 1e-6}, "softmax");
}

TEST(SoftmaxArgmax, TiesGoToTheLowestIndex) {
  auto logits = host_tensor({2, 4}, DType::F32);
  float v[] = {1, 3, 3, 2, 5, 5, 5, 5};
  std::copy(v, v + 8, logits.tensor.ptr<float>());
  auto probs = host_tensor({2, 4}, DType::F32);
  auto labels = host_tensor({2}, DType::I32);
  cpu::softmax_argmax(logits.tensor, probs.tensor, labels.tensor);
  EXPECT_EQ(labels.tensor.ptr<int32_t>()[0], 1);
  EXPECT_EQ(labels.tensor.ptr<int32_t>()[1], 0);
  EXPECT_FLOAT_EQ(probs.tensor.ptr<float>()[4], 0.25f);
}

}  // namespace
}  // namespace fervid::test
