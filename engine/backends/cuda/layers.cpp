#include "backends/cuda/layers.h"

#include <algorithm>
#include <functional>
#include <optional>

#include "cuda/ops.h"
#include "cuda/plan_rules.h"
#include "cuda/runtime.h"
#include "fervid/error.h"
#include "fervid/weight_layout.h"

namespace fervid::cuda {

namespace {

// The implementations' names as LayerPlan and the CLI spell them (--conv-impl).
const std::string kIgemm = conv_impl_name(ConvImpl::Igemm),
                  kCudnn = conv_impl_name(ConvImpl::Cudnn);

constexpr int kConvTimingReps = 3;

class CudaConv final : public PreparedLayer {
 public:
  CudaConv(LayerHost& host, const CudaConvPolicy& policy, const LayerDesc& layer,
           const LayerWeights& weights)
      : host_(host), policy_(policy), pool_(layer.pool) {
    OwnedTensor krsc = conv_weight_ohwi(weights.weight.tensor);  // OIHW -> KRSC, cuDNN's NHWC
    w_ = host.upload(krsc.tensor, host.dtype());
    b_ = host.upload(weights.bias.tensor, host.dtype());
  }

  void run(std::span<const Tensor> x, const Tensor& y) override {
    host_.on_network("conv3x3_bias_relu");
    if (choose(x[0], y).impl == kIgemm)
      conv3x3_igemm_pool(x[0], w_.tensor, b_.tensor, pool_, y, host_.network_stream());
    else
      run_cudnn(x[0], y);
    host_.after_op("conv3x3_bias_relu");
  }
  std::vector<LayerPlan> plans() const override { return plans_; }

 private:
  void run_cudnn(const Tensor& x, const Tensor& y) {
    if (!pool_) return host_.cudnn().run(x, w_.tensor, b_.tensor, y);
    // cuDNN does not pool: the full-resolution output goes to scratch, then the pool kernel.
    Tensor full = host_.scratch({x.dim(0), x.dim(1), x.dim(2), w_.tensor.dim(0)}, x.dtype());
    host_.cudnn().run(x, w_.tensor, b_.tensor, full);
    maxpool2x2(full, y, host_.network_stream());
  }

  // The implementation at this batch size: the policy's, or with timing the faster of cuDNN
  // (+ pool kernel) and the implicit-GEMM kernel, timed on the real buffers the first time the
  // layer runs at a batch size that no earlier timing covers: a timing serves smaller batches
  // (plan_batch_for), a larger batch is timed afresh. A batch size's choice never changes once
  // made, so a captured graph and the same batch op by op agree.
  const LayerPlan& choose(const Tensor& x, const Tensor& y) {
    if (policy_.mode != CudaConvMode::Timed) {
      if (plans_.empty())
        plans_.push_back({policy_.mode == CudaConvMode::Igemm ? kIgemm : kCudnn, policy_.why});
      return plans_[0];
    }
    std::vector<int64_t> timed;
    for (const LayerPlan& p : plans_) timed.push_back(p.timed_batch);
    if (const std::optional<int64_t> from = plan_batch_for(timed, x.dim(0)))
      for (const LayerPlan& p : plans_)
        if (p.timed_batch == *from) return p;
    LayerPlan p;
    p.cudnn_ms = time_ms([&] { run_cudnn(x, y); });
    p.igemm_ms = time_ms(
        [&] { conv3x3_igemm_pool(x, w_.tensor, b_.tensor, pool_, y, host_.network_stream()); });
    p.timed_batch = x.dim(0);
    p.impl = p.igemm_ms < p.cudnn_ms ? kIgemm : kCudnn;
    p.why = policy_.why;
    plans_.push_back(p);
    return plans_.back();
  }

  template <typename Run>
  double time_ms(Run&& run) {
    run();  // plans (cuDNN's search) and warms up
    const cudaStream_t s = host_.network_stream();
    Event start, stop;
    double best = 0;
    for (int round = 0; round < 2; ++round) {
      start.record(s);
      for (int i = 0; i < kConvTimingReps; ++i) run();
      stop.record(s);
      const double ms = stop.since(start) / kConvTimingReps;
      best = round == 0 ? ms : std::min(best, ms);
    }
    return best;
  }

  LayerHost& host_;
  CudaConvPolicy policy_;
  bool pool_;
  OwnedTensor w_, b_;
  std::vector<LayerPlan> plans_;
};

class CudaDense final : public PreparedLayer {
 public:
  CudaDense(LayerHost& host, const LayerDesc& layer, const LayerWeights& weights)
      : host_(host), relu_(layer.relu) {
    const Tensor* w = &weights.weight.tensor;
    OwnedTensor hwc;
    if (layer.height * layer.width > 1) {  // fed by a flattened activation
      hwc = flatten_columns_hwc(*w, layer.in_channels);
      w = &hwc.tensor;
    }
    w_ = host.upload(*w, host.dtype());
    b_ = host.upload(weights.bias.tensor, layer.logits ? DType::F32 : host.dtype());
  }
  void run(std::span<const Tensor> x, const Tensor& y) override {
    host_.on_network("linear");
    // A rank-4 input is flattened as stored (HWC); the columns were permuted to match.
    const Tensor& in = x[0];
    const Tensor flat =
        in.rank() == 4
            ? Tensor(in.data(), {in.dim(0), in.numel() / std::max<int64_t>(in.dim(0), 1)},
                     in.dtype(), Layout::Plain, in.device())
            : in;
    host_.gemm().run(flat, w_.tensor, b_.tensor, relu_, y);
    host_.after_op("linear");
  }
  std::vector<LayerPlan> plans() const override {
    return {
        {"cublaslt", "cuBLASLt with the bias" + std::string(relu_ ? " + ReLU" : "") + " epilogue"}};
  }

