// conv3x3_bias_relu on the CPU at VGG16's layer shapes (batch 1), in each of its implementations:
// blas (im2col + OpenBLAS, the reference), oneDNN's direct convolution in fp32 (onednn), its
// Winograd one (winograd), its bf16 kernels (bf16) and its f32 kernel on bf16 operands
// (bf16_on_fma); time per call and GFLOP/s (of the direct convolution's 2*9*C*K*H*W FLOPs, so
// Winograd's figure is an effective rate). An implementation this build or CPU lacks is left out.
// Run: build/bench/conv3x3_bias_relu_bench [--benchmark_filter=conv1_2/]
#include <string>

#include "bench_util.h"
#include "cpu/onednn_conv.h"
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

enum class Impl { Blas, Onednn, Winograd, Bf16, Bf16OnFma };

void BM_conv3x3(benchmark::State& state, Shape s, Impl impl) {
  using fervid::DType;
  namespace cpu = fervid::cpu;
  auto x = fervid::host_tensor({1, s.size, s.size, s.c}, DType::F32);
  auto w = fervid::host_tensor({s.k, 3, 3, s.c}, DType::F32);
  auto b = fervid::host_tensor({s.k}, DType::F32);
  const int o = s.pool ? s.size / 2 : s.size;
  auto y = fervid::host_tensor({1, o, o, s.k}, DType::F32);
  fervid::bench::fill(x.tensor);
  fervid::bench::fill(w.tensor);
  fervid::bench::fill(b.tensor);
  std::unique_ptr<cpu::OnednnConv> conv;
  if (impl != Impl::Blas) {
    const cpu::OnednnMath math = impl == Impl::Onednn     ? cpu::OnednnMath::Fp32
                                 : impl == Impl::Winograd ? cpu::OnednnMath::Winograd
                                 : impl == Impl::Bf16     ? cpu::OnednnMath::Bf16
                                                          : cpu::OnednnMath::Bf16OnFma;
    conv = std::make_unique<cpu::OnednnConv>(w.tensor, math);
    conv->run(x.tensor, b.tensor, s.pool, y.tensor);  // plans it and reorders the weights
  }
  for (auto _ : state) {
    if (conv)
      conv->run(x.tensor, b.tensor, s.pool, y.tensor);
    else
      cpu::conv3x3_bias_relu(x.tensor, w.tensor, b.tensor, s.pool, y.tensor);
  }
  const double flop = 2.0 * 9 * s.c * s.k * s.size * s.size;
  state.counters["GFLOP/s"] =
      benchmark::Counter(flop * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}

}  // namespace

int main(int argc, char** argv) {
  namespace cpu = fervid::cpu;
  const bool onednn = cpu::onednn_built();
  const std::pair<Impl, const char*> impls[] = {{Impl::Blas, "blas"},
                                                {Impl::Onednn, "onednn"},
                                                {Impl::Winograd, "winograd"},
                                                {Impl::Bf16, "bf16"},
                                                {Impl::Bf16OnFma, "bf16_on_fma"}};
  for (const Shape& s : kVgg16)
    for (auto [impl, name] : impls) {
      if (impl != Impl::Blas && !onednn) continue;
      if (impl == Impl::Winograd && !cpu::onednn_winograd_unavailable().empty()) continue;
      if (impl == Impl::Bf16 && !cpu::onednn_bf16_unavailable().empty()) continue;
      benchmark::RegisterBenchmark((std::string(s.name) + "/" + name).c_str(), BM_conv3x3, s, impl)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
