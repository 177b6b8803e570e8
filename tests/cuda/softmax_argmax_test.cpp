// The CUDA softmax_argmax kernel against the CPU reference on fresh random inputs, outputs poisoned
// first. Without a device every test skips and says why.
#include "cpu/ops.h"
#include "cuda/ops.h"
#include "cuda_test_util.h"

namespace fervid::test {
namespace {

TEST(CudaSoftmaxArgmax, MatchesCpu) {
  REQUIRE_CUDA_DEVICE();
  SeedTrace trace;
  for (auto [n, c] : {std::array<int, 2>{1, 8}, {37, 8}, {5, 1000}}) {
    auto logits = host_tensor({n, c}, DType::F32);
    fill_uniform(logits.tensor, -20, 20);
    logits.tensor.ptr<float>()[1] = logits.tensor.ptr<float>()[0] = 25;  // a tie in frame 0
    auto probs = host_tensor({n, c}, DType::F32);
    auto labels = host_tensor({n}, DType::I32);
    cpu::softmax_argmax(logits.tensor, probs.tensor, labels.tensor);
    auto dl = upload(logits.tensor);
    auto gp = host_tensor({n, c}, DType::F32);
    auto gl = host_tensor({n}, DType::I32);
    poison(gp.tensor);
    poison(gl.tensor);
    auto dp = upload(gp.tensor);
    auto dlab = upload(gl.tensor);
    cuda::softmax_argmax(dl.tensor, dp.tensor, dlab.tensor, nullptr);
    download(gp.tensor, dp.tensor);
    download(gl.tensor, dlab.tensor);
    std::vector<double> want(probs.tensor.ptr<float>(), probs.tensor.ptr<float>() + n * c);
    expect_close(gp.tensor.ptr<float>(), want, {1e-7, 1e-5, 1e-6}, "cuda softmax");
    for (int i = 0; i < n; ++i)
      EXPECT_EQ(gl.tensor.ptr<int32_t>()[i], labels.tensor.ptr<int32_t>()[i]) << "frame " << i;
  }
}

}  // namespace
}  // namespace fervid::test
