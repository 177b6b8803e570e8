// vote (CPU reference): the video stage. Accumulate per-slot class counts (i32) and probability
// sums (f64) over each segment's frames; finalize picks the winner by the vote of docs/design.md,
// copies the slot's counts and sums out and clears the slot for the next video.
#include <cstring>

#include "cpu/check.h"
#include "cpu/ops.h"

namespace fervid::cpu {

void vote_accumulate(const Tensor& probs, const Tensor& labels, std::span<const Segment> segments,
                     const Tensor& counts, const Tensor& sums) {
  constexpr const char* op = "vote_accumulate";
  if (probs.rank() != 2 || counts.rank() != 2)
    fail(std::string(op) + ": probs and counts must be rank 2");
  const int64_t n = probs.dim(0), c = probs.dim(1), slots = counts.dim(0);
  expect(probs, {n, c}, DType::F32, op, "probs");
  expect(labels, {n}, DType::I32, op, "labels");
  expect(counts, {slots, c}, DType::I32, op, "counts");
  expect(sums, {slots, c}, DType::F64, op, "sums");
  for (const Segment& s : segments) {
    if (s.first < 0 || s.count < 0 || s.first + s.count > n || s.slot < 0 || s.slot >= slots)
      fail(std::string(op) + ": segment outside the batch or the slot table");
    int32_t* cnt = counts.ptr<int32_t>() + int64_t(s.slot) * c;
    double* sum = sums.ptr<double>() + int64_t(s.slot) * c;
    for (int f = s.first; f < s.first + s.count; ++f) {
      int label = labels.ptr<const int32_t>()[f];
      if (label < 0 || label >= c) fail(std::string(op) + ": frame label out of range");
      ++cnt[label];
      const float* p = probs.ptr<const float>() + int64_t(f) * c;
      for (int64_t j = 0; j < c; ++j) sum[j] += p[j];
    }
  }
}

void vote_finalize(const Tensor& counts, const Tensor& sums, std::span<const int> slots,
                   VoteMode mode, const Tensor& winners, const Tensor& out_counts,
                   const Tensor& out_sums) {
  constexpr const char* op = "vote_finalize";
  if (counts.rank() != 2) fail(std::string(op) + ": counts must be rank 2");
  const int64_t total = counts.dim(0), c = counts.dim(1), n = int64_t(slots.size());
  expect(sums, {total, c}, DType::F64, op, "sums");
  expect(winners, {n}, DType::I32, op, "winners");
  expect(out_counts, {n, c}, DType::I32, op, "out_counts");
  expect(out_sums, {n, c}, DType::F64, op, "out_sums");
  for (int64_t i = 0; i < n; ++i) {
    if (slots[i] < 0 || slots[i] >= total) fail(std::string(op) + ": slot out of range");
    int32_t* cnt = counts.ptr<int32_t>() + int64_t(slots[i]) * c;
    double* sum = sums.ptr<double>() + int64_t(slots[i]) * c;
    winners.ptr<int32_t>()[i] = vote_winner(cnt, sum, int(c), mode);
    std::memcpy(out_counts.ptr<int32_t>() + i * c, cnt, size_t(c) * sizeof(int32_t));
    std::memcpy(out_sums.ptr<double>() + i * c, sum, size_t(c) * sizeof(double));
    std::memset(cnt, 0, size_t(c) * sizeof(int32_t));
    std::memset(sum, 0, size_t(c) * sizeof(double));
  }
}

}  // namespace fervid::cpu
