// conv2d_bias_act and add_act (CPU): the layers of a small detector (docs/faces.md) — any square
// kernel with a stride, uneven padding and groups, then the bias and an optional ReLU; a residual
// add whose narrower input counts as zeros in the channels it lacks, then an optional ReLU; a
// bilinear upsampling by 2.
// Activations NHWC, f32 with f32 sums. Four paths for the convolution: 1x1 / stride 1 / one group
// is one SGEMM over all pixels ([N*H*W, C] x [C, K]); a depthwise one is a loop over channels
// (the innermost, contiguous in NHWC, the taps transposed to match); any other of one group is
// im2col + SGEMM per image; several groups a direct loop over the kernel.
#include <cblas.h>

#include <algorithm>
#include <vector>

#include "cpu/check.h"
#include "cpu/ops.h"

namespace fervid::cpu {

namespace {

struct Dims {
  int64_t n, h, w, c, k, oh, ow;
};

void bias_act(float* y, const float* b, int64_t pixels, int64_t k, bool relu) {
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < pixels; ++p)
    for (int64_t o = 0; o < k; ++o) {
      const float v = y[p * k + o] + b[o];
      y[p * k + o] = relu ? std::max(v, 0.0f) : v;
    }
}

void pointwise(const float* x, const float* w, const float* b, const Dims& d, bool relu, float* y) {
  const int64_t pixels = d.n * d.h * d.w;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(pixels), int(d.k), int(d.c), 1.0f, x,
              int(d.c), w, int(d.c), 0.0f, y, int(d.k));
  bias_act(y, b, pixels, d.k, relu);
}

void depthwise(const float* x, const float* w, const float* b, const Dims& d, const ConvGeometry& g,
               bool relu, float* y) {
  const int kk = g.kernel;
  // The taps channel-innermost ([k*k, C], from w [C, k, k, 1]) so that each tap's loop over the
  // channels runs over contiguous memory on both sides.
  std::vector<float> taps(size_t(kk * kk * d.c));
  for (int64_t ch = 0; ch < d.c; ++ch)
    for (int t = 0; t < kk * kk; ++t) taps[size_t(t * d.c + ch)] = w[ch * kk * kk + t];
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t img = 0; img < d.n; ++img)
    for (int64_t i = 0; i < d.oh; ++i)
      for (int64_t j = 0; j < d.ow; ++j) {
        float* out = y + ((img * d.oh + i) * d.ow + j) * d.c;
        for (int64_t ch = 0; ch < d.c; ++ch) out[ch] = b[ch];
        for (int r = 0; r < kk; ++r) {
          const int64_t yi = i * g.stride + r - g.pad_before;
          if (yi < 0 || yi >= d.h) continue;
          for (int s = 0; s < kk; ++s) {
            const int64_t xj = j * g.stride + s - g.pad_before;
            if (xj < 0 || xj >= d.w) continue;
            const float* in = x + ((img * d.h + yi) * d.w + xj) * d.c;
            const float* tap = taps.data() + size_t(r * kk + s) * d.c;
            for (int64_t ch = 0; ch < d.c; ++ch) out[ch] += in[ch] * tap[ch];
          }
        }
        if (relu)
          for (int64_t ch = 0; ch < d.c; ++ch) out[ch] = std::max(out[ch], 0.0f);
      }
}

// One group: each image's patches gathered ([OH*OW, k*k*C], zeros where the padding is) and
// multiplied by the weights ([K, k*k*C]) in one SGEMM.
void im2col_gemm(const float* x, const float* w, const float* b, const Dims& d,
                 const ConvGeometry& g, bool relu, float* y) {
  const int kk = g.kernel;
  const int64_t cols = int64_t(kk) * kk * d.c, rows = d.oh * d.ow;
  std::vector<float> patches(size_t(rows * cols));
  for (int64_t img = 0; img < d.n; ++img) {
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < rows; ++p) {
      const int64_t i = p / d.ow, j = p % d.ow;
      float* row = patches.data() + p * cols;
      for (int r = 0; r < kk; ++r)
        for (int s = 0; s < kk; ++s) {
          const int64_t yi = i * g.stride + r - g.pad_before, xj = j * g.stride + s - g.pad_before;
          float* dst = row + (r * kk + s) * d.c;
          if (yi < 0 || yi >= d.h || xj < 0 || xj >= d.w) {
            std::fill_n(dst, d.c, 0.0f);
            continue;
          }
          std::copy_n(x + ((img * d.h + yi) * d.w + xj) * d.c, d.c, dst);
        }
    }
    float* out = y + img * rows * d.k;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(d.k), int(cols), 1.0f,
                patches.data(), int(cols), w, int(cols), 0.0f, out, int(d.k));
  }
  bias_act(y, b, d.n * rows, d.k, relu);
}

void direct(const float* x, const float* w, const float* b, const Dims& d, const ConvGeometry& g,
            bool relu, float* y) {
  const int kk = g.kernel;
  const int64_t cg = d.c / g.groups, kg = d.k / g.groups;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t img = 0; img < d.n; ++img)
    for (int64_t i = 0; i < d.oh; ++i)
      for (int64_t j = 0; j < d.ow; ++j)
        for (int64_t o = 0; o < d.k; ++o) {
          const int64_t group = o / kg;
          float sum = b[o];
          for (int r = 0; r < kk; ++r) {
            const int64_t yi = i * g.stride + r - g.pad_before;
            if (yi < 0 || yi >= d.h) continue;
            for (int s = 0; s < kk; ++s) {
              const int64_t xj = j * g.stride + s - g.pad_before;
              if (xj < 0 || xj >= d.w) continue;
              const float* in = x + ((img * d.h + yi) * d.w + xj) * d.c + group * cg;
              const float* tap = w + ((o * kk + r) * kk + s) * cg;  // w [K, kk, kk, C/groups]
              for (int64_t c = 0; c < cg; ++c) sum += in[c] * tap[c];
            }
          }
          y[((img * d.oh + i) * d.ow + j) * d.k + o] = relu ? std::max(sum, 0.0f) : sum;
        }
}

}  // namespace

