// Shared by the op benchmarks (bench/<op>_bench.cpp): deterministic inputs and the counters.
#pragma once

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <random>

#include "fervid/tensor.h"

namespace fervid::bench {

inline void fill(const Tensor& t, float lo = -1, float hi = 1) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> d(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.ptr<float>()[i] = d(rng);
}

// Bytes read and written per iteration, as a rate (the bound of a memory-bound op).
inline void count_bytes(benchmark::State& state, double bytes) {
  state.counters["GB/s"] =
      benchmark::Counter(bytes * double(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
}

// Registers `run` once per shape (named by its `name`), in milliseconds of wall time, and runs
// the benchmarks the command line selects.
template <typename Shape, size_t N, typename Run>
int run_shapes(int argc, char** argv, const Shape (&shapes)[N], Run run) {
  for (const Shape& s : shapes)
    benchmark::RegisterBenchmark(s.name, run, s)->Unit(benchmark::kMillisecond)->UseRealTime();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}

}  // namespace fervid::bench