 private:
  LayerHost& host_;
  bool relu_;
  OwnedTensor w_, b_;
};

// A layer without weights: one kernel of fervid's on the network lane, `op` naming it in the
// checks and the plan (`how`). The global average pool and the face detector's add, max-pool
// and upsampling.
class CudaKernelLayer final : public PreparedLayer {
 public:
  using Kernel = std::function<void(std::span<const Tensor>, const Tensor&, cudaStream_t)>;
  CudaKernelLayer(LayerHost& host, const char* op, const char* how, Kernel kernel)
      : host_(host), op_(op), how_(how), kernel_(std::move(kernel)) {}
  void run(std::span<const Tensor> x, const Tensor& y) override {
    host_.on_network(op_);
    kernel_(x, y, host_.network_stream());
    host_.after_op(op_);
  }
  std::vector<LayerPlan> plans() const override { return {{"kernel", how_}}; }

 private:
  LayerHost& host_;
  const char* op_;
  const char* how_;
  Kernel kernel_;
};

// The face detector's layers (docs/faces.md): fervid's direct kernels (kernels/cuda/conv2d.cu),
// weights and sums in f32 whatever the precision (a detector is a few tens of MFLOP a frame).
class CudaGeneralConv final : public PreparedLayer {
 public:
  CudaGeneralConv(LayerHost& host, const LayerDesc& layer, const LayerWeights& weights)
      : host_(host), geometry_(layer.geometry), relu_(layer.relu) {
    if (layer.pool)
      fail(layer.name + ": the CUDA backend pools after a 3x3 stride-1 convolution only");
    OwnedTensor ohwi = conv_weight_ohwi(weights.weight.tensor);
    w_ = host.upload(ohwi.tensor, DType::F32);
    b_ = host.upload(weights.bias.tensor, DType::F32);
  }
  void run(std::span<const Tensor> x, const Tensor& y) override {
    host_.on_network("conv2d_bias_act");
    conv2d_bias_act(x[0], w_.tensor, b_.tensor, geometry_, relu_, y, host_.network_stream());
    host_.after_op("conv2d_bias_act");
  }
  std::vector<LayerPlan> plans() const override {
    return {{"kernel", "fervid's direct conv2d kernel, f32 weights and sums"}};
  }

 private:
  LayerHost& host_;
  ConvGeometry geometry_;
  bool relu_;
  OwnedTensor w_, b_;
};

}  // namespace

std::unique_ptr<PreparedLayer> prepare_layer(LayerHost& host, const CudaConvPolicy& policy,
                                             const LayerDesc& layer, const LayerWeights& weights) {
  switch (layer.kind) {
    case LayerKind::Conv:
      if (!layer.vgg_conv()) return std::make_unique<CudaGeneralConv>(host, layer, weights);
      return std::make_unique<CudaConv>(host, policy, layer, weights);
    case LayerKind::Dense:
      return std::make_unique<CudaDense>(host, layer, weights);
    case LayerKind::GlobalAvgPool:
      return std::make_unique<CudaKernelLayer>(host, "global_avgpool",
                                               "fervid's global_avgpool kernel, f32 sums",
                                               [](std::span<const Tensor> x, const Tensor& y,
                                                  cudaStream_t s) { global_avgpool(x[0], y, s); });
    case LayerKind::Add:
      return std::make_unique<CudaKernelLayer>(
          host, "add_act", "fervid's residual add (channels zero-extended)",
          [relu = layer.relu](std::span<const Tensor> x, const Tensor& y, cudaStream_t s) {
            add_act(x[0], x[1], relu, y, s);
          });
    case LayerKind::MaxPool:
      return std::make_unique<CudaKernelLayer>(host, "maxpool2x2", "fervid's 2x2 max-pool",
                                               [](std::span<const Tensor> x, const Tensor& y,
                                                  cudaStream_t s) { maxpool2x2(x[0], y, s); });
    case LayerKind::Upsample:
      return std::make_unique<CudaKernelLayer>(
          host, "upsample_bilinear2x", "fervid's bilinear upsampling by 2",
          [half = layer.half_pixel](std::span<const Tensor> x, const Tensor& y, cudaStream_t s) {
            upsample_bilinear2x(x[0], half, y, s);
          });
  }
  fail(layer.name + ": a layer kind the CUDA backend does not know");
}

}  // namespace fervid::cuda
