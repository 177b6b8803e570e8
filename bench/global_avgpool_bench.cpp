// global_avgpool on the CPU at the study's head (7x7x512 -> 512) for batches 8 and 256: time per
// call and GB/s. Run: build/bench/global_avgpool_bench
#include "bench_util.h"
#include "cpu/ops.h"

namespace {

void BM_global_avgpool(benchmark::State& state) {
  const int n = int(state.range(0));
  auto x = fervid::host_tensor({n, 7, 7, 512}, fervid::DType::F32);
  auto y = fervid::host_tensor({n, 512}, fervid::DType::F32);
  fervid::bench::fill(x.tensor);
  for (auto _ : state) fervid::cpu::global_avgpool(x.tensor, y.tensor);
  fervid::bench::count_bytes(state, double(x.tensor.bytes() + y.tensor.bytes()));
}
BENCHMARK(BM_global_avgpool)->Arg(8)->Arg(256)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
