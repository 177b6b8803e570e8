// global_avgpool (CUDA): x [N,H,W,C] -> y [N,C], the mean over H*W in f32 (the CPU reference sums
// in f64; the difference is far inside every precision's tolerance). One thread per (frame,
// channel): consecutive threads read consecutive channels of the same pixel, so each step of the
// loop is one coalesced read per warp. VGG's last map is 7x7x512: 49 steps per thread.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda/check.h"
#include "cuda/ops.h"

namespace fervid::cuda {

namespace {

constexpr int kThreads = 128;

template <typename T>
__global__ void global_avgpool_nhwc(const T* __restrict__ x, T* __restrict__ y, int pixels, int c) {
  const int ch = blockIdx.x * blockDim.x + threadIdx.x;
  if (ch >= c) return;
  const T* src = x + (long long)blockIdx.y * pixels * c + ch;
  float sum = 0.0f;
  for (int p = 0; p < pixels; ++p) sum += float(src[(long long)p * c]);
  y[(long long)blockIdx.y * c + ch] = T(sum / float(pixels));
}

template <typename T>
void launch(const Tensor& x, const Tensor& y, cudaStream_t stream) {
  const int n = int(x.dim(0)), pixels = int(x.dim(1) * x.dim(2)), c = int(x.dim(3));
  if (n == 0) return;
  const dim3 grid((c + kThreads - 1) / kThreads, n);
  global_avgpool_nhwc<T><<<grid, kThreads, 0, stream>>>(x.ptr<const T>(), y.ptr<T>(), pixels, c);
  FV_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void global_avgpool(const Tensor& x, const Tensor& y, cudaStream_t stream) {
  if (x.rank() != 4 || y.rank() != 2 || x.dtype() != y.dtype() || y.dim(0) != x.dim(0) ||
      y.dim(1) != x.dim(3) || x.dim(1) * x.dim(2) < 1 || x.dim(0) > 65535)
    fail("cuda global_avgpool: x " + x.describe() + " and y " + y.describe() + " do not fit");
  switch (x.dtype()) {
    case DType::F32:
      return launch<float>(x, y, stream);
    case DType::F16:
      return launch<__half>(x, y, stream);
    case DType::BF16:
      return launch<__nv_bfloat16>(x, y, stream);
    default:
      fail("cuda global_avgpool: unsupported dtype " + x.describe());
  }
}

}  // namespace fervid::cuda
