// linear (CUDA, cuBLASLt): y [N,out] = x [N,in] * w [out,in]^T + b, ReLU fused when asked, in one
// cublasLtMatmul with the BIAS / RELU_BIAS epilogue. Row-major tensors seen column-major:
// w is a column-major [in,out] matrix used transposed, x a column-major [in,N] one, and y the
// column-major [out,N] result, so the bias runs along y's rows (one value per output feature).
// The logits layer reads f16/bf16 activations and writes f32 (cuBLASLt's 16F x 16F -> 32F case).
// Plan once per shape: layouts, the descriptor and the heuristic's first algorithm.
#include <iostream>
#include <random>
#include <vector>

#include "cuda/check.h"
#include "cuda/library_ops.h"
#include "cuda/runtime.h"

namespace fervid::cuda {

namespace {

// cuBLAS's own recommendation for Hopper's largest kernels.
constexpr size_t kWorkspace = size_t(32) << 20;

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::F32:
      return CUDA_R_32F;
    case DType::F16:
      return CUDA_R_16F;
    case DType::BF16:
      return CUDA_R_16BF;
    default:
      fail("cuBLASLt linear: unsupported dtype " + std::string(dtype_name(t)));
  }
}

void log_failure(const char* what, cublasStatus_t s) {
  if (s != CUBLAS_STATUS_SUCCESS)
    std::cerr << "fervid: " << what << " failed: " << cublasLtGetStatusString(s) << "\n";
}

}  // namespace

struct LinearCublasLt::Plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};

  Plan() = default;
  ~Plan() {
    if (d) log_failure("cublasLtMatrixLayoutDestroy", cublasLtMatrixLayoutDestroy(d));
    if (b) log_failure("cublasLtMatrixLayoutDestroy", cublasLtMatrixLayoutDestroy(b));
    if (a) log_failure("cublasLtMatrixLayoutDestroy", cublasLtMatrixLayoutDestroy(a));
    if (op) log_failure("cublasLtMatmulDescDestroy", cublasLtMatmulDescDestroy(op));
  }
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
};

LinearCublasLt::LinearCublasLt(cudaStream_t stream, bool allow_tf32, MemoryMeter meter)
    : stream_(stream), allow_tf32_(allow_tf32), meter_(std::move(meter)) {
  FV_CUBLAS_CHECK(cublasLtCreate(&handle_));
  workspace_ = meter_.track(device_buffer(kWorkspace));
}

LinearCublasLt::~LinearCublasLt() {
  plans_.clear();
  log_failure("cublasLtDestroy", cublasLtDestroy(handle_));
}

LinearCublasLt::Plan& LinearCublasLt::plan(int64_t n, int64_t in, int64_t out, DType xt, DType yt,
                                           bool relu, bool bias) {
  Key key{n, in, out, xt, yt, !bias ? 0 : relu ? 2 : 1};
  auto it = plans_.find(key);
  if (it != plans_.end()) return *it->second;
  auto p = std::make_unique<Plan>();
  const cublasComputeType_t compute =
      xt == DType::F32 && allow_tf32_ ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  FV_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->op, compute, CUDA_R_32F));
  const cublasOperation_t transa = CUBLAS_OP_T, transb = CUBLAS_OP_N;
  FV_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &transa, sizeof(transa)));
  FV_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &transb, sizeof(transb)));
  const cublasLtEpilogue_t epilogue = !bias  ? CUBLASLT_EPILOGUE_DEFAULT
                                      : relu ? CUBLASLT_EPILOGUE_RELU_BIAS
                                             : CUBLASLT_EPILOGUE_BIAS;
  FV_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue,
                                                 sizeof(epilogue)));
  FV_CUBLAS_CHECK(
      cublasLtMatrixLayoutCreate(&p->a, cuda_type(xt), uint64_t(in), uint64_t(out), in));
  FV_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->b, cuda_type(xt), uint64_t(in), uint64_t(n), in));
  FV_CUBLAS_CHECK(
      cublasLtMatrixLayoutCreate(&p->d, cuda_type(yt), uint64_t(out), uint64_t(n), out));

  cublasLtMatmulPreference_t pref = nullptr;
  FV_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  const size_t ws = workspace_.bytes();
  cublasStatus_t s = cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  if (s == CUBLAS_STATUS_SUCCESS)
    s = cublasLtMatmulAlgoGetHeuristic(handle_, p->op, p->a, p->b, p->d, p->d, pref, 1, &result,
                                       &found);
  log_failure("cublasLtMatmulPreferenceDestroy", cublasLtMatmulPreferenceDestroy(pref));
  FV_CUBLAS_CHECK(s);
  if (found < 1)
    fail("cuBLASLt has no algorithm for a [" + std::to_string(n) + "," + std::to_string(in) +
         "] x [" + std::to_string(in) + "," + std::to_string(out) + "] " +
         std::string(dtype_name(xt)) + " -> " + std::string(dtype_name(yt)) +
         " matmul with this epilogue");
  p->algo = result.algo;
  return *(plans_[key] = std::move(p));
}

