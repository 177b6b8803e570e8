// softmax_argmax (CUDA): one warp per frame. Lanes stride over the classes; the label (the rule
// of fervid/label_rule.h, as the CPU's) and the sum of exp(l - l[label]) are reduced with
// shuffles. f32 in and out, labels i32.
// Trivial cost next to the network: C reads and C + 1 writes per frame.
#include "cuda/check.h"
#include "cuda/ops.h"
#include "fervid/label_rule.h"

namespace fervid::cuda {

namespace {

constexpr int kWarp = 32;
constexpr int kWarpsPerBlock = 8;

__global__ void softmax_argmax_rows(const float* __restrict__ logits, float* __restrict__ probs,
                                    int* __restrict__ labels, int n, int c) {
  const int row = blockIdx.x * kWarpsPerBlock + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (row >= n) return;
  const float* l = logits + (long long)row * c;
  LabelCandidate cand = no_label();
  for (int j = lane; j < c; j += kWarp)
    if (label_beats(l[j], j, cand)) cand = {l[j], j};
  for (int off = kWarp / 2; off > 0; off /= 2) {
    const LabelCandidate other{__shfl_xor_sync(0xffffffffu, cand.value, off),
                               __shfl_xor_sync(0xffffffffu, cand.index, off)};
    cand = label_merge(cand, other);
  }
  const int best_i = label_of(cand);
  const float best = l[best_i];
  double sum = 0;
  for (int j = lane; j < c; j += kWarp) sum += exp(double(l[j]) - double(best));
  for (int off = kWarp / 2; off > 0; off /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, off);
  for (int j = lane; j < c; j += kWarp)
    probs[(long long)row * c + j] = float(exp(double(l[j]) - double(best)) / sum);
  if (lane == 0) labels[row] = best_i;
}

}  // namespace

void softmax_argmax(const Tensor& logits, const Tensor& probs, const Tensor& labels,
                    cudaStream_t stream) {
  if (logits.rank() != 2 || logits.dtype() != DType::F32 || probs.shape() != logits.shape() ||
      probs.dtype() != DType::F32 || labels.dtype() != DType::I32 || labels.rank() != 1 ||
      labels.dim(0) != logits.dim(0))
    fail("cuda softmax_argmax: logits " + logits.describe() + ", probs " + probs.describe() +
         ", labels " + labels.describe() + " do not fit");
  const int n = int(logits.dim(0)), c = int(logits.dim(1));
  if (n == 0) return;
  const int blocks = (n + kWarpsPerBlock - 1) / kWarpsPerBlock;
  softmax_argmax_rows<<<blocks, kWarpsPerBlock * kWarp, 0, stream>>>(
      logits.ptr<const float>(), probs.ptr<float>(), labels.ptr<int>(), n, c);
  FV_CUDA_CHECK(cudaGetLastError());
}

}  // namespace fervid::cuda
