// conv3x3_bias_relu (CUDA, cuDNN): y = ReLU(conv(x, w) + b) in one cuDNN call
// (cudnnConvolutionBiasActivationForward: deprecated in cuDNN 9 but supported, and on the H100
// it costs what the bare convolution costs; docs/design.md). NHWC activations, KRSC filters. Where
// the fused call accepts no algorithm for a shape, the plain convolution runs and fervid's
// bias_relu kernel (kernels/cuda/bias_relu.cu) finishes it. Plan, once per shape: descriptors, then
// cudnnFindConvolutionForwardAlgorithmEx times every algorithm on the real buffers; the fastest one
// that the fused call accepts (and, in strict fp32, that does not use TF32) is kept together with
// its workspace. A smaller batch size of a planned layer reuses its algorithm without searching; a
// larger one searches again (kernels/cuda/plan_rules.h). The 2x2 pool is a separate kernel here
// (kernels/cuda/maxpool2x2.cu); fervid's own conv fuses it.
#include <algorithm>
#include <iostream>

#include "cuda/check.h"
#include "cuda/library_ops.h"
#include "cuda/ops.h"
#include "cuda/plan_rules.h"
#include "cuda/runtime.h"

namespace fervid::cuda {

namespace {

// The most workspace the algorithm search may try; cuDNN's fastest VGG algorithms need far less.
constexpr size_t kSearchWorkspace = size_t(512) << 20;

cudnnDataType_t cudnn_type(DType t) {
  switch (t) {
    case DType::F32:
      return CUDNN_DATA_FLOAT;
    case DType::F16:
      return CUDNN_DATA_HALF;
    case DType::BF16:
      return CUDNN_DATA_BFLOAT16;
    default:
      fail("cuDNN conv: unsupported dtype " + std::string(dtype_name(t)));
  }
}

const char* algo_name(cudnnConvolutionFwdAlgo_t a) {
  switch (a) {
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM:
      return "IMPLICIT_GEMM";
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM:
      return "IMPLICIT_PRECOMP_GEMM";
    case CUDNN_CONVOLUTION_FWD_ALGO_GEMM:
      return "GEMM";
    case CUDNN_CONVOLUTION_FWD_ALGO_DIRECT:
      return "DIRECT";
    case CUDNN_CONVOLUTION_FWD_ALGO_FFT:
      return "FFT";
    case CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING:
      return "FFT_TILING";
    case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD:
      return "WINOGRAD";
    case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED:
      return "WINOGRAD_NONFUSED";
    default:
      return "unknown";
  }
}

template <typename Fn>
void log_failure(const char* what, Fn&& destroy) {
  cudnnStatus_t s = destroy();
  if (s != CUDNN_STATUS_SUCCESS)
    std::cerr << "fervid: " << what << " failed: " << cudnnGetErrorString(s) << "\n";
}

}  // namespace

struct ConvCudnn::Plan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, bias = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  cudnnActivationDescriptor_t act = nullptr;
  cudnnConvolutionFwdAlgo_t algo{};
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  bool fused = true;  // false: plain convolution, then fervid's bias_relu kernel

  Plan() {
    FV_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x));
    FV_CUDNN_CHECK(cudnnCreateTensorDescriptor(&y));
    FV_CUDNN_CHECK(cudnnCreateTensorDescriptor(&bias));
    FV_CUDNN_CHECK(cudnnCreateFilterDescriptor(&w));
    FV_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv));
    FV_CUDNN_CHECK(cudnnCreateActivationDescriptor(&act));
  }
  ~Plan() {
    log_failure("cudnnDestroyTensorDescriptor", [&] { return cudnnDestroyTensorDescriptor(x); });
    log_failure("cudnnDestroyTensorDescriptor", [&] { return cudnnDestroyTensorDescriptor(y); });
    log_failure("cudnnDestroyTensorDescriptor", [&] { return cudnnDestroyTensorDescriptor(bias); });
    log_failure("cudnnDestroyFilterDescriptor", [&] { return cudnnDestroyFilterDescriptor(w); });
    log_failure("cudnnDestroyConvolutionDescriptor",
                [&] { return cudnnDestroyConvolutionDescriptor(conv); });
    log_failure("cudnnDestroyActivationDescriptor",
                [&] { return cudnnDestroyActivationDescriptor(act); });
  }
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
};

