// A frame's result does not depend on the frames batched with it: each CPU op of the frame stage
// gives bit-identical outputs for one frame alone, and for that frame at any place in batches of
// other sizes with other neighbours. This is what makes a sharded run (a video batched with other
// videos, or at another offset) equal a single run row for row, to the last bit.
#include <algorithm>
#include <cstring>

#include "cpu/onednn_conv.h"
#include "cpu/ops.h"
#include "fervid/weight_layout.h"
#include "test_util.h"

namespace fervid::test {
namespace {

// Frames per batch tried; 1 is the frame alone.
constexpr int kBatches[] = {1, 3, 8, 13};

// `frame` (one item of `shape`, dim 0 dropped) at `at` in a batch of n fresh random items.
OwnedTensor batch_with(const std::vector<float>& frame, std::vector<int64_t> shape, int n, int at) {
  shape[0] = n;
  auto t = host_tensor(shape, DType::F32);
  fill_uniform(t.tensor, -1, 1);
  std::memcpy(t.tensor.ptr<float>() + size_t(at) * frame.size(), frame.data(),
              frame.size() * sizeof(float));
  return t;
}

// Runs `op` (x -> y) with the frame at several places of several batch sizes; every run's output
// for the frame must equal the frame-alone output bit for bit.
template <class Op>
void expect_batch_invariant(const std::vector<int64_t>& x_shape, std::vector<int64_t> y_shape,
                            Op op, const char* what) {
  int64_t in_items = 1, out_items = 1;
  for (size_t d = 1; d < x_shape.size(); ++d) in_items *= x_shape[d];
  for (size_t d = 1; d < y_shape.size(); ++d) out_items *= y_shape[d];
  std::vector<float> frame{};
  frame.resize(size_t(in_items));
  std::uniform_real_distribution<float> u(-1, 1);
  for (float& v : frame) v = u(rng());
  std::vector<float> alone;
  for (int n : kBatches)
    for (int at : {0, n / 2, n - 1}) {
      auto x = batch_with(frame, x_shape, n, at);
      y_shape[0] = n;
      auto y = host_tensor(y_shape, DType::F32);
      poison(y.tensor);
      op(x.tensor, y.tensor);
      const float* got = y.tensor.ptr<float>() + size_t(at) * out_items;
      if (alone.empty()) {
        alone.assign(got, got + out_items);
        continue;
      }
      int64_t differ = 0;
      for (int64_t i = 0; i < out_items; ++i)
        differ += std::memcmp(&got[i], &alone[size_t(i)], sizeof(float)) != 0;
      EXPECT_EQ(differ, 0) << what << ": the frame at " << at << " of a batch of " << n << ": "
                           << differ << " of " << out_items
                           << " outputs differ from the frame alone";
    }
}

// The reference conv (im2col + OpenBLAS) and oneDNN's, in fp32, Winograd and bf16 (its bf16
// kernels where the CPU has them, and on the FMA units).
TEST(BatchInvariance, Conv3x3BiasRelu) {
  SeedTrace trace;
  for (auto [h, c, k, pool] :
       {std::array<int, 4>{12, 3, 16, 0}, {10, 16, 24, 1}, {7, 64, 32, 0}, {28, 32, 64, 1}}) {
    auto w = host_tensor({k, 3, 3, c}, DType::F32);
    auto b = host_tensor({k}, DType::F32);
    fill_uniform(w.tensor, -0.3f, 0.3f);
    fill_uniform(b.tensor, -0.2f, 0.2f);
    const int o = pool ? h / 2 : h;
    expect_batch_invariant(
        {1, h, h, c}, {1, o, o, k},
        [&, pool = pool](const Tensor& x, const Tensor& y) {
          cpu::conv3x3_bias_relu(x, w.tensor, b.tensor, pool, y);
        },
        "conv3x3_bias_relu");
    using cpu::OnednnMath;
    for (OnednnMath math : {OnednnMath::Fp32, OnednnMath::Bf16, OnednnMath::Bf16OnFma,
                            OnednnMath::Winograd, OnednnMath::Int8}) {
      const bool bf16 = math == OnednnMath::Bf16, int8 = math == OnednnMath::Int8;
      if (!cpu::onednn_built() || (bf16 && !cpu::onednn_bf16_unavailable().empty()) ||
          (int8 && !cpu::onednn_int8_unavailable().empty()))
        continue;
      cpu::OnednnConv conv(w.tensor, math, int8 ? 0.9f / 255 : 0.0f);
      expect_batch_invariant(
          {1, h, h, c}, {1, o, o, k},
          [&, pool = pool](const Tensor& x, const Tensor& y) { conv.run(x, b.tensor, pool, y); },
          bf16                            ? "onednn bf16 conv3x3_bias_relu"
          : int8                          ? "onednn int8 conv3x3_bias_relu"
          : math == OnednnMath::Bf16OnFma ? "onednn bf16-on-FMA conv3x3_bias_relu"
          : math == OnednnMath::Winograd  ? "onednn Winograd conv3x3_bias_relu"
                                          : "onednn conv3x3_bias_relu");
    }
  }
}

TEST(BatchInvariance, Linear) {
  SeedTrace trace;
  // (100, 7): a tail of 4 inputs after the 16-lane steps, and a last block of 3 output rows.
  for (auto [in, out, relu] :
       {std::array<int, 3>{512, 256, 1}, {4096, 64, 1}, {64, 8, 0}, {100, 7, 1}}) {
    auto w = host_tensor({out, in}, DType::F32);
    auto b = host_tensor({out}, DType::F32);
    fill_uniform(w.tensor, -0.05f, 0.05f);
    fill_uniform(b.tensor, -0.2f, 0.2f);
    expect_batch_invariant(
        {1, in}, {1, out},
        [&, relu = relu](const Tensor& x, const Tensor& y) {
          cpu::linear(x, w.tensor, b.tensor, relu, y);
        },
        "linear");
  }
}

TEST(BatchInvariance, Pools) {
  SeedTrace trace;
  expect_batch_invariant({1, 8, 6, 5}, {1, 4, 3, 5}, cpu::maxpool2x2, "maxpool2x2");
  expect_batch_invariant({1, 7, 7, 9}, {1, 9}, cpu::global_avgpool, "global_avgpool");
}

}  // namespace
}  // namespace fervid::test
