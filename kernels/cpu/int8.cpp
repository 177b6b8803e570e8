// int8 convolution (CPU reference) and the quantization both int8 paths share: per-output-channel
// symmetric weights, an activation quantized to u8 with one scale per layer (what a calibration
// run measured: docs/int8.md). The products are exact integers summed exactly (int64 here, int32
// in oneDNN: 9 * C * 255 * 127 stays far below 2^31 for any VGG layer), so the reference and
// oneDNN differ only in the last f32 steps (scale, bias, ReLU).
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/check.h"
#include "cpu/ops.h"

namespace fervid::cpu {

Int8Weights quantize_weights_s8(const Tensor& w) {
  expect(w, {w.dim(0), w.dim(1), w.dim(2), w.dim(3)}, DType::F32, "quantize_weights_s8", "w");
  Int8Weights q;
  const int64_t k = w.dim(0), per = w.numel() / std::max<int64_t>(k, 1);
  q.values.resize(size_t(w.numel()));
  q.scales.resize(size_t(k));
  const float* src = w.ptr<const float>();
  for (int64_t o = 0; o < k; ++o) {
    float m = 0;
    for (int64_t i = 0; i < per; ++i) m = std::max(m, std::fabs(src[o * per + i]));
    // An all-zero filter keeps scale 1 (its values are 0 whatever the scale).
    const float scale = m > 0 ? m / 127.0f : 1.0f;
    q.scales[size_t(o)] = scale;
    for (int64_t i = 0; i < per; ++i) {
      const float v = std::nearbyint(src[o * per + i] / scale);
      q.values[size_t(o * per + i)] = int8_t(std::clamp(v, -127.0f, 127.0f));
    }
  }
  return q;
}

void quantize_u8(const float* x, int64_t n, float scale, uint8_t* q) {
  // The reference's (oneDNN's reorder quantizes the frames the int8 layers run on).
  const float inv = 1.0f / scale;
  for (int64_t i = 0; i < n; ++i) q[i] = quantize_u8(x[i], inv);
}

void conv3x3_bias_relu_int8(const Tensor& x, const Tensor& w, const Tensor& b, float in_scale,
                            bool pool, const Tensor& y) {
  constexpr const char* op = "conv3x3_bias_relu_int8";
  if (x.rank() != 4) fail(std::string(op) + ": x must be rank 4");
  const int64_t n = x.dim(0), h = x.dim(1), wd = x.dim(2), c = x.dim(3), k = w.dim(0);
  expect(w, {k, 3, 3, c}, DType::F32, op, "w");
  expect(b, {k}, DType::F32, op, "b");
  expect(y, pool ? std::vector<int64_t>{n, h / 2, wd / 2, k} : std::vector<int64_t>{n, h, wd, k},
         DType::F32, op, "y");
  if (!(in_scale > 0) || !std::isfinite(in_scale)) fail(std::string(op) + ": bad input scale");
  const Int8Weights q = quantize_weights_s8(w);
  std::vector<uint8_t> xq(size_t(x.numel()));
  quantize_u8(x.ptr<const float>(), x.numel(), in_scale, xq.data());
  std::vector<float> full(size_t(n * h * wd * k));
  const float* bias = b.ptr<const float>();
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t i = 0; i < n; ++i)
    for (int64_t r = 0; r < h; ++r)
      for (int64_t col = 0; col < wd; ++col)
        for (int64_t o = 0; o < k; ++o) {
          int64_t acc = 0;
          for (int dy = 0; dy < 3; ++dy) {
            const int64_t yy = r + dy - 1;
            if (yy < 0 || yy >= h) continue;
            for (int dx = 0; dx < 3; ++dx) {
              const int64_t xx = col + dx - 1;
              if (xx < 0 || xx >= wd) continue;
              const uint8_t* px = xq.data() + ((i * h + yy) * wd + xx) * c;
              const int8_t* wv = q.values.data() + ((o * 3 + dy) * 3 + dx) * c;
              for (int64_t ch = 0; ch < c; ++ch) acc += int64_t(px[ch]) * wv[ch];
            }
          }
          const double v = double(acc) * in_scale * q.scales[size_t(o)] + bias[o];
          full[size_t(((i * h + r) * wd + col) * k + o)] = float(std::max(v, 0.0));
        }
  if (pool)
    maxpool_nhwc(full.data(), int(n), int(h), int(wd), int(k), y.ptr<float>());
  else
    std::copy(full.begin(), full.end(), y.ptr<float>());
}

}  // namespace fervid::cpu
