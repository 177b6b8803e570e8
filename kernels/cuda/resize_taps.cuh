// The bilinear taps and output conversions of the preprocess kernels (kernels/cuda/preprocess.cu,
// preprocess_yuv.cu): the CPU reference's formula (kernels/cpu/resize_taps.h) with every
// operation an explicit _rn intrinsic, so that nvcc contracts nothing and the f32 results equal
// the CPU's bit for bit.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "fervid/model_spec.h"

namespace fervid::cuda {

struct Tap {
  int i0, i1;
  float w0, w1;
};

__device__ inline Tap resize_tap(int o, int in, int out) {
  const float scale = __fdiv_rn(float(in), float(out));
  const float s = fmaxf(__fsub_rn(__fmul_rn(scale, __fadd_rn(float(o), 0.5f)), 0.5f), 0.0f);
  Tap t;
  t.i0 = min(int(s), in - 1);
  t.i1 = t.i0 + (t.i0 < in - 1 ? 1 : 0);
  t.w1 = __fsub_rn(s, float(t.i0));
  t.w0 = __fsub_rn(1.0f, t.w1);
  return t;
}

template <typename T>
__device__ inline T rounded_to(float v);
template <>
__device__ inline float rounded_to<float>(float v) {
  return v;
}
template <>
__device__ inline __half rounded_to<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ inline __nv_bfloat16 rounded_to<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// Channel order and value * scale[c] - shift[c] = (value * pp.scale - mean) / std, with scale
// and shift computed on the host in f32 as the CPU reference computes them.
struct Normalise {
  float scale[3], shift[3];
  int bgr;
};

inline Normalise normalise_of(const Preprocess& pp) {
  Normalise n{};
  for (int c = 0; c < 3; ++c) {
    n.scale[c] = pp.scale / pp.std[c];
    n.shift[c] = pp.mean[c] / pp.std[c];
  }
  n.bgr = pp.bgr ? 1 : 0;
  return n;
}

}  // namespace fervid::cuda
