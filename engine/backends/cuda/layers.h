// The CUDA backend's prepared layers (backends/backend.h): a conv layer (its weights in KRSC and
// the compute precision; cuDNN's fused call with the pool kernel after it, or fervid's tensor-core
// conv with the pool fused, chosen per batch size by CudaConvPolicy), a dense layer (cuBLASLt with
// its bias / ReLU epilogue, fc1's columns permuted once from torchvision's CHW order to the NHWC
// order of the activations after a flatten), a global average pool. What they share of the
// backend (the network stream, cuDNN's and cuBLASLt's handles and workspaces, the pool scratch,
// the check after every op) comes through LayerHost.
#pragma once

#include <memory>
#include <vector>

#include "backends/backend.h"
#include "backends/cuda/conv_policy.h"
#include "cuda/library_ops.h"

namespace fervid::cuda {

class LayerHost {
 public:
  virtual ~LayerHost() = default;
  virtual cudaStream_t network_stream() = 0;
  virtual void on_network(const char* op) = 0;  // fails off the network lane
  virtual void after_op(const char* op) = 0;    // FERVID_SYNC_CHECK=1: synchronise and check
  virtual DType dtype() = 0;                    // the activations' and weights' dtype
  virtual ConvCudnn& cudnn() = 0;
  virtual LinearCublasLt& gemm() = 0;
  // A device tensor of `shape` the backend owns (a cuDNN layer's unpooled output), valid until the
  // next call; it grows, after the queued work is done, when a larger one is needed.
  virtual Tensor scratch(std::vector<int64_t> shape, DType dtype) = 0;
  // A host f32 tensor converted to `dtype` in device memory.
  virtual OwnedTensor upload(const Tensor& host_f32, DType dtype) = 0;
};

std::unique_ptr<PreparedLayer> prepare_layer(LayerHost& host, const CudaConvPolicy& policy,
                                             const LayerDesc& layer, const LayerWeights& weights);

}  // namespace fervid::cuda
