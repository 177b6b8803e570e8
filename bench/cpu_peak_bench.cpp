// The multiply-add rate of one core, by instruction: AVX-512's f32 FMA (VFMADD231PS zmm, 16
// multiply-adds) against AVX512_BF16's dot product (VDPBF16PS zmm, 32 bf16 multiply-adds into 16
// f32 sums). 24 independent accumulators per loop, more than latency x ports needs, so the
// figure is the instruction's throughput. It is the evidence behind the CPU backend's bf16 rule
// (onednn_bf16_dot_slow(), docs/perf/cpu.md): where the dot product's GFLOP/s is below the
// FMA's, bf16 operands multiply faster on the FMA units.
// Run: build/bench/cpu_peak_bench (single-threaded; x86-64 with AVX-512 only)
#include <benchmark/benchmark.h>

#include <cstdio>

namespace {

#define FV_ACCUMULATORS(op)                                                                       \
  op(8) op(9) op(10) op(11) op(12) op(13) op(14) op(15) op(16) op(17) op(18) op(19) op(20) op(21) \
      op(22) op(23) op(24) op(25) op(26) op(27) op(28) op(29) op(30) op(31)
#define FV_ZERO(r) "vpxord %%zmm" #r ", %%zmm" #r ", %%zmm" #r "\n"
#define FV_FMA(r) "vfmadd231ps %%zmm0, %%zmm1, %%zmm" #r "\n"
#define FV_DPBF16(r) "vdpbf16ps %%zmm0, %%zmm1, %%zmm" #r "\n"
// Every vector register the loops write, so the compiler keeps nothing of its own there.
#define FV_CLOBBERS                                                                              \
  "xmm0", "xmm1", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", \
      "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26",  \
      "xmm27", "xmm28", "xmm29", "xmm30", "xmm31", "memory"
constexpr int kAccumulators = 24;
constexpr int kLoops = 4096;  // of 24 instructions per timed call

// One timed call: operands of normal magnitude set first (an FMA on denormals or garbage can
// take a microcode assist), then kLoops blocks of the 24 instructions, all in one asm statement
// so that the registers hold nothing of the compiler's in between.
#define FV_TIMED_LOOP(op)                                                                   \
  do {                                                                                      \
    static const float kSmall = 1e-3f;                                                      \
    long loops = kLoops;                                                                    \
    asm volatile("vbroadcastss %[s], %%zmm0\n vbroadcastss %[s], %%zmm1\n" FV_ACCUMULATORS( \
                     FV_ZERO) "1:\n" FV_ACCUMULATORS(op) "dec %[n]\n jnz 1b\n"              \
                 : [n] "+r"(loops)                                                          \
                 : [s] "m"(kSmall)                                                          \
                 : "cc", FV_CLOBBERS);                                                      \
  } while (0)

__attribute__((target("avx512f"))) void BM_fma_f32(benchmark::State& state) {
  for (auto _ : state) FV_TIMED_LOOP(FV_FMA);
  // 16 lanes x 2 FLOPs per instruction.
  state.counters["GFLOP/s"] =
      benchmark::Counter(32.0 * kAccumulators * kLoops * double(state.iterations()) / 1e9,
                         benchmark::Counter::kIsRate);
}

__attribute__((target("avx512f,avx512bf16"))) void BM_dpbf16(benchmark::State& state) {
  for (auto _ : state) FV_TIMED_LOOP(FV_DPBF16);
  // 16 lanes x 2 products x 2 FLOPs per instruction.
  state.counters["GFLOP/s"] =
      benchmark::Counter(64.0 * kAccumulators * kLoops * double(state.iterations()) / 1e9,
                         benchmark::Counter::kIsRate);
}

}  // namespace

int main(int argc, char** argv) {
  if (!__builtin_cpu_supports("avx512f")) {
    std::printf("cpu_peak_bench: this CPU has no AVX-512; nothing to measure\n");
    return 0;
  }
  benchmark::RegisterBenchmark("fma_f32_zmm", BM_fma_f32)->UseRealTime();
  if (__builtin_cpu_supports("avx512bf16"))
    benchmark::RegisterBenchmark("dpbf16_zmm", BM_dpbf16)->UseRealTime();
  else
    std::printf("cpu_peak_bench: this CPU has no AVX512_BF16; the FMA alone\n");
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
