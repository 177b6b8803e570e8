// The per-pixel arithmetic of the face stage's frame ops on YUV 4:2:0 frames, written once for
// the CPU backend (kernels/cpu/face_frames.cpp) and the CUDA kernels (kernels/cuda/
// face_frames.cu): a pixel's RGB (yuv_coefficients), the detector's letterbox (letterbox_frame,
// fervid/faces.h: each input pixel the area average of the frame pixels it covers) and a face's
// aligned square (aligned_face: k x k bilinear samples per crop pixel, turned by the eye line).
// The RGB functions of fervid/faces.h are the independent references these are tested against
// (tests/face_crops_test.cpp): on the RGB that yuv_rgb gives, they agree bit for bit. Every
// product and sum is rounded on its own (the device's _rn intrinsics, no fused multiply-add),
// in the order the references take, so that the host and the device agree too.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

#include "fervid/error.h"
#include "fervid/frame.h"
#include "fervid/model_spec.h"

#if defined(__CUDACC__)
#define FV_HD __host__ __device__
#else
#define FV_HD
#endif

namespace fervid::face_sample {

FV_HD inline float fmul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
FV_HD inline float fadd(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
FV_HD inline double dmul(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
FV_HD inline double dadd(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}

FV_HD inline float rgb_channel(float y, float a, float ua, float b, float vb) {
  const float v = fadd(fadd(y, fmul(a, ua)), fmul(b, vb));
  return fminf(fmaxf(rintf(v), 0.0f), 255.0f);
}

// Pixel (x, y)'s RGB, each an integer in [0, 255]: Y at (x, y), U and V from the chroma sample
// (x/2, y/2) (the formula of cpu::yuv_pixel_rgb and of preprocess_yuv420).
FV_HD inline void yuv_rgb(const YuvView& f, const YuvCoefficients& k, int x, int y, float rgb[3]) {
  const float Y = float(f.y[int64_t(y) * f.y_stride + x]);
  const int64_t c = int64_t(y / 2) * f.uv_stride + int64_t(x / 2) * f.uv_step;
  const float U = fadd(float(f.u[c]), -128.0f), V = fadd(float(f.v[c]), -128.0f);
  const float yy = fmul(fadd(Y, -k.y_offset), k.y_scale);
  rgb[0] = rgb_channel(yy, k.rv, V, 0.0f, 0.0f);
  rgb[1] = rgb_channel(yy, k.gu, U, k.gv, V);
  rgb[2] = rgb_channel(yy, k.bu, U, 0.0f, 0.0f);
}

// The source pixels output pixel o covers along one axis of the letterbox: [a, b) for the
// frame scaled by `scale` and shifted by `pad` (Letterbox), as letterbox_frame's taps.
struct Span {
  double a, b;
};
FV_HD inline Span letterbox_span(int o, int src, float scale, float pad) {
  const double a = fmax(0.0, double(fadd(float(o), -pad)) / double(scale));
  const double b = fmin(double(src), double(fadd(float(o + 1), -pad)) / double(scale));
  return {a, b};
}
FV_HD inline float span_weight(const Span& s, int i) {
  return float(fmin(s.b, i + 1.0) - fmax(s.a, double(i)));
}

// Input pixel (ox, oy) of frame f letterboxed into a size x size square, each channel in
// [-1, 1] (-1 on the padding).
FV_HD inline void letterbox_pixel(const YuvView& f, const YuvCoefficients& k, int size, int ox,
                                  int oy, float out[3]) {
  const float scale = float(size) / float(f.width > f.height ? f.width : f.height);
  const float pad_x = fadd(float(size), -fmul(float(f.width), scale)) / 2;
  const float pad_y = fadd(float(size), -fmul(float(f.height), scale)) / 2;
  const Span sx = letterbox_span(ox, f.width, scale, pad_x);
  const Span sy = letterbox_span(oy, f.height, scale, pad_y);
  double sum[3] = {0, 0, 0}, total = 0;
  for (int r = int(floor(sy.a)); sy.b > sy.a && r < f.height && r < sy.b; ++r) {
    const float wr = span_weight(sy, r);
    for (int c = int(floor(sx.a)); sx.b > sx.a && c < f.width && c < sx.b; ++c) {
      const float w = fmul(wr, span_weight(sx, c));
      float rgb[3];
      yuv_rgb(f, k, c, r, rgb);
      for (int ch = 0; ch < 3; ++ch) sum[ch] = dadd(sum[ch], double(fmul(w, rgb[ch])));
      total = dadd(total, double(w));
    }
  }
  for (int ch = 0; ch < 3; ++ch) out[ch] = total > 0 ? float(sum[ch] / total / 127.5 - 1.0) : -1.0f;
}

// Bilinear sample of f's RGB at (x, y) in pixel units (pixel i's centre at i + 0.5) added to
// rgb; nothing (black) outside the frame, the edge pixels repeated inside its last half pixel.
FV_HD inline void add_sample(const YuvView& f, const YuvCoefficients& k, double x, double y,
                             double rgb[3]) {
  if (x < 0 || y < 0 || x >= f.width || y >= f.height) return;
  const double sx = fmin(fmax(x - 0.5, 0.0), f.width - 1.0);
  const double sy = fmin(fmax(y - 0.5, 0.0), f.height - 1.0);
  const int x0 = int(sx), y0 = int(sy);
  const int x1 = x0 + 1 < f.width ? x0 + 1 : f.width - 1;
  const int y1 = y0 + 1 < f.height ? y0 + 1 : f.height - 1;
  const double ax = sx - x0, ay = sy - y0;
  float p00[3], p01[3], p10[3], p11[3];
  yuv_rgb(f, k, x0, y0, p00);
  yuv_rgb(f, k, x1, y0, p01);
  yuv_rgb(f, k, x0, y1, p10);
  yuv_rgb(f, k, x1, y1, p11);
  for (int ch = 0; ch < 3; ++ch) {
    const double top = dadd(dmul(p00[ch], 1 - ax), dmul(p01[ch], ax));
    const double bottom = dadd(dmul(p10[ch], 1 - ax), dmul(p11[ch], ax));
    rgb[ch] = dadd(rgb[ch], dadd(dmul(top, 1 - ay), dmul(bottom, ay)));
  }
}

// Pixel (u, v) of face q's aligned square, `size` pixels a side: the mean of k x k samples
// (k = the frame pixels per crop pixel, rounded up), each channel rounded to [0, 255].
FV_HD inline void aligned_pixel(const YuvView& f, const YuvCoefficients& k, const FaceSquare& q,
                                int size, int u, int v, float out[3]) {
  const double step = q.side / size;
  const int n = ceil(step - 1e-9) > 1 ? int(ceil(step - 1e-9)) : 1;
  double rgb[3] = {0, 0, 0};
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < n; ++i) {
      const double dx = dadd(dmul(u + (i + 0.5) / n, step), -q.side / 2);
      const double dy = dadd(dmul(v + (j + 0.5) / n, step), -q.side / 2);
      add_sample(f, k, dadd(dadd(q.cx, dmul(q.cos_a, dx)), -dmul(q.sin_a, dy)),
                 dadd(dadd(q.cy, dmul(q.sin_a, dx)), dmul(q.cos_a, dy)), rgb);
    }
  for (int ch = 0; ch < 3; ++ch) out[ch] = float(fmin(fmax(round(rgb[ch] / (n * n)), 0.0), 255.0));
}

// Where a network's size x size input lies in a face's crop_size square: preprocess's resize
// step (resize_window) must leave the square as it is (the square is cut at the size that step
// would give it: Preprocess::resize, or the input size without one), so the window is the
// centred size x size (or all of it). Fails naming `op` otherwise.
inline ResizeWindow face_window(int crop_size, int size, const Preprocess& pp, const char* op) {
  const ResizeWindow w = resize_window(crop_size, crop_size, size, pp.resize);
  if (crop_size < size || w.width != crop_size || w.height != crop_size)
    fail(std::string(op) + ": a " + std::to_string(crop_size) + "-pixel face square is not what " +
         "the input's resize step takes (" + std::to_string(pp.resize > 0 ? pp.resize : size) +
         ")");
  return w;
}

}  // namespace fervid::face_sample
