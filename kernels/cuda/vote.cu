// vote (CUDA): the video stage as the final device kernels.
// vote_accumulate: one block per segment of the batch, one thread per class; each thread walks the
// segment's frames in order and adds into its slot's running count and f64 sum, the same
// additions in the same order as the CPU reference, so the sums are bit-identical.
// vote_finalize: one thread per finished video picks the winner with the CPU's comparisons,
// copies the slot out and clears it. Both are tiny: C reads per frame, C writes per video.
#include "cuda/check.h"
#include "cuda/ops.h"

namespace fervid::cuda {

namespace {

constexpr int kClassThreads = 64;  // classes per pass; more classes loop

__global__ void vote_accumulate_segments(const float* __restrict__ probs,
                                         const int* __restrict__ labels,
                                         const Segment* __restrict__ segments, int c,
                                         int* __restrict__ counts, double* __restrict__ sums) {
  const Segment s = segments[blockIdx.x];
  for (int j = threadIdx.x; j < c; j += blockDim.x) {
    int count = counts[(long long)s.slot * c + j];
    double sum = sums[(long long)s.slot * c + j];
    for (int f = s.first; f < s.first + s.count; ++f) {
      count += labels[f] == j;
      sum += double(probs[(long long)f * c + j]);
    }
    counts[(long long)s.slot * c + j] = count;
    sums[(long long)s.slot * c + j] = sum;
  }
}

__global__ void vote_finalize_slots(int* __restrict__ counts, double* __restrict__ sums,
                                    const int* __restrict__ slots, int n, int c, bool majority,
                                    int* __restrict__ winners, int* __restrict__ out_counts,
                                    double* __restrict__ out_sums) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  int* cnt = counts + (long long)slots[i] * c;
  double* sum = sums + (long long)slots[i] * c;
  int best = 0;
  for (int j = 1; j < c; ++j) {
    const bool better = majority
                            ? (cnt[j] > cnt[best] || (cnt[j] == cnt[best] && sum[j] > sum[best]))
                            : sum[j] > sum[best];
    if (better) best = j;
  }
  winners[i] = best;
  for (int j = 0; j < c; ++j) {
    out_counts[(long long)i * c + j] = cnt[j];
    out_sums[(long long)i * c + j] = sum[j];
    cnt[j] = 0;
    sum[j] = 0.0;
  }
}

void expect(bool ok, const char* op, const std::string& what) {
  if (!ok) fail(std::string("cuda ") + op + ": " + what);
}

}  // namespace

void vote_accumulate(const Tensor& probs, const Tensor& labels, const Segment* segments,
                     int num_segments, const Tensor& counts, const Tensor& sums,
                     cudaStream_t stream) {
  expect(probs.rank() == 2 && probs.dtype() == DType::F32 && labels.dtype() == DType::I32 &&
             counts.rank() == 2 && counts.dtype() == DType::I32 && sums.dtype() == DType::F64 &&
             counts.dim(1) == probs.dim(1) && sums.shape() == counts.shape(),
         "vote_accumulate",
         "probs " + probs.describe() + ", counts " + counts.describe() + ", sums " +
             sums.describe() + " do not fit");
  if (num_segments == 0) return;
  vote_accumulate_segments<<<num_segments, kClassThreads, 0, stream>>>(
      probs.ptr<const float>(), labels.ptr<const int>(), segments, int(probs.dim(1)),
      counts.ptr<int>(), sums.ptr<double>());
  FV_CUDA_CHECK(cudaGetLastError());
}

void vote_finalize(const Tensor& counts, const Tensor& sums, const int* slots, int n, VoteMode mode,
                   const Tensor& winners, const Tensor& out_counts, const Tensor& out_sums,
                   cudaStream_t stream) {
  expect(counts.rank() == 2 && sums.shape() == counts.shape() && winners.numel() == n &&
             out_counts.numel() == n * counts.dim(1) && out_sums.numel() == n * counts.dim(1),
         "vote_finalize",
         "counts " + counts.describe() + ", winners " + winners.describe() + " do not fit " +
             std::to_string(n) + " slots");
  if (n == 0) return;
  constexpr int kThreads = 128;
  vote_finalize_slots<<<(n + kThreads - 1) / kThreads, kThreads, 0, stream>>>(
      counts.ptr<int>(), sums.ptr<double>(), slots, n, int(counts.dim(1)),
      mode == VoteMode::Majority, winners.ptr<int>(), out_counts.ptr<int>(),
      out_sums.ptr<double>());
  FV_CUDA_CHECK(cudaGetLastError());
}

}  // namespace fervid::cuda