void LinearCublasLt::run(const Tensor& x, const Tensor& w, const Tensor& b, bool relu,
                         const Tensor& y) {
  if (x.rank() != 2 || w.rank() != 2 || y.rank() != 2 || w.dim(1) != x.dim(1) ||
      y.dim(0) != x.dim(0) || y.dim(1) != w.dim(0) || b.numel() != w.dim(0) ||
      w.dtype() != x.dtype() || b.dtype() != y.dtype())
    fail("cuBLASLt linear: x " + x.describe() + ", w " + w.describe() + ", b " + b.describe() +
         ", y " + y.describe() + " do not fit");
  if (x.dim(0) == 0) return;
  Plan& p = plan(x.dim(0), x.dim(1), w.dim(0), x.dtype(), y.dtype(), relu, true);
  const void* bias = b.data();
  FV_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
  const float one = 1.0f, zero = 0.0f;
  FV_CUBLAS_CHECK(cublasLtMatmul(handle_, p.op, &one, w.data(), p.a, x.data(), p.b, &zero, y.data(),
                                 p.d, y.data(), p.d, &p.algo, workspace_.data(), workspace_.bytes(),
                                 stream_));
}

double LinearCublasLt::gemm_tflops(DType dtype, int size, int iters) {
  const size_t elems = size_t(size) * size, bytes = elems * dtype_size(dtype);
  // Random operands: tensor-core power (and so clocks) depends on the data; zeros flatter.
  std::vector<uint16_t> h16;
  std::vector<float> h32;
  std::mt19937 gen(7);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  const void* host = nullptr;
  if (dtype == DType::F32) {
    h32.resize(elems);
    for (float& v : h32) v = dist(gen);
    host = h32.data();
  } else {
    h16.resize(elems);
    for (uint16_t& v : h16)
      v = dtype == DType::F16 ? float_to_half(dist(gen)) : float_to_bf16(dist(gen));
    host = h16.data();
  }
  Buffer a = device_buffer(bytes), b = device_buffer(bytes), d = device_buffer(bytes);
  FV_CUDA_CHECK(cudaMemcpy(a.data(), host, bytes, cudaMemcpyHostToDevice));
  FV_CUDA_CHECK(cudaMemcpy(b.data(), host, bytes, cudaMemcpyHostToDevice));
  Plan& p = plan(size, size, size, dtype, dtype, false, false);
  const float one = 1.0f, zero = 0.0f;
  auto launch = [&] {
    FV_CUBLAS_CHECK(cublasLtMatmul(handle_, p.op, &one, a.data(), p.a, b.data(), p.b, &zero,
                                   d.data(), p.d, d.data(), p.d, &p.algo, workspace_.data(),
                                   workspace_.bytes(), stream_));
  };
  for (int i = 0; i < 3; ++i) launch();
  Event start, stop;
  start.record(stream_);
  for (int i = 0; i < iters; ++i) launch();
  stop.record(stream_);
  const double ms = stop.since(start) / iters;
  return 2.0 * double(size) * size * size / (ms * 1e-3) / 1e12;
}

}  // namespace fervid::cuda
