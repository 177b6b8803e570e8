// softmax_argmax on the CPU: logits of 8 classes for batches of 8 and 256 frames.
// Run: build/bench/softmax_argmax_bench
#include "bench_util.h"
#include "cpu/ops.h"

namespace {

void BM_softmax_argmax(benchmark::State& state) {
  const int n = int(state.range(0));
  auto logits = fervid::host_tensor({n, 8}, fervid::DType::F32);
  auto probs = fervid::host_tensor({n, 8}, fervid::DType::F32);
  auto labels = fervid::host_tensor({n}, fervid::DType::I32);
  fervid::bench::fill(logits.tensor, -10, 10);
  for (auto _ : state) fervid::cpu::softmax_argmax(logits.tensor, probs.tensor, labels.tensor);
  state.counters["frames/s"] =
      benchmark::Counter(double(n) * double(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_softmax_argmax)->Arg(8)->Arg(256)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
