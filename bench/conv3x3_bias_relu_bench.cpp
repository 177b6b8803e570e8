// conv3x3_bias_relu on the CPU backend at VGG16's layer shapes (batch 1): time per call and
// GFLOP/s. Run: build/bench/conv3x3_bias_relu_bench [--benchmark_filter=conv1_2]
#include "bench_util.h"
#include "cpu/ops.h"

namespace {

struct Shape {
  const char* name;
  int size, c, k;
  bool pool;
};

constexpr Shape kVgg16[] = {
    {"conv1_1", 224, 3, 64, false},   {"conv1_2", 224, 64, 64, true},
    {"conv2_1", 112, 64, 128, false}, {"conv2_2", 112, 128, 128, true},
    {"conv3_1", 56, 128, 256, false}, {"conv3_2", 56, 256, 256, false},
    {"conv3_3", 56, 256, 256, true},  {"conv4_1", 28, 256, 512, false},
    {"conv4_2", 28, 512, 512, false}, {"conv4_3", 28, 512, 512, true},
    {"conv5_1", 14, 512, 512, false}, {"conv5_2", 14, 512, 512, false},
    {"conv5_3", 14, 512, 512, true},
};

void BM_conv3x3(benchmark::State& state, Shape s) {
  using fervid::DType;
  auto x = fervid::host_tensor({1, s.size, s.size, s.c}, DType::F32);
  auto w = fervid::host_tensor({s.k, 3, 3, s.c}, DType::F32);
  auto b = fervid::host_tensor({s.k}, DType::F32);
  const int o = s.pool ? s.size / 2 : s.size;
  auto y = fervid::host_tensor({1, o, o, s.k}, DType::F32);
  fervid::bench::fill(x.tensor);
  fervid::bench::fill(w.tensor);
  fervid::bench::fill(b.tensor);
  for (auto _ : state)
    fervid::cpu::conv3x3_bias_relu(x.tensor, w.tensor, b.tensor, s.pool, y.tensor);
  const double flop = 2.0 * 9 * s.c * s.k * s.size * s.size;
  state.counters["GFLOP/s"] =
      benchmark::Counter(flop * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}

}  // namespace

int main(int argc, char** argv) {
  return fervid::bench::run_shapes(argc, argv, kVgg16, BM_conv3x3);
}