ConvCudnn::ConvCudnn(cudaStream_t stream, bool allow_tf32, MemoryMeter meter, bool fused)
    : stream_(stream), allow_tf32_(allow_tf32), meter_(std::move(meter)), fused_(fused) {
  FV_CUDNN_CHECK(cudnnCreate(&handle_));
  FV_CUDNN_CHECK(cudnnSetStream(handle_, stream_));
}

ConvCudnn::~ConvCudnn() {
  plans_.clear();
  log_failure("cudnnDestroy", [&] { return cudnnDestroy(handle_); });
}

void ConvCudnn::reserve_workspace(size_t bytes) {
  if (workspace_.bytes() >= bytes) return;
  // Queued work may still use the old workspace; planning is rare, so wait for it.
  FV_CUDA_CHECK(cudaStreamSynchronize(stream_));
  workspace_ = Buffer();
  workspace_ = meter_.track(device_buffer(bytes));
}

// A batch of a size not planned yet takes the algorithm of the same layer planned for the
// smallest larger batch (plan_batch_for), if the fused call accepts it at this size: the last,
// partial batch of a run plans without a search. A larger batch, or a refusal, searches afresh.
bool ConvCudnn::reuse_smaller_batch(Plan& p, const Tensor& x, const Tensor& w, const Tensor& b,
                                    const Tensor& y) {
  const int64_t n = x.dim(0);
  std::vector<int64_t> planned;
  for (const auto& [other_key, other] : plans_) {
    auto [on, oh, ow, oc, ok, odt] = other_key;
    if (oh == x.dim(1) && ow == x.dim(2) && oc == x.dim(3) && ok == w.dim(0) && odt == x.dtype())
      planned.push_back(on);
  }
  const std::optional<int64_t> from = plan_batch_for(planned, n);
  if (!from) return false;
  const Plan& other = *plans_.at(Key{*from, x.dim(1), x.dim(2), x.dim(3), w.dim(0), x.dtype()});
  FV_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, other.math));
  size_t bytes = 0;
  const cudnnStatus_t ws =
      cudnnGetConvolutionForwardWorkspaceSize(handle_, p.x, p.w, p.conv, p.y, other.algo, &bytes);
  if (fused_trial(ws) == FusedTrial::Next) return false;
  FV_CUDNN_CHECK(ws);
  reserve_workspace(bytes);
  if (other.fused) {
    const float one = 1.0f, zero = 0.0f;
    const cudnnStatus_t s = cudnnConvolutionBiasActivationForward(
        handle_, &one, p.x, x.data(), p.w, w.data(), p.conv, other.algo, workspace_.data(),
        workspace_.bytes(), &zero, p.y, y.data(), p.bias, b.data(), p.act, p.y, y.data());
    if (fused_trial(s) == FusedTrial::Next) return false;
    FV_CUDNN_CHECK(s);
  }
  p.algo = other.algo;
  p.math = other.math;
  p.fused = other.fused;
  return true;
}

