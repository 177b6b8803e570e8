// maxpool2x2 on the CPU at the pools of VGG16 (batch 8): time per call and GB/s (memory-bound:
// 4 reads per write). Run: build/bench/maxpool2x2_bench
#include "bench_util.h"
#include "cpu/ops.h"

namespace {

struct Shape {
  const char* name;
  int size, c;
};
constexpr Shape kPools[] = {{"pool1", 224, 64},
                            {"pool2", 112, 128},
                            {"pool3", 56, 256},
                            {"pool4", 28, 512},
                            {"pool5", 14, 512}};
constexpr int kBatch = 8;

void BM_maxpool2x2(benchmark::State& state, Shape s) {
  auto x = fervid::host_tensor({kBatch, s.size, s.size, s.c}, fervid::DType::F32);
  auto y = fervid::host_tensor({kBatch, s.size / 2, s.size / 2, s.c}, fervid::DType::F32);
  fervid::bench::fill(x.tensor);
  for (auto _ : state) fervid::cpu::maxpool2x2(x.tensor, y.tensor);
  fervid::bench::count_bytes(state, double(x.tensor.bytes() + y.tensor.bytes()));
}

}  // namespace

int main(int argc, char** argv) {
  return fervid::bench::run_shapes(argc, argv, kPools, BM_maxpool2x2);
}
