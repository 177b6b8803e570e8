// The ops fervid hands to NVIDIA's libraries: conv3x3 + bias + ReLU through cuDNN's fused call and
// the FC layers through cuBLASLt with its bias (+ReLU) epilogue. Each object owns its library
// handle and plans once per shape (descriptors, algorithm, workspace) on first use; later calls
// only launch. Precision follows the tensors' dtype; `allow_tf32` lets f32 use the tensor cores.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <map>
#include <memory>
#include <tuple>

#include "fervid/tensor.h"

namespace fervid::cuda {

class ConvCudnn {
 public:
  // fused = false: always the plain convolution followed by fervid's bias_relu kernel (what a
  // shape gets anyway when cuDNN's fused call accepts none of its algorithms).
  ConvCudnn(cudaStream_t stream, bool allow_tf32, MemoryMeter meter, bool fused = true);
  ~ConvCudnn();
  ConvCudnn(const ConvCudnn&) = delete;
  ConvCudnn& operator=(const ConvCudnn&) = delete;

  // y [N,H,W,K] = ReLU(conv3x3(x [N,H,W,C], w [K,3,3,C]) + b [K]), stride 1, pad 1; NHWC, all
  // of one dtype (f32, f16, bf16), f32 accumulation.
  void run(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y);
  // The algorithm chosen for the last shape planned, e.g. "IMPLICIT_PRECOMP_GEMM (tensor ops)".
  std::string last_algorithm() const { return last_algorithm_; }
  // The workspace every call uses (it moves when a new plan needs a larger one).
  const void* workspace() const { return workspace_.data(); }

 private:
  struct Plan;
  using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, DType>;
  Plan& plan(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y);
  void reserve_workspace(size_t bytes);

  cudaStream_t stream_;
  bool allow_tf32_;
  MemoryMeter meter_;
  bool fused_;
  cudnnHandle_t handle_ = nullptr;
  Buffer workspace_;
  std::map<Key, std::unique_ptr<Plan>> plans_;
  std::string last_algorithm_;
};

class LinearCublasLt {
 public:
  LinearCublasLt(cudaStream_t stream, bool allow_tf32, MemoryMeter meter);
  ~LinearCublasLt();
  LinearCublasLt(const LinearCublasLt&) = delete;
  LinearCublasLt& operator=(const LinearCublasLt&) = delete;

  // y [N,out] = x [N,in] * w[out,in]^T + b [out], then ReLU when `relu`. x and w share a dtype;
  // y and b share one (f32 for logits from f16/bf16 inputs is allowed).
  void run(const Tensor& x, const Tensor& w, const Tensor& b, bool relu, const Tensor& y);
  // C [m,n] = A [m,k] * B [k,n] timed over `iters` launches after a warm-up: TFLOP/s.
  double gemm_tflops(DType dtype, int size, int iters);
  const void* workspace() const { return workspace_.data(); }

 private:
  struct Plan;
  using Key = std::tuple<int64_t, int64_t, int64_t, DType, DType, int>;  // ..., epilogue
  Plan& plan(int64_t n, int64_t in, int64_t out, DType xt, DType yt, bool relu, bool bias);

  cudaStream_t stream_;
  bool allow_tf32_;
  MemoryMeter meter_;
  cublasLtHandle_t handle_ = nullptr;
  Buffer workspace_;
  std::map<Key, std::unique_ptr<Plan>> plans_;
};

}  // namespace fervid::cuda
