// The host-side decisions of the CUDA planning, kept apart from the calls so that tests check them
// without a device (tests/cuda/cuda_backend_test.cpp, group PlanRules): what a status of cuDNN's
// fused call means while algorithms are tried, and which earlier plan serves a new batch size.
#pragma once

#include <cudnn.h>

#include <cstdint>
#include <optional>
#include <span>

namespace fervid::cuda {

// While the algorithms cuDNN timed are tried in the fused call: take the one that ran, try the
// next one where cuDNN says the configuration is not supported, and fail on anything else (a bad
// parameter, an execution failure: a bug or a broken device, not a missing kernel). cuDNN 9
// reports "not supported" as sub-codes (CUDNN_STATUS_NOT_SUPPORTED_SHAPE, ..._LAYOUT, ...;
// 3001-3014), so the comparison is by category, never by equality with 3000.
enum class FusedTrial { Take, Next, Fail };

inline FusedTrial fused_trial(cudnnStatus_t status) {
  if (status == CUDNN_STATUS_SUCCESS) return FusedTrial::Take;
  if (CUDNN_STATUS_CATEGORY(status) == CUDNN_STATUS_NOT_SUPPORTED) return FusedTrial::Next;
  return FusedTrial::Fail;
}

// Of the batch sizes a layer shape was planned (and timed) at, the one whose plan serves a run at
// `batch`: the smallest that is at least `batch`. A plan made for a batch serves the smaller
// ones (the last, partial batch of a run); a larger batch is planned and timed afresh, since the
// fastest algorithm for 1 frame is seldom the fastest for 256. Nothing: plan anew.
inline std::optional<int64_t> plan_batch_for(std::span<const int64_t> planned, int64_t batch) {
  std::optional<int64_t> best;
  for (int64_t p : planned)
    if (p >= batch && (!best || p < *best)) best = p;
  return best;
}

}  // namespace fervid::cuda