ConvCudnn::Plan& ConvCudnn::plan(const Tensor& x, const Tensor& w, const Tensor& b,
                                 const Tensor& y) {
  const int n = int(x.dim(0)), h = int(x.dim(1)), wd = int(x.dim(2)), c = int(x.dim(3)),
            k = int(w.dim(0));
  Key key{n, h, wd, c, k, x.dtype()};
  auto it = plans_.find(key);
  if (it != plans_.end()) return *it->second;

  auto p = std::make_unique<Plan>();
  const cudnnDataType_t t = cudnn_type(x.dtype());
  FV_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NHWC, t, n, c, h, wd));
  FV_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NHWC, t, n, k, h, wd));
  FV_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->bias, CUDNN_TENSOR_NHWC, t, 1, k, 1, 1));
  FV_CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w, t, CUDNN_TENSOR_NHWC, k, c, 3, 3));
  FV_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(p->conv, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION,
                                                 CUDNN_DATA_FLOAT));
  const bool strict_f32 = x.dtype() == DType::F32 && !allow_tf32_;
  FV_CUDNN_CHECK(
      cudnnSetConvolutionMathType(p->conv, strict_f32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH));
  FV_CUDNN_CHECK(
      cudnnSetActivationDescriptor(p->act, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0.0));

  const float one = 1.0f, zero = 0.0f;
  if (reuse_smaller_batch(*p, x, w, b, y)) return *(plans_[key] = std::move(p));
  FV_CUDNN_CHECK(
      cudnnSetConvolutionMathType(p->conv, strict_f32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH));

  // Time every algorithm on the real buffers (y is overwritten; the fused call below rewrites
  // it). The search workspace is temporary.
  size_t free_bytes = 0, total = 0;
  FV_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total));
  Buffer search = device_buffer(std::min(kSearchWorkspace, free_bytes / 2));
  cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  int returned = 0;
  FV_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(
      handle_, p->x, x.data(), p->w, w.data(), p->conv, p->y, y.data(),
      CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &returned, perf, search.data(), search.bytes()));
  search = Buffer();

  // The fastest algorithm the fused call accepts; if it accepts none, the fastest one for the
  // plain convolution with the bias and ReLU in a separate kernel.
  const cudnnConvolutionFwdAlgoPerf_t* unfused = nullptr;
  for (int i = 0; i < returned; ++i) {
    const cudnnConvolutionFwdAlgoPerf_t& r = perf[i];
    if (r.status != CUDNN_STATUS_SUCCESS) continue;
    // fp32 promises the CPU's answer to ~1e-6: no TF32, and no FFT or Winograd, whose transforms
    // lose a few more bits than a direct sum.
    if (strict_f32 && (r.mathType != CUDNN_FMA_MATH || r.algo == CUDNN_CONVOLUTION_FWD_ALGO_FFT ||
                       r.algo == CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING ||
                       r.algo == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD ||
                       r.algo == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED))
      continue;
    if (!unfused) unfused = &r;
    if (!fused_) break;
    FV_CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, r.mathType));
    reserve_workspace(r.memory);
    // The fused call takes fewer configurations than the plain convolution: try it once here.
    cudnnStatus_t s = cudnnConvolutionBiasActivationForward(
        handle_, &one, p->x, x.data(), p->w, w.data(), p->conv, r.algo, workspace_.data(),
        workspace_.bytes(), &zero, p->y, y.data(), p->bias, b.data(), p->act, p->y, y.data());
    if (fused_trial(s) == FusedTrial::Next) continue;
    FV_CUDNN_CHECK(s);
    p->algo = r.algo;
    p->math = r.mathType;
    p->fused = true;
    last_algorithm_ = std::string(algo_name(r.algo)) +
                      (r.mathType == CUDNN_FMA_MATH ? " (fma, fused)" : " (tensor ops, fused)");
    return *(plans_[key] = std::move(p));
  }
  if (!unfused)
    fail("cuDNN has no convolution algorithm for x " + x.describe() + ", w " + w.describe() +
         (strict_f32 ? " in strict fp32" : ""));
  FV_CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, unfused->mathType));
  reserve_workspace(unfused->memory);
  p->algo = unfused->algo;
  p->math = unfused->mathType;
  p->fused = false;
  last_algorithm_ = std::string(algo_name(unfused->algo)) +
                    (unfused->mathType == CUDNN_FMA_MATH ? " (fma" : " (tensor ops") +
                    ") + bias_relu kernel";
  return *(plans_[key] = std::move(p));
}

void ConvCudnn::run(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y) {
  if (x.rank() != 4 || w.rank() != 4 || y.rank() != 4 || w.dim(1) != 3 || w.dim(2) != 3 ||
      w.dim(3) != x.dim(3) || b.numel() != w.dim(0) || y.dim(0) != x.dim(0) ||
      y.dim(1) != x.dim(1) || y.dim(2) != x.dim(2) || y.dim(3) != w.dim(0) ||
      w.dtype() != x.dtype() || b.dtype() != x.dtype() || y.dtype() != x.dtype())
    fail("cuDNN conv3x3_bias_relu: x " + x.describe() + ", w " + w.describe() + ", b " +
         b.describe() + ", y " + y.describe() + " do not fit");
  if (x.dim(0) == 0) return;
  Plan& p = plan(x, w, b, y);
  const float one = 1.0f, zero = 0.0f;
  if (p.fused) {
    FV_CUDNN_CHECK(cudnnConvolutionBiasActivationForward(
        handle_, &one, p.x, x.data(), p.w, w.data(), p.conv, p.algo, workspace_.data(),
        workspace_.bytes(), &zero, p.y, y.data(), p.bias, b.data(), p.act, p.y, y.data()));
  } else {
    FV_CUDNN_CHECK(cudnnConvolutionForward(handle_, &one, p.x, x.data(), p.w, w.data(), p.conv,
                                           p.algo, workspace_.data(), workspace_.bytes(), &zero,
                                           p.y, y.data()));
    bias_relu(y, b, stream_);
  }
}

}  // namespace fervid::cuda