void conv2d_bias_act(const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeometry& g,
                     bool relu, const Tensor& y) {
  constexpr const char* op = "conv2d_bias_act";
  if (x.rank() != 4 || w.rank() != 4) fail(std::string(op) + ": x and w must be rank 4");
  Dims d{
      x.dim(0), x.dim(1), x.dim(2), x.dim(3), w.dim(0), g.out_size(x.dim(1)), g.out_size(x.dim(2))};
  if (g.kernel < 1 || g.stride < 1 || g.pad_before < 0 || g.pad_after < 0 || g.groups < 1 ||
      d.c % g.groups != 0 || d.k % g.groups != 0 || d.oh < 1 || d.ow < 1)
    fail(std::string(op) + ": a geometry that does not fit x " + x.describe());
  expect(x, {d.n, d.h, d.w, d.c}, DType::F32, op, "x");
  expect(w, {d.k, g.kernel, g.kernel, d.c / g.groups}, DType::F32, op, "w");
  expect(b, {d.k}, DType::F32, op, "b");
  expect(y, {d.n, d.oh, d.ow, d.k}, DType::F32, op, "y");
  const float *xp = x.ptr<const float>(), *wp = w.ptr<const float>(), *bp = b.ptr<const float>();
  float* yp = y.ptr<float>();
  if (g.kernel == 1 && g.stride == 1 && g.groups == 1 && g.pad_before == 0 && g.pad_after == 0)
    pointwise(xp, wp, bp, d, relu, yp);
  else if (g.groups == d.c && d.k == d.c)
    depthwise(xp, wp, bp, d, g, relu, yp);
  else if (g.groups == 1)
    im2col_gemm(xp, wp, bp, d, g, relu, yp);
  else
    direct(xp, wp, bp, d, g, relu, yp);
}

void add_act(const Tensor& a, const Tensor& b, bool relu, const Tensor& y) {
  constexpr const char* op = "add_act";
  if (a.rank() != 4 || b.rank() != 4) fail(std::string(op) + ": a and b must be rank 4");
  const int64_t n = a.dim(0), h = a.dim(1), w = a.dim(2), ca = a.dim(3), cb = b.dim(3);
  const int64_t c = std::max(ca, cb);
  expect(a, {n, h, w, ca}, DType::F32, op, "a");
  expect(b, {n, h, w, cb}, DType::F32, op, "b");
  expect(y, {n, h, w, c}, DType::F32, op, "y");
  const float *pa = a.ptr<const float>(), *pb = b.ptr<const float>();
  float* py = y.ptr<float>();
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < n * h * w; ++p)
    for (int64_t ch = 0; ch < c; ++ch) {
      const float v = (ch < ca ? pa[p * ca + ch] : 0.0f) + (ch < cb ? pb[p * cb + ch] : 0.0f);
      py[p * c + ch] = relu ? std::max(v, 0.0f) : v;
    }
}

void upsample_bilinear2x(const Tensor& x, bool half_pixel, const Tensor& y) {
  constexpr const char* op = "upsample_bilinear2x";
  if (x.rank() != 4) fail(std::string(op) + ": x must be rank 4");
  const int64_t n = x.dim(0), h = x.dim(1), w = x.dim(2), c = x.dim(3);
  expect(x, {n, h, w, c}, DType::F32, op, "x");
  expect(y, {n, 2 * h, 2 * w, c}, DType::F32, op, "y");
  // Along one axis: the two source pixels of output i and the weight of the second.
  auto tap = [half_pixel](int64_t i, int64_t size, int64_t& a, int64_t& b, float& t) {
    const float at = half_pixel ? std::max((float(i) + 0.5f) / 2 - 0.5f, 0.0f) : float(i) / 2;
    a = std::min(int64_t(at), size - 1);
    b = std::min(a + 1, size - 1);
    t = at - float(a);
  };
  const float* xp = x.ptr<const float>();
  float* yp = y.ptr<float>();
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t img = 0; img < n; ++img)
    for (int64_t i = 0; i < 2 * h; ++i) {
      int64_t r0, r1;
      float ty;
      tap(i, h, r0, r1, ty);
      for (int64_t j = 0; j < 2 * w; ++j) {
        int64_t c0, c1;
        float tx;
        tap(j, w, c0, c1, tx);
        const float* p00 = xp + ((img * h + r0) * w + c0) * c;
        const float* p01 = xp + ((img * h + r0) * w + c1) * c;
        const float* p10 = xp + ((img * h + r1) * w + c0) * c;
        const float* p11 = xp + ((img * h + r1) * w + c1) * c;
        float* out = yp + ((img * 2 * h + i) * 2 * w + j) * c;
        for (int64_t ch = 0; ch < c; ++ch) {
          const float top = p00[ch] + tx * (p01[ch] - p00[ch]);
          const float bottom = p10[ch] + tx * (p11[ch] - p10[ch]);
          out[ch] = top + ty * (bottom - top);
        }
      }
    }
}

}  // namespace fervid::cpu
