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
#include <span>
#include <tuple>
#include <vector>

#include "fervid/tensor.h"
#include "fervid/weights.h"

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
  bool reuse_smaller_batch(Plan& p, const Tensor& x, const Tensor& w, const Tensor& b,
                           const Tensor& y);
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

// Grad-CAM's head on the device (docs/explain.md), the device side of cpu::gradcam: the last
// conv layer's activated output acts [N,H,W,K] (f32, f16 or bf16, NHWC) to f32, its 2x2 max-pool,
// GAP or the flatten, the dense layers forward (cuBLASLt, f32 without TF32), the gradient of each
// frame's class back through them (cuBLASLt on the weights transposed once, the ReLU masks),
// summed per channel, and the map (gradcam_map). The dense layers go to the device once, on the
// first call with them (keyed by the host tensors' addresses: they must outlive this object).
class GradcamHead {
 public:
  GradcamHead(cudaStream_t stream, MemoryMeter meter);
  ~GradcamHead();
  GradcamHead(const GradcamHead&) = delete;
  GradcamHead& operator=(const GradcamHead&) = delete;

  // classes [N]: -1 takes the frame's largest logit (written back); maps [N,S,S] and logits
  // [N,C] are f32 host tensors. Synchronises the stream.
  void run(const Tensor& acts, bool gap_head, std::span<const DenseWeights> dense,
           std::span<int> classes, const Tensor& maps, const Tensor& logits);

 private:
  struct DeviceLayer;
  const std::vector<DeviceLayer>& layers_for(std::span<const DenseWeights> dense, int64_t k,
                                             int64_t positions, bool gap_head);

  cudaStream_t stream_;
  MemoryMeter meter_;
  LinearCublasLt gemm_;
  const Tensor* layers_key_ = nullptr;
  std::vector<DeviceLayer> layers_;
};

}  // namespace fervid::cuda
