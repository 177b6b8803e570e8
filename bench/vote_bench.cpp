// The vote on the CPU: a batch of 256 frames of 8 classes added into the slots of 16 videos
// (vote_accumulate), then 16 videos finalized (vote_finalize). Run: build/bench/vote_bench
#include <cstring>
#include <vector>

#include "bench_util.h"
#include "cpu/ops.h"

namespace {

constexpr int kFrames = 256, kClasses = 8, kVideos = 16;

void BM_vote_accumulate(benchmark::State& state) {
  using fervid::DType;
  auto probs = fervid::host_tensor({kFrames, kClasses}, DType::F32);
  auto labels = fervid::host_tensor({kFrames}, DType::I32);
  auto counts = fervid::host_tensor({kVideos, kClasses}, DType::I32);
  auto sums = fervid::host_tensor({kVideos, kClasses}, DType::F64);
  fervid::bench::fill(probs.tensor, 0, 1);
  for (int f = 0; f < kFrames; ++f) labels.tensor.ptr<int32_t>()[f] = f % kClasses;
  std::memset(counts.tensor.data(), 0, counts.tensor.bytes());
  std::memset(sums.tensor.data(), 0, sums.tensor.bytes());
  std::vector<fervid::Segment> segments;
  for (int v = 0; v < kVideos; ++v)
    segments.push_back({v * (kFrames / kVideos), kFrames / kVideos, v});
  for (auto _ : state)
    fervid::cpu::vote_accumulate(probs.tensor, labels.tensor, segments, counts.tensor, sums.tensor);
  state.counters["frames/s"] =
      benchmark::Counter(double(kFrames) * double(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_vote_accumulate)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_vote_finalize(benchmark::State& state) {
  using fervid::DType;
  auto counts = fervid::host_tensor({kVideos, kClasses}, DType::I32);
  auto sums = fervid::host_tensor({kVideos, kClasses}, DType::F64);
  auto winners = fervid::host_tensor({kVideos}, DType::I32);
  auto out_counts = fervid::host_tensor({kVideos, kClasses}, DType::I32);
  auto out_sums = fervid::host_tensor({kVideos, kClasses}, DType::F64);
  std::vector<int> slots;
  for (int v = 0; v < kVideos; ++v) slots.push_back(v);
  for (auto _ : state) {
    for (int i = 0; i < kVideos * kClasses; ++i) {
      counts.tensor.ptr<int32_t>()[i] = i % 7;
      sums.tensor.ptr<double>()[i] = 0.5 * (i % 5);
    }
    fervid::cpu::vote_finalize(counts.tensor, sums.tensor, slots, fervid::VoteMode::Majority,
                               winners.tensor, out_counts.tensor, out_sums.tensor);
  }
}
BENCHMARK(BM_vote_finalize)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
