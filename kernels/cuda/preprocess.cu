// preprocess (CUDA): staged u8 RGB crops -> bilinear resize to S x S with half-pixel centres ->
// channel order, value * scale, (v - mean) / std -> out [N,S,S,3] (NHWC) in f32, f16 or bf16.
// The same formula as the CPU reference (kernels/cpu/preprocess.cpp), each step rounded as
// there (explicit _rn intrinsics, so nvcc contracts nothing into an FMA): the f32 result equals
// the CPU's bit for bit. One thread per output pixel writes its three channels; the taps are
// recomputed per thread (a few flops) rather than read from a table.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "../../engine/cuda/check.h"
#include "ops.h"

namespace fervid::cuda {

namespace {

constexpr int kThreads = 256;

struct Taps {
  float scale[3], shift[3];
  int bgr;
};

struct Tap {
  int i0, i1;
  float w0, w1;
};

__device__ Tap tap(int o, int in, int out) {
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
__device__ T to(float v);
template <>
__device__ float to<float>(float v) {
  return v;
}
template <>
__device__ __half to<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __nv_bfloat16 to<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

__device__ float lerp2(const uint8_t* r, const Tap& x) {
  return __fadd_rn(__fmul_rn(float(r[x.i0 * 3]), x.w0), __fmul_rn(float(r[x.i1 * 3]), x.w1));
}

template <typename T>
__global__ void preprocess_nhwc(const uint8_t* __restrict__ pixels,
                                const StagedFrame* __restrict__ frames, int size, Taps p,
                                T* __restrict__ out) {
  const int pixel = blockIdx.x * blockDim.x + threadIdx.x;
  if (pixel >= size * size) return;
  const StagedFrame f = frames[blockIdx.y];
  const int oy = pixel / size, ox = pixel % size;
  const Tap ty = tap(oy, f.height, size), tx = tap(ox, f.width, size);
  const uint8_t* base = pixels + f.offset;
  const uint8_t* r0 = base + (long long)ty.i0 * f.stride;
  const uint8_t* r1 = base + (long long)ty.i1 * f.stride;
  T* dst = out + ((long long)blockIdx.y * size * size + pixel) * 3;
  for (int oc = 0; oc < 3; ++oc) {
    const int src_c = p.bgr ? 2 - oc : oc;
    const float top = lerp2(r0 + src_c, tx), bottom = lerp2(r1 + src_c, tx);
    const float v = __fadd_rn(__fmul_rn(top, ty.w0), __fmul_rn(bottom, ty.w1));
    dst[oc] = to<T>(__fsub_rn(__fmul_rn(v, p.scale[oc]), p.shift[oc]));
  }
}

template <typename T>
void launch(const uint8_t* pixels, const StagedFrame* frames, int n, const Taps& p,
            const Tensor& out, cudaStream_t stream) {
  const int size = int(out.dim(1));
  const dim3 grid((size * size + kThreads - 1) / kThreads, n);
  preprocess_nhwc<T><<<grid, kThreads, 0, stream>>>(pixels, frames, size, p, out.ptr<T>());
  FV_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void preprocess(const uint8_t* pixels, const StagedFrame* frames, int n, const Preprocess& pp,
                const Tensor& out, cudaStream_t stream) {
  if (out.rank() != 4 || out.dim(0) != n || out.dim(1) != out.dim(2) || out.dim(3) != 3)
    fail("cuda preprocess: out " + out.describe() + " is not [" + std::to_string(n) + ",S,S,3]");
  if (n == 0) return;
  if (n > 65535) fail("cuda preprocess: more than 65535 frames in one call");
  Taps p{};
  for (int c = 0; c < 3; ++c) {
    // The CPU reference computes these two in f32 on the host the same way.
    p.scale[c] = pp.scale / pp.std[c];
    p.shift[c] = pp.mean[c] / pp.std[c];
  }
  p.bgr = pp.bgr ? 1 : 0;
  switch (out.dtype()) {
    case DType::F32:
      return launch<float>(pixels, frames, n, p, out, stream);
    case DType::F16:
      return launch<__half>(pixels, frames, n, p, out, stream);
    case DType::BF16:
      return launch<__nv_bfloat16>(pixels, frames, n, p, out, stream);
    default:
      fail("cuda preprocess: unsupported output dtype " + out.describe());
  }
}

}  // namespace fervid::cuda
