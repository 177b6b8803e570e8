// preprocess (CUDA): staged u8 RGB crops -> bilinear resize to S x S with half-pixel centres (or
// to the window's size, keeping its S x S window: Preprocess::resize) ->
// channel order, value * scale, (v - mean) / std -> out [N,S,S,3] (NHWC) in f32, f16 or bf16.
// The same formula as the CPU reference (kernels/cpu/preprocess.cpp), each step rounded as
// there (explicit _rn intrinsics, so nvcc contracts nothing into an FMA): the f32 result equals
// the CPU's bit for bit. One thread per output pixel writes its three channels; the taps are
// recomputed per thread (a few flops) rather than read from a table.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda/check.h"
#include "cuda/ops.h"
#include "cuda/resize_taps.cuh"

namespace fervid::cuda {

namespace {

constexpr int kThreads = 256;

__device__ float lerp2(const uint8_t* r, const Tap& x) {
  return __fadd_rn(__fmul_rn(float(r[x.i0 * 3]), x.w0), __fmul_rn(float(r[x.i1 * 3]), x.w1));
}

// Output pixel (ox, oy) of a turned crop: the frame point turned_map gives, clamped to the frame,
// read from the staged region around it.
template <typename T>
__device__ void turned_pixel(const uint8_t* base, const StagedFrame& f, int ox, int oy,
                             const Normalise& p, T* dst) {
  const TurnedMap& m = f.turn;
  const float dx = __fsub_rn(
      __fsub_rn(__fmul_rn(__fadd_rn(float(ox + m.left), 0.5f), m.step_x), 0.5f), m.half_w);
  const float dy =
      __fsub_rn(__fsub_rn(__fmul_rn(__fadd_rn(float(oy + m.top), 0.5f), m.step_y), 0.5f), m.half_h);
  float x = __fsub_rn(__fadd_rn(m.cx, __fmul_rn(m.cos_a, dx)), __fmul_rn(m.sin_a, dy));
  float y = __fadd_rn(__fadd_rn(m.cy, __fmul_rn(m.sin_a, dx)), __fmul_rn(m.cos_a, dy));
  x = fminf(fmaxf(x, 0.0f), float(f.frame_width - 1));
  y = fminf(fmaxf(y, 0.0f), float(f.frame_height - 1));
  const int x0 = int(x), y0 = int(y);
  const int x1 = min(x0 + 1, f.frame_width - 1), y1 = min(y0 + 1, f.frame_height - 1);
  const float ax = __fsub_rn(x, float(x0)), ay = __fsub_rn(y, float(y0));
  const uint8_t* r0 = base + (long long)(y0 - f.region_y) * f.stride;
  const uint8_t* r1 = base + (long long)(y1 - f.region_y) * f.stride;
  const int c0 = (x0 - f.region_x) * 3, c1 = (x1 - f.region_x) * 3;
  for (int oc = 0; oc < 3; ++oc) {
    const int k = p.bgr ? 2 - oc : oc;
    const float top = __fadd_rn(__fmul_rn(float(r0[c0 + k]), __fsub_rn(1.0f, ax)),
                                __fmul_rn(float(r0[c1 + k]), ax));
    const float bottom = __fadd_rn(__fmul_rn(float(r1[c0 + k]), __fsub_rn(1.0f, ax)),
                                   __fmul_rn(float(r1[c1 + k]), ax));
    const float v = __fadd_rn(__fmul_rn(top, __fsub_rn(1.0f, ay)), __fmul_rn(bottom, ay));
    dst[oc] = rounded_to<T>(__fsub_rn(__fmul_rn(v, p.scale[oc]), p.shift[oc]));
  }
}

template <typename T>
__global__ void preprocess_nhwc(const uint8_t* __restrict__ pixels,
                                const StagedFrame* __restrict__ frames, int size, Normalise p,
                                T* __restrict__ out) {
  const int pixel = blockIdx.x * blockDim.x + threadIdx.x;
  if (pixel >= size * size) return;
  const StagedFrame f = frames[blockIdx.y];
  const int oy = pixel / size, ox = pixel % size;
  if (f.turned) {
    turned_pixel(pixels + f.offset, f, ox, oy, p,
                 out + ((long long)blockIdx.y * size * size + pixel) * 3);
    return;
  }
  const Tap ty = resize_tap(oy + f.window.top, f.height, f.window.height),
            tx = resize_tap(ox + f.window.left, f.width, f.window.width);
  const uint8_t* base = pixels + f.offset;
  const uint8_t* r0 = base + (long long)ty.i0 * f.stride;
  const uint8_t* r1 = base + (long long)ty.i1 * f.stride;
  T* dst = out + ((long long)blockIdx.y * size * size + pixel) * 3;
  for (int oc = 0; oc < 3; ++oc) {
    const int src_c = p.bgr ? 2 - oc : oc;
    const float top = lerp2(r0 + src_c, tx), bottom = lerp2(r1 + src_c, tx);
    const float v = __fadd_rn(__fmul_rn(top, ty.w0), __fmul_rn(bottom, ty.w1));
    dst[oc] = rounded_to<T>(__fsub_rn(__fmul_rn(v, p.scale[oc]), p.shift[oc]));
  }
}

template <typename T>
void launch(const uint8_t* pixels, const StagedFrame* frames, int n, const Normalise& p,
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
  const Normalise p = normalise_of(pp);
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
