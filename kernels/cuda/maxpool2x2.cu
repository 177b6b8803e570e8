// maxpool2x2 (CUDA): 2x2 window, stride 2, floor for odd sizes; NHWC, f32/f16/bf16.
// One thread per output element; consecutive threads take consecutive channels, so the four
// reads of a warp are each one coalesced run. Memory-bound: 4 reads + 1 write per output.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda/check.h"
#include "cuda/ops.h"

namespace fervid::cuda {

namespace {

constexpr int kThreads = 256;  // a multiple of the warp; enough blocks for any VGG layer

template <typename T>
__device__ T max4(T a, T b, T c, T d) {
  float m = fmaxf(fmaxf(float(a), float(b)), fmaxf(float(c), float(d)));
  return T(m);
}

template <typename T>
__global__ void maxpool2x2_nhwc(const T* __restrict__ x, T* __restrict__ y, int n, int h, int w,
                                int c) {
  const int oh = h / 2, ow = w / 2;
  const long long total = (long long)n * oh * ow * c;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
       i += (long long)gridDim.x * blockDim.x) {
    const int ch = int(i % c);
    long long p = i / c;
    const int ox = int(p % ow);
    p /= ow;
    const int oy = int(p % oh);
    const long long img = p / oh;
    const T* r0 = x + ((img * h + 2 * oy) * w + 2 * ox) * (long long)c + ch;
    const T* r1 = r0 + (long long)w * c;
    y[i] = max4(r0[0], r0[c], r1[0], r1[c]);
  }
}

template <typename T>
void launch(const Tensor& x, const Tensor& y, cudaStream_t stream) {
  const int n = int(x.dim(0)), h = int(x.dim(1)), w = int(x.dim(2)), c = int(x.dim(3));
  const long long total = (long long)n * (h / 2) * (w / 2) * c;
  if (total == 0) return;
  const int blocks = int(std::min<long long>((total + kThreads - 1) / kThreads, 65535LL * 8));
  maxpool2x2_nhwc<T><<<blocks, kThreads, 0, stream>>>(x.ptr<const T>(), y.ptr<T>(), n, h, w, c);
  FV_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void maxpool2x2(const Tensor& x, const Tensor& y, cudaStream_t stream) {
  if (x.rank() != 4 || y.rank() != 4 || x.dtype() != y.dtype() || y.dim(0) != x.dim(0) ||
      y.dim(1) != x.dim(1) / 2 || y.dim(2) != x.dim(2) / 2 || y.dim(3) != x.dim(3))
    fail("cuda maxpool2x2: x " + x.describe() + " and y " + y.describe() + " do not fit");
  switch (x.dtype()) {
    case DType::F32:
      return launch<float>(x, y, stream);
    case DType::F16:
      return launch<__half>(x, y, stream);
    case DType::BF16:
      return launch<__nv_bfloat16>(x, y, stream);
    default:
      fail("cuda maxpool2x2: unsupported dtype " + x.describe());
  }
}

}  // namespace fervid::cuda
