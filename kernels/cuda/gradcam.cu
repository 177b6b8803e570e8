// Grad-CAM's small kernels (CUDA), the device side of cpu::gradcam (kernels/cpu/gradcam.cpp):
// activations to f32, the ReLU masks of the backward pass, the channel weights, and the map
// (weighted channel sum, ReLU, bilinear resize with the preprocess taps, / its largest value).
// The dense layers forward and back are cuBLASLt's (GradcamHead, gradcam_head.cpp). All f32.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>

#include "cuda/check.h"
#include "cuda/ops.h"
#include "cuda/resize_taps.cuh"

namespace fervid::cuda {

namespace {

constexpr int kThreads = 256;

int blocks_for(long long total) {
  return int(std::min<long long>((total + kThreads - 1) / kThreads, 65535LL * 8));
}

template <typename T>
__global__ void to_f32_kernel(const T* __restrict__ x, float* __restrict__ y, long long n) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
       i += (long long)gridDim.x * blockDim.x)
    y[i] = float(x[i]);
}

__global__ void relu_mask_kernel(float* __restrict__ g, const float* __restrict__ h, long long n) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
       i += (long long)gridDim.x * blockDim.x)
    if (!(h[i] > 0.0f)) g[i] = 0.0f;
}

// One thread per (frame, channel): the sum over the positions in order.
__global__ void channel_sums_kernel(const float* __restrict__ g, float* __restrict__ alpha, int n,
                                    int positions, int c, float scale) {
  const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (i >= (long long)n * c) return;
  const long long f = i / c;
  const int ch = int(i % c);
  const float* row = g + f * positions * (long long)c + ch;
  float s = 0.0f;
  for (int p = 0; p < positions; ++p) s += row[(long long)p * c];
  alpha[i] = s * scale;
}

// One warp per (frame, position): max(0, sum over channels of alpha * a).
__global__ void weighted_sum_kernel(const float* __restrict__ a, const float* __restrict__ alpha,
                                    float* __restrict__ cam, int n, int positions, int c) {
  const long long warp = (blockIdx.x * (long long)blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (warp >= (long long)n * positions) return;
  const long long f = warp / positions;
  const float* av = a + warp * c;
  const float* w = alpha + f * c;
  float s = 0.0f;
  for (int ch = lane; ch < c; ch += 32) s += w[ch] * av[ch];
  for (int off = 16; off > 0; off /= 2) s += __shfl_down_sync(0xffffffffu, s, off);
  if (lane == 0) cam[warp] = fmaxf(s, 0.0f);
}

// One block per frame: the cam [h,w] resized to [s,s] into maps, then divided by its largest
// value (all zero when that is 0).
__global__ void resize_normalise_kernel(const float* __restrict__ cam, float* __restrict__ maps,
                                        int h, int w, int s) {
  __shared__ float top[kThreads];
  const float* c = cam + (long long)blockIdx.x * h * w;
  float* out = maps + (long long)blockIdx.x * s * s;
  float m = 0.0f;
  for (int i = threadIdx.x; i < s * s; i += blockDim.x) {
    const Tap ty = resize_tap(i / s, h, s), tx = resize_tap(i % s, w, s);
    const float v = ty.w0 * (tx.w0 * c[ty.i0 * w + tx.i0] + tx.w1 * c[ty.i0 * w + tx.i1]) +
                    ty.w1 * (tx.w0 * c[ty.i1 * w + tx.i0] + tx.w1 * c[ty.i1 * w + tx.i1]);
    out[i] = v;
    m = fmaxf(m, v);
  }
  top[threadIdx.x] = m;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) top[threadIdx.x] = fmaxf(top[threadIdx.x], top[threadIdx.x + half]);
    __syncthreads();
  }
  const float peak = top[0];
  for (int i = threadIdx.x; i < s * s; i += blockDim.x) out[i] = peak > 0.0f ? out[i] / peak : 0.0f;
}

void check_f32(const Tensor& t, const char* op, const char* name) {
  if (t.dtype() != DType::F32)
    fail(std::string("cuda ") + op + ": " + name + " must be f32, got " + t.describe());
}

}  // namespace

