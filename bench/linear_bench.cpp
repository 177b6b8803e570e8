// linear (+ReLU) on the CPU at the dense layers of both heads (batch 8): time per call and
// GFLOP/s. The flatten head's fc1 (25088 -> 4096, 411 MB of weights) is bound by reading them.
// Run: build/bench/linear_bench
#include "bench_util.h"
#include "cpu/ops.h"

namespace {

struct Shape {
  const char* name;
  int in, out;
  bool relu;
};
constexpr Shape kDense[] = {{"gap_fc1", 512, 512, true},       {"gap_fc2", 512, 256, true},
                            {"gap_fc3", 256, 8, false},        {"flatten_fc1", 25088, 4096, true},
                            {"flatten_fc2", 4096, 4096, true}, {"flatten_fc3", 4096, 8, false}};
constexpr int kBatch = 8;

void BM_linear(benchmark::State& state, Shape s) {
  using fervid::DType;
  auto x = fervid::host_tensor({kBatch, s.in}, DType::F32);
  auto w = fervid::host_tensor({s.out, s.in}, DType::F32);
  auto b = fervid::host_tensor({s.out}, DType::F32);
  auto y = fervid::host_tensor({kBatch, s.out}, DType::F32);
  fervid::bench::fill(x.tensor);
  fervid::bench::fill(w.tensor, -0.01f, 0.01f);
  fervid::bench::fill(b.tensor);
  for (auto _ : state) fervid::cpu::linear(x.tensor, w.tensor, b.tensor, s.relu, y.tensor);
  state.counters["GFLOP/s"] = benchmark::Counter(
      2.0 * kBatch * s.in * s.out * double(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
}

}  // namespace

int main(int argc, char** argv) { return fervid::bench::run_shapes(argc, argv, kDense, BM_linear); }
