// The CUDA softmax_argmax kernel against the CPU reference on fresh random inputs, outputs poisoned
// first. Without a device every test skips and says why.
#include "cpu/ops.h"
#include "cuda/ops.h"
#include "cuda_test_util.h"

namespace fervid::test {
namespace {

// The CPU's and the GPU's probabilities and labels of the same logits [n, c] (GPU outputs
// poisoned first).
struct BothRuns {
  OwnedTensor cpu_probs, cpu_labels, gpu_probs, gpu_labels;
};
BothRuns run_both(const Tensor& logits) {
  const int64_t n = logits.dim(0), c = logits.dim(1);
  BothRuns r{host_tensor({n, c}, DType::F32), host_tensor({n}, DType::I32),
             host_tensor({n, c}, DType::F32), host_tensor({n}, DType::I32)};
  cpu::softmax_argmax(logits, r.cpu_probs.tensor, r.cpu_labels.tensor);
  poison(r.gpu_probs.tensor);
  poison(r.gpu_labels.tensor);
  auto dl = upload(logits);
  auto dp = upload(r.gpu_probs.tensor);
  auto dlab = upload(r.gpu_labels.tensor);
  cuda::softmax_argmax(dl.tensor, dp.tensor, dlab.tensor, nullptr);
  download(r.gpu_probs.tensor, dp.tensor);
  download(r.gpu_labels.tensor, dlab.tensor);
  return r;
}

TEST(CudaSoftmaxArgmax, MatchesCpu) {
  REQUIRE_CUDA_DEVICE();
  SeedTrace trace;
  for (auto [n, c] : {std::array<int, 2>{1, 8}, {37, 8}, {5, 1000}}) {
    auto logits = host_tensor({n, c}, DType::F32);
    fill_uniform(logits.tensor, -20, 20);
    logits.tensor.ptr<float>()[1] = logits.tensor.ptr<float>()[0] = 25;  // a tie in frame 0
    const BothRuns r = run_both(logits.tensor);
    const float* cpu_probs = r.cpu_probs.tensor.ptr<const float>();
    std::vector<double> want(cpu_probs, cpu_probs + n * c);
    expect_close(r.gpu_probs.tensor.ptr<const float>(), want, {1e-7, 1e-5, 1e-6}, "cuda softmax");
    for (int i = 0; i < n; ++i)
      EXPECT_EQ(r.gpu_labels.tensor.ptr<int32_t>()[i], r.cpu_labels.tensor.ptr<int32_t>()[i])
          << "frame " << i;
  }
}

// Rows of NaN and infinities: the label of the CPU's rule (fervid/label_rule.h), never C.
TEST(CudaSoftmaxArgmax, NaNAndInfinityRowsGetTheCpuLabel) {
  REQUIRE_CUDA_DEVICE();
  const float nan = std::nanf(""), inf = INFINITY;
  const int c = 40;  // more classes than lanes: lanes 0-7 scan two each
  const std::vector<std::vector<std::pair<int, float>>> rows = {
      {},                                  // every logit NaN
      {{-1, -inf}},                        // every logit -inf
      {{-1, 1.0f}, {0, nan}, {33, 2.0f}},  // a NaN logit 0; the maximum in a lane's second pass
      {{-1, -inf}, {5, nan}, {36, -3.0f}},
      {{-1, 0.5f}, {3, inf}, {35, inf}},  // equal infinities: the lower index
      {{-1, 2.0f}}};                      // all equal: 0
  auto logits = host_tensor({int64_t(rows.size()), c}, DType::F32);
  for (size_t r = 0; r < rows.size(); ++r) {
    float* l = logits.tensor.ptr<float>() + r * c;
    std::fill(l, l + c, nan);
    for (auto [j, v] : rows[r]) {
      if (j < 0)
        std::fill(l, l + c, v);
      else
        l[j] = v;
    }
  }
  const BothRuns r = run_both(logits.tensor);
  for (size_t i = 0; i < rows.size(); ++i) {
    const int got = r.gpu_labels.tensor.ptr<int32_t>()[i];
    EXPECT_EQ(got, r.cpu_labels.tensor.ptr<int32_t>()[i]) << "row " << i;
    EXPECT_GE(got, 0);
    EXPECT_LT(got, c);
  }
}

}  // namespace
}  // namespace fervid::test
