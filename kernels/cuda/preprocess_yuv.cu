// preprocess_yuv420 (CUDA): YUV 4:2:0 frames in device memory (planar or NV12, e.g. NVDEC's
// surfaces or uploaded planes of CPU-decoded video) -> RGB -> crop, bilinear resize with
// half-pixel centres -> channel order, scale, mean/std -> out [N,S,S,3] in f32, f16 or bf16.
// The formula of the CPU reference (kernels/cpu/preprocess_yuv.cpp), each operation rounded as
// there (explicit _rn intrinsics, rintf = round half to even like nearbyint): the f32 result
// equals the CPU's bit for bit. One thread per output pixel: its four taps' RGB (one luma and
// two chroma bytes each) and three channels.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda/check.h"
#include "cuda/ops.h"
#include "cuda/resize_taps.cuh"

namespace fervid::cuda {

namespace {

constexpr int kThreads = 256;

struct Params {
  YuvCoefficients k;
  Normalise n;
};

__device__ float channel(float y, float a, float ua, float b, float vb) {
  const float v = __fadd_rn(__fadd_rn(y, __fmul_rn(a, ua)), __fmul_rn(b, vb));
  return fminf(fmaxf(rintf(v), 0.0f), 255.0f);
}

__device__ void pixel_rgb(const DeviceYuv& f, const YuvCoefficients& k, int x, int y,
                          float rgb[3]) {
  const float Y = float(f.y[(long long)y * f.y_stride + x]);
  const long long c = (long long)(y / 2) * f.uv_stride + (long long)(x / 2) * f.uv_step;
  const float U = __fsub_rn(float(f.u[c]), 128.0f), V = __fsub_rn(float(f.v[c]), 128.0f);
  const float yy = __fmul_rn(__fsub_rn(Y, k.y_offset), k.y_scale);
  rgb[0] = channel(yy, k.rv, V, 0.0f, 0.0f);
  rgb[1] = channel(yy, k.gu, U, k.gv, V);
  rgb[2] = channel(yy, k.bu, U, 0.0f, 0.0f);
}

template <typename T>
__global__ void preprocess_yuv_nhwc(const DeviceYuv* __restrict__ frames, int size, Params p,
                                    T* __restrict__ out) {
  const int pixel = blockIdx.x * blockDim.x + threadIdx.x;
  if (pixel >= size * size) return;
  const DeviceYuv f = frames[blockIdx.y];
  const int oy = pixel / size, ox = pixel % size;
  const Tap ty = resize_tap(oy + f.window.top, f.crop.height, f.window.height),
            tx = resize_tap(ox + f.window.left, f.crop.width, f.window.width);
  float p00[3], p01[3], p10[3], p11[3];
  pixel_rgb(f, p.k, f.crop.x + tx.i0, f.crop.y + ty.i0, p00);
  pixel_rgb(f, p.k, f.crop.x + tx.i1, f.crop.y + ty.i0, p01);
  pixel_rgb(f, p.k, f.crop.x + tx.i0, f.crop.y + ty.i1, p10);
  pixel_rgb(f, p.k, f.crop.x + tx.i1, f.crop.y + ty.i1, p11);
  T* dst = out + ((long long)blockIdx.y * size * size + pixel) * 3;
  for (int oc = 0; oc < 3; ++oc) {
    const int sc = p.n.bgr ? 2 - oc : oc;
    const float top = __fadd_rn(__fmul_rn(p00[sc], tx.w0), __fmul_rn(p01[sc], tx.w1));
    const float bottom = __fadd_rn(__fmul_rn(p10[sc], tx.w0), __fmul_rn(p11[sc], tx.w1));
    const float v = __fadd_rn(__fmul_rn(top, ty.w0), __fmul_rn(bottom, ty.w1));
    dst[oc] = rounded_to<T>(__fsub_rn(__fmul_rn(v, p.n.scale[oc]), p.n.shift[oc]));
  }
}

template <typename T>
void launch(const DeviceYuv* frames, int n, const Params& p, const Tensor& out,
            cudaStream_t stream) {
  const int size = int(out.dim(1));
  const dim3 grid((size * size + kThreads - 1) / kThreads, n);
  preprocess_yuv_nhwc<T><<<grid, kThreads, 0, stream>>>(frames, size, p, out.ptr<T>());
  FV_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void preprocess_yuv420(const DeviceYuv* frames, int n, const ColorSpec& cs, const Preprocess& pp,
                       const Tensor& out, cudaStream_t stream) {
  if (out.rank() != 4 || out.dim(0) != n || out.dim(1) != out.dim(2) || out.dim(3) != 3)
    fail("cuda preprocess_yuv420: out " + out.describe() + " is not [" + std::to_string(n) +
         ",S,S,3]");
  if (n == 0) return;
  if (n > 65535) fail("cuda preprocess_yuv420: more than 65535 frames in one call");
  const Params p{yuv_coefficients(cs), normalise_of(pp)};
  switch (out.dtype()) {
    case DType::F32:
      return launch<float>(frames, n, p, out, stream);
    case DType::F16:
      return launch<__half>(frames, n, p, out, stream);
    case DType::BF16:
      return launch<__nv_bfloat16>(frames, n, p, out, stream);
    default:
      fail("cuda preprocess_yuv420: unsupported output dtype " + out.describe());
  }
}

}  // namespace fervid::cuda
