// bias_relu (CUDA): y = max(y + b, 0) in place over y [..., K] (NHWC: the bias runs along the
// innermost dimension); f32, f16 or bf16 with the arithmetic in f32. The epilogue of a cuDNN
// convolution when cuDNN's fused call refuses a configuration (kernels/cuda/conv3x3_bias_relu.cpp).
// One thread per element, grid-stride; memory-bound: one read and one write per element.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda/check.h"
#include "cuda/ops.h"

namespace fervid::cuda {

namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void bias_relu_inner(T* __restrict__ y, const T* __restrict__ b, long long total,
                                int k) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
       i += (long long)gridDim.x * blockDim.x)
    y[i] = T(fmaxf(float(y[i]) + float(b[i % k]), 0.0f));
}

template <typename T>
void launch(const Tensor& y, const Tensor& b, cudaStream_t stream) {
  const long long total = y.numel();
  if (total == 0) return;
  const int blocks = int(std::min<long long>((total + kThreads - 1) / kThreads, 65535LL * 8));
  bias_relu_inner<T>
      <<<blocks, kThreads, 0, stream>>>(y.ptr<T>(), b.ptr<const T>(), total, int(b.numel()));
  FV_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void bias_relu(const Tensor& y, const Tensor& b, cudaStream_t stream) {
  if (y.rank() < 1 || b.numel() != y.dim(y.rank() - 1) || b.dtype() != y.dtype())
    fail("cuda bias_relu: y " + y.describe() + " and b " + b.describe() + " do not fit");
  switch (y.dtype()) {
    case DType::F32:
      return launch<float>(y, b, stream);
    case DType::F16:
      return launch<__half>(y, b, stream);
    case DType::BF16:
      return launch<__nv_bfloat16>(y, b, stream);
    default:
      fail("cuda bias_relu: unsupported dtype " + y.describe());
  }
}

}  // namespace fervid::cuda
