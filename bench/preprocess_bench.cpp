// preprocess on the CPU: batches of 8 RAVDESS-sized frames (1280x720 RGB, the centre square)
// resized to 224x224 and normalised, and the same from YUV 4:2:0. Time per batch and frames/s.
// Run: build/bench/preprocess_bench
#include <vector>

#include "bench_util.h"
#include "cpu/ops.h"

namespace {

constexpr int kBatch = 8, kW = 1280, kH = 720, kS = 224;

std::vector<uint8_t> noise(size_t n) {
  std::vector<uint8_t> v(n);
  uint32_t state = 1;
  for (auto& b : v) b = uint8_t((state = state * 1664525u + 1013904223u) >> 24);
  return v;
}

void BM_preprocess_rgb(benchmark::State& state) {
  const std::vector<uint8_t> pixels = noise(size_t(kW) * kH * 3);
  std::vector<fervid::ImageView> frames(kBatch, {pixels.data(), kW, kH, kW * 3});
  std::vector<fervid::CropRect> crops(kBatch, {(kW - kH) / 2, 0, kH, kH});
  auto out = fervid::host_tensor({kBatch, kS, kS, 3}, fervid::DType::F32, fervid::Layout::NHWC);
  for (auto _ : state) fervid::cpu::preprocess(frames, crops, fervid::Preprocess{}, out.tensor);
  state.counters["frames/s"] =
      benchmark::Counter(double(kBatch) * double(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_preprocess_rgb)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_preprocess_yuv420(benchmark::State& state) {
  const int cw = kW / 2, ch = kH / 2;
  const std::vector<uint8_t> planes = noise(size_t(kW) * kH + 2 * size_t(cw) * ch);
  const uint8_t* y = planes.data();
  const uint8_t* u = y + size_t(kW) * kH;
  std::vector<fervid::YuvView> frames(kBatch, {y, u, u + size_t(cw) * ch, kW, cw, 1, kW, kH});
  std::vector<fervid::CropRect> crops(kBatch, {(kW - kH) / 2, 0, kH, kH});
  auto out = fervid::host_tensor({kBatch, kS, kS, 3}, fervid::DType::F32, fervid::Layout::NHWC);
  for (auto _ : state)
    fervid::cpu::preprocess_yuv420(frames, crops, fervid::ColorSpec{}, fervid::Preprocess{},
                                   out.tensor);
  state.counters["frames/s"] =
      benchmark::Counter(double(kBatch) * double(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_preprocess_yuv420)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
