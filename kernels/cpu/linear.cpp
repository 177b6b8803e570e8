// linear (CPU reference): y[N,out] = x[N,in] * w[out,in]^T + b, then ReLU when asked.
// A rank-4 x [N,H,W,C] is first transposed to [N,C,H,W] so that it flattens in torchvision's
// order (CHW); that copy is small (25088 floats per frame for VGG16).
// A frame's output must not depend on the frames batched with it
// (tests/batch_invariance_test.cpp), and OpenBLAS's SGEMM result for a row depends on the batch
// size and the row's place in it. So:
// - with AVX-512, fervid's own dot products: each (frame, output) pair summed in one 16-lane
//   accumulator over `in` in order and reduced the same way whatever the batch; blocks of 4
//   weight rows x 4 frames, so each block of weights is read from memory once per batch (the
//   flatten head's fc1 is 411 MB of f32 weights) and from cache for the other frames;
// - elsewhere one OpenBLAS SGEMV per frame, reading the weights once per frame.
// docs/perf/cpu.md measures both on the flatten head's fc1.
#include <cblas.h>

#include <algorithm>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "cpu/check.h"
#include "cpu/ops.h"

namespace fervid::cpu {

namespace {

#if defined(__x86_64__)
// y[g * ys + r] = dot(x + g * xs, w + r * ws) over `in`, for R weight rows and G frames: one
// accumulator per pair, the same instructions for a pair whatever R and G are.
template <int R, int G>
__attribute__((target("avx512f"))) void dots(const float* w, int64_t ws, const float* x, int64_t xs,
                                             int64_t in, float* y, int64_t ys) {
  __m512 acc[G][R];
  for (int g = 0; g < G; ++g)
    for (int r = 0; r < R; ++r) acc[g][r] = _mm512_setzero_ps();
  const auto step = [&](int64_t k, __mmask16 m) __attribute__((target("avx512f"))) {
    __m512 xv[G];
    for (int g = 0; g < G; ++g) xv[g] = _mm512_maskz_loadu_ps(m, x + g * xs + k);
    for (int r = 0; r < R; ++r) {
      const __m512 wv = _mm512_maskz_loadu_ps(m, w + r * ws + k);
      for (int g = 0; g < G; ++g) acc[g][r] = _mm512_fmadd_ps(xv[g], wv, acc[g][r]);
    }
  };
  int64_t k = 0;
  for (; k + 16 <= in; k += 16) step(k, 0xFFFF);
  if (k < in) step(k, __mmask16((1u << (in - k)) - 1));
  // The 16 lanes summed pairwise in a fixed tree.
  alignas(64) float lanes[16];
  for (int g = 0; g < G; ++g)
    for (int r = 0; r < R; ++r) {
      _mm512_store_ps(lanes, acc[g][r]);
      for (int half = 8; half > 0; half /= 2)
        for (int l = 0; l < half; ++l) lanes[l] += lanes[l + half];
      y[g * ys + r] = lanes[0];
    }
}

// y[n, out] = x[n, in] w[out, in]^T, blocks of 4 weight rows over the threads.
__attribute__((target("avx512f"))) void matmul_avx512(const float* x, int64_t n, int64_t in,
                                                      const float* w, int64_t out, float* y) {
  // dots<rows, frames> for 1..4 of each (a block at the end may have fewer).
  using Dots = void (*)(const float*, int64_t, const float*, int64_t, int64_t, float*, int64_t);
  static constexpr Dots kDots[4][4] = {{dots<1, 1>, dots<1, 2>, dots<1, 3>, dots<1, 4>},
                                       {dots<2, 1>, dots<2, 2>, dots<2, 3>, dots<2, 4>},
                                       {dots<3, 1>, dots<3, 2>, dots<3, 3>, dots<3, 4>},
                                       {dots<4, 1>, dots<4, 2>, dots<4, 3>, dots<4, 4>}};
  constexpr int64_t kRows = 4, kFrames = 4;
  const int64_t blocks = (out + kRows - 1) / kRows;
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t o = blk * kRows, rows = std::min(kRows, out - o);
    for (int64_t i = 0; i < n; i += kFrames) {
      const int64_t frames = std::min(kFrames, n - i);
      kDots[rows - 1][frames - 1](w + o * in, in, x + i * in, in, in, y + i * out + o, out);
    }
  }
}
#endif

bool have_avx512() {
#if defined(__x86_64__)
  static const bool have = __builtin_cpu_supports("avx512f");
  return have;
#else
  return false;
#endif
}

}  // namespace

const char* linear_kernel() {
  return have_avx512() ? "fervid's AVX-512 dot products, each block of weights read once a batch"
                       : "OpenBLAS SGEMV, one per frame";
}

void linear(const Tensor& x, const Tensor& w, const Tensor& b, bool relu, const Tensor& y) {
  constexpr const char* op = "linear";
  if (x.rank() < 2 || w.rank() != 2) fail(std::string(op) + ": x must be rank >= 2, w rank 2");
  const int64_t n = x.dim(0), in = x.numel() / std::max<int64_t>(n, 1), out = w.dim(0);
  expect(x, x.shape(), DType::F32, op, "x");
  expect(w, {out, in}, DType::F32, op, "w");
  expect(b, {out}, DType::F32, op, "b");
  expect(y, {n, out}, DType::F32, op, "y");
  if (n == 0) return;
  const float* xp = x.ptr<const float>();
  thread_local std::vector<float> chw;
  if (x.rank() == 4) {
    const int64_t h = x.dim(1), w = x.dim(2), c = x.dim(3);
    chw.resize(size_t(x.numel()));
    for (int64_t i = 0; i < n; ++i)
      for (int64_t p = 0; p < h * w; ++p)
        for (int64_t ch = 0; ch < c; ++ch)
          chw[(i * c + ch) * h * w + p] = xp[(i * h * w + p) * c + ch];
    xp = chw.data();
  }
  float* yp = y.ptr<float>();
#if defined(__x86_64__)
  if (have_avx512()) {
    matmul_avx512(xp, n, in, w.ptr<const float>(), out, yp);
  } else  // NOLINT(readability/braces)
#endif
    for (int64_t i = 0; i < n; ++i)
      cblas_sgemv(CblasRowMajor, CblasNoTrans, int(out), int(in), 1.0f, w.ptr<const float>(),
                  int(in), xp + i * in, 1, 0.0f, yp + i * out, 1);
  const float* bp = b.ptr<const float>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < out; ++j) {
      float v = yp[i * out + j] + bp[j];
      yp[i * out + j] = relu ? std::max(v, 0.0f) : v;
    }
}

}  // namespace fervid::cpu
