// softmax_argmax (CPU) against float64 softmax; the label rule (fervid/label_rule.h): the lowest
// index among ties, NaN never counted, every label in range; the CUDA kernel's lane-and-shuffle
// reduction of that rule, emulated on the host, against the CPU's scan.
#include <cmath>
#include <limits>

#include "cpu/ops.h"
#include "fervid/label_rule.h"
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

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// Rows that once gave an out-of-range label on the GPU (C) or disagreed between backends.
TEST(LabelRule, NaNNeverWinsAndEveryLabelIsInRange) {
  const struct {
    std::vector<float> logits;
    int label;
  } rows[] = {{{kNaN, kNaN, kNaN}, 0},       {{-kInf, -kInf, -kInf}, 0}, {{kNaN, 2, 5}, 2},
              {{kNaN, -kInf, -kInf}, 1},     {{1, kNaN, 0}, 0},          {{1, 7, kNaN, 7}, 1},
              {{-kInf, kInf, kInf, 3}, 1},   {{-1, -kInf, kNaN, -2}, 0}, {{kNaN}, 0},
              {{0.5f, 0.5f, kNaN, 0.25f}, 0}};
  for (const auto& r : rows) {
    const int c = int(r.logits.size());
    EXPECT_EQ(label_of_row(r.logits.data(), c), r.label) << testing::PrintToString(r.logits);
    auto logits = host_tensor({1, c}, DType::F32);
    std::copy(r.logits.begin(), r.logits.end(), logits.tensor.ptr<float>());
    auto probs = host_tensor({1, c}, DType::F32);
    auto labels = host_tensor({1}, DType::I32);
    poison(labels.tensor);
    cpu::softmax_argmax(logits.tensor, probs.tensor, labels.tensor);
    EXPECT_EQ(labels.tensor.ptr<int32_t>()[0], r.label) << testing::PrintToString(r.logits);
  }
}

// The CUDA kernel's reduction (kernels/cuda/softmax_argmax.cu) step by step on the host: each of
// 32 lanes scans the classes j = lane, lane + 32, ... with label_beats, then five xor-shuffle
// rounds merge the lanes with label_merge. Every lane must end with the label of the in-order
// scan, on rows full of ties, NaN and infinities, of every width from 1 to 100 classes.
TEST(LabelRule, WarpReductionEqualsTheRowScan) {
  SeedTrace trace;
  const float values[] = {kNaN, -kInf, kInf, -1.0f, 0.0f, 0.0f, 2.5f, 2.5f, 7.0f};
  std::uniform_int_distribution<int> pick(0, int(std::size(values)) - 1);
  for (int c = 1; c <= 100; ++c) {
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<float> l(static_cast<size_t>(c));
      for (float& v : l) v = values[pick(rng())];
      LabelCandidate lanes[32];
      for (int lane = 0; lane < 32; ++lane) {
        lanes[lane] = no_label();
        for (int j = lane; j < c; j += 32)
          if (label_beats(l[size_t(j)], j, lanes[lane])) lanes[lane] = {l[size_t(j)], j};
      }
      for (int off = 16; off > 0; off /= 2) {
        LabelCandidate next[32];
        for (int lane = 0; lane < 32; ++lane)
          next[lane] = label_merge(lanes[lane], lanes[lane ^ off]);
        std::copy(next, next + 32, lanes);
      }
      const int want = label_of_row(l.data(), c);
      ASSERT_GE(want, 0);
      ASSERT_LT(want, c);
      for (int lane = 0; lane < 32; ++lane)
        ASSERT_EQ(label_of(lanes[lane]), want)
            << "lane " << lane << " of " << testing::PrintToString(l);
    }
  }
}

}  // namespace
}  // namespace fervid::test