void to_f32(const Tensor& x, const Tensor& y, cudaStream_t stream) {
  if (x.numel() != y.numel() || y.dtype() != DType::F32)
    fail("cuda to_f32: x " + x.describe() + " and y " + y.describe() + " do not fit");
  const long long n = x.numel();
  if (n == 0) return;
  switch (x.dtype()) {
    case DType::F32:
      FV_CUDA_CHECK(
          cudaMemcpyAsync(y.data(), x.data(), size_t(n) * 4, cudaMemcpyDeviceToDevice, stream));
      return;
    case DType::F16:
      to_f32_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x.ptr<const __half>(), y.ptr<float>(),
                                                            n);
      break;
    case DType::BF16:
      to_f32_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x.ptr<const __nv_bfloat16>(),
                                                            y.ptr<float>(), n);
      break;
    default:
      fail("cuda to_f32: unsupported dtype " + x.describe());
  }
  FV_CUDA_CHECK(cudaGetLastError());
}

void relu_mask(const Tensor& g, const Tensor& h, cudaStream_t stream) {
  check_f32(g, "relu_mask", "g");
  check_f32(h, "relu_mask", "h");
  if (g.numel() != h.numel())
    fail("cuda relu_mask: g " + g.describe() + " and h " + h.describe() + " do not fit");
  const long long n = g.numel();
  if (n == 0) return;
  relu_mask_kernel<<<blocks_for(n), kThreads, 0, stream>>>(g.ptr<float>(), h.ptr<const float>(), n);
  FV_CUDA_CHECK(cudaGetLastError());
}

void channel_sums(const Tensor& g, int positions, float scale, const Tensor& alpha,
                  cudaStream_t stream) {
  check_f32(g, "channel_sums", "g");
  check_f32(alpha, "channel_sums", "alpha");
  if (g.rank() != 2 || alpha.rank() != 2 || alpha.dim(0) != g.dim(0) || positions < 1 ||
      g.dim(1) != positions * alpha.dim(1))
    fail("cuda channel_sums: g " + g.describe() + ", " + std::to_string(positions) +
         " positions and alpha " + alpha.describe() + " do not fit");
  const long long total = g.dim(0) * alpha.dim(1);
  if (total == 0) return;
  channel_sums_kernel<<<int((total + kThreads - 1) / kThreads), kThreads, 0, stream>>>(
      g.ptr<const float>(), alpha.ptr<float>(), int(g.dim(0)), positions, int(alpha.dim(1)), scale);
  FV_CUDA_CHECK(cudaGetLastError());
}

void gradcam_map(const Tensor& a, const Tensor& alpha, const Tensor& cam, const Tensor& maps,
                 cudaStream_t stream) {
  for (auto [t, name] : {std::pair{&a, "a"}, {&alpha, "alpha"}, {&cam, "cam"}, {&maps, "maps"}})
    check_f32(*t, "gradcam_map", name);
  if (a.rank() != 4 || alpha.rank() != 2 || cam.rank() != 3 || maps.rank() != 3 ||
      alpha.dim(0) != a.dim(0) || alpha.dim(1) != a.dim(3) || cam.dim(0) != a.dim(0) ||
      cam.dim(1) != a.dim(1) || cam.dim(2) != a.dim(2) || maps.dim(0) != a.dim(0) ||
      maps.dim(1) != maps.dim(2))
    fail("cuda gradcam_map: a " + a.describe() + ", alpha " + alpha.describe() + ", cam " +
         cam.describe() + " and maps " + maps.describe() + " do not fit");
  const int n = int(a.dim(0)), h = int(a.dim(1)), w = int(a.dim(2)), c = int(a.dim(3));
  const int s = int(maps.dim(1));
  if (n == 0) return;
  const long long warps = (long long)n * h * w;
  weighted_sum_kernel<<<int((warps * 32 + kThreads - 1) / kThreads), kThreads, 0, stream>>>(
      a.ptr<const float>(), alpha.ptr<const float>(), cam.ptr<float>(), n, h * w, c);
  FV_CUDA_CHECK(cudaGetLastError());
  resize_normalise_kernel<<<n, kThreads, 0, stream>>>(cam.ptr<const float>(), maps.ptr<float>(), h,
                                                      w, s);
  FV_CUDA_CHECK(cudaGetLastError());
}

}  // namespace fervid::cuda
