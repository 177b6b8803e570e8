// The CPU backend: f32 (bf16 operands in the convolutions with --precision bf16, int8 ones with
// --precision int8), NHWC, host memory. Its layers are prepared with their own oneDNN
// convolutions (the choice is CpuConvPolicy's, engine/backends/cpu/conv_policy.h) or the
// float64-tested references of kernels/cpu; the rest are kernels/cpu's ops.
#include "backends/cpu/cpu_backend.h"

#include <cblas.h>
#include <omp.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "backends/cpu/conv_policy.h"
#include "cpu/onednn_conv.h"
#include "cpu/ops.h"
#include "fervid/error.h"
#include "fervid/weight_layout.h"

namespace fervid::cpu {

namespace {

// CPU ops run synchronously, so a host clock between marks is the op's time.
class HostTimeline final : public Timeline {
 public:
  void mark() override { marks_.push_back(std::chrono::steady_clock::now()); }
  std::vector<double> take_ms() override {
    std::vector<double> ms;
    for (size_t i = 1; i < marks_.size(); ++i)
      ms.push_back(std::chrono::duration<double, std::milli>(marks_[i] - marks_[i - 1]).count());
    marks_.clear();
    return ms;
  }

 private:
  std::vector<std::chrono::steady_clock::time_point> marks_;
};

OnednnMath onednn_math(CpuConvMath m) {
  switch (m) {
    case CpuConvMath::Winograd:
      return OnednnMath::Winograd;
    case CpuConvMath::Bf16:
      return OnednnMath::Bf16;
    case CpuConvMath::Bf16OnFma:
      return OnednnMath::Bf16OnFma;
    case CpuConvMath::Int8:
      return OnednnMath::Int8;
    default:
      return OnednnMath::Fp32;
  }
}

// A tensor of the memory meter's: a host copy of `src`.
OwnedTensor host_copy(const Tensor& src, MemoryMeter& meter) {
  OwnedTensor t = host_tensor(src.shape(), DType::F32);
  std::memcpy(t.tensor.data(), src.data(), src.bytes());
  t.buffer = meter.track(std::move(t.buffer));
  return t;
}

// A conv layer: its weights in OHWI, and its oneDNN convolution (null: the reference, im2col +
// OpenBLAS) made for exactly these weights.
class CpuConv final : public PreparedLayer {
 public:
  CpuConv(const LayerDesc& layer, const LayerWeights& weights, const CpuConvPolicy& policy,
          MemoryMeter& meter)
      : pool_(layer.pool), choice_(policy.for_layer(layer.in_channels, layer.int8_scale > 0)) {
    w_ = conv_weight_ohwi(weights.weight.tensor);
    w_.buffer = meter.track(std::move(w_.buffer));
    b_ = host_copy(weights.bias.tensor, meter);
    const bool int8 = choice_.math == CpuConvMath::Int8;
    if (int8 && !(layer.int8_scale > 0))
      // (The model names the layer in front of it.)
      fail_option(
          "{{precision}} int8 needs the activation scales of a calibration run in the weights' "
          "card (fervid calibrate; docs/int8.md)");
    if (layer.u8_input && !int8) fail("a u8 input for a layer not in int8");
    // Between two int8 layers the activations stay u8: this one writes at the next one's scale.
    io_.u8_input = layer.u8_input;
    if (int8 && layer.int8_out_scale > 0 &&
        policy.for_layer(layer.out_channels).math == CpuConvMath::Int8)
      io_.out_scale = layer.int8_out_scale;
    if (choice_.math != CpuConvMath::Blas)
      conv_ =
          std::make_unique<OnednnConv>(w_.tensor, onednn_math(choice_.math), layer.int8_scale, io_);
  }
  void run(std::span<const Tensor> x, const Tensor& y) override {
    if (!conv_) return cpu::conv3x3_bias_relu(x[0], w_.tensor, b_.tensor, pool_, y);
    // The model's buffers are typed f32; u8 activations are the same memory seen as u8.
    const auto as_u8 = [](const Tensor& t) {
      return Tensor(t.data(), t.shape(), DType::U8, t.layout(), t.device());
    };
    conv_->run(io_.u8_input ? as_u8(x[0]) : x[0], b_.tensor, pool_,
               io_.out_scale > 0 ? as_u8(y) : y);
  }
  std::vector<LayerPlan> plans() const override {
    std::string why = choice_.why;
    if (io_.u8_input) why += "; reads the layer before's u8";
    if (io_.out_scale > 0) why += "; writes u8 for the next";
    return {{cpu_conv_math_name(choice_.math), why}};
  }
  bool writes_u8() const override { return io_.out_scale > 0; }

 private:
  bool pool_;
  CpuLayerConv choice_;
  Int8Io io_;
  OwnedTensor w_, b_;
  std::unique_ptr<OnednnConv> conv_;
};

// A dense layer: cpu::linear flattens a rank-4 input in CHW order itself, so the weights keep
// their layout.
class CpuDense final : public PreparedLayer {
 public:
  CpuDense(const LayerDesc& layer, const LayerWeights& weights, MemoryMeter& meter)
      : relu_(layer.relu),
        w_(host_copy(weights.weight.tensor, meter)),
        b_(host_copy(weights.bias.tensor, meter)) {}
  void run(std::span<const Tensor> x, const Tensor& y) override {
    cpu::linear(x[0], w_.tensor, b_.tensor, relu_, y);
  }
  std::vector<LayerPlan> plans() const override { return {{"kernel", cpu::linear_kernel()}}; }

 private:
  bool relu_;
  OwnedTensor w_, b_;
};

// A convolution of any other geometry (the detector's: 1x1, depthwise, strided, uneven padding):
// cpu::conv2d_bias_act in f32 whatever the precision (a few MFLOP per frame).
class CpuGeneralConv final : public PreparedLayer {
 public:
  CpuGeneralConv(const LayerDesc& layer, const LayerWeights& weights, MemoryMeter& meter)
      : geometry_(layer.geometry), relu_(layer.relu), pool_(layer.pool) {
    if (pool_) fail(layer.name + ": the CPU backend pools after a 3x3 stride-1 convolution only");
    w_ = conv_weight_ohwi(weights.weight.tensor);
    w_.buffer = meter.track(std::move(w_.buffer));
    b_ = host_copy(weights.bias.tensor, meter);
  }
  void run(std::span<const Tensor> x, const Tensor& y) override {
    cpu::conv2d_bias_act(x[0], w_.tensor, b_.tensor, geometry_, relu_, y);
  }
  std::vector<LayerPlan> plans() const override {
    const char* how = geometry_.kernel == 1 && geometry_.stride == 1 && geometry_.groups == 1
                          ? "1x1: one SGEMM over the pixels (OpenBLAS)"
                      : geometry_.groups > 1 ? "grouped: fervid's loop over channels, f32"
                                             : "im2col + one SGEMM per frame (OpenBLAS)";
    return {{"kernel", how}};
  }

 private:
  ConvGeometry geometry_;
  bool relu_, pool_;
  OwnedTensor w_, b_;
};

class CpuAdd final : public PreparedLayer {
 public:
  explicit CpuAdd(const LayerDesc& layer) : relu_(layer.relu) {}
  void run(std::span<const Tensor> x, const Tensor& y) override {
    cpu::add_act(x[0], x[1], relu_, y);
  }
  std::vector<LayerPlan> plans() const override {
    return {{"kernel", "fervid's residual add (channels zero-extended)"}};
  }

 private:
  bool relu_;
};

class CpuMaxpool final : public PreparedLayer {
 public:
  void run(std::span<const Tensor> x, const Tensor& y) override { cpu::maxpool2x2(x[0], y); }
  std::vector<LayerPlan> plans() const override { return {{"kernel", "fervid's 2x2 max-pool"}}; }
};

class CpuUpsample final : public PreparedLayer {
 public:
  explicit CpuUpsample(bool half_pixel) : half_pixel_(half_pixel) {}
  void run(std::span<const Tensor> x, const Tensor& y) override {
    cpu::upsample_bilinear2x(x[0], half_pixel_, y);
  }
  std::vector<LayerPlan> plans() const override {
    return {{"kernel", "fervid's bilinear upsampling by 2"}};
  }

 private:
  bool half_pixel_;
};

class CpuGlobalAvgpool final : public PreparedLayer {
 public:
  void run(std::span<const Tensor> x, const Tensor& y) override { cpu::global_avgpool(x[0], y); }
  std::vector<LayerPlan> plans() const override {
    return {{"kernel", "fervid's global average pool, f64 sums"}};
  }
};

class CpuBackend final : public Backend, Timelines, DeviceGradcam, FaceFrameOps {
 public:
  CpuBackend(int threads, CpuConvPolicy policy) : policy_(std::move(policy)) {
    if (threads > 0) {
      omp_set_num_threads(threads);
      openblas_set_num_threads(threads);
    }
    threads_ = threads > 0 ? threads : omp_get_max_threads();
  }
  std::string name() const override { return "cpu"; }
  Layout activation_layout() const override { return Layout::NHWC; }
  DType compute_dtype() const override { return DType::F32; }
  Precision precision() const override {
    return policy_.bf16 ? Precision::Bf16 : policy_.int8 ? Precision::Int8 : Precision::Fp32;
  }
  // swscale's RGB is the reference path.
  bool prefers_yuv_frames() const override { return false; }
  std::string device_name() const override {
    return "CPU, " + std::to_string(threads_) + " threads, conv3x3 on " + policy_.describe();
  }

  Buffer allocate(size_t bytes) override { return meter_.track(Buffer::host(bytes)); }
  void copy_from_host(const Tensor& dst, const void* src) override {
    std::memcpy(dst.data(), src, dst.bytes());
  }
  void copy_to_host(void* dst, const Tensor& src) override {
    std::memcpy(dst, src.data(), src.bytes());
  }
  Buffer allocate_host(size_t bytes) override { return Buffer::host(bytes); }
  void copy_to_host_async(void* dst, const Tensor& src) override { copy_to_host(dst, src); }
  void synchronize() override {}
  size_t peak_memory_bytes() const override { return meter_.peak(); }
  Timelines* timelines() override { return this; }
  std::unique_ptr<Timeline> make_timeline() override { return std::make_unique<HostTimeline>(); }
  DeviceGradcam* device_gradcam() override { return this; }
  FaceFrameOps* face_frame_ops() override { return this; }

  std::unique_ptr<PreparedLayer> prepare(const LayerDesc& layer,
                                         const LayerWeights& weights) override {
    switch (layer.kind) {
      case LayerKind::Conv:
        if (!layer.vgg_conv()) return std::make_unique<CpuGeneralConv>(layer, weights, meter_);
        return std::make_unique<CpuConv>(layer, weights, policy_, meter_);
      case LayerKind::Dense:
        return std::make_unique<CpuDense>(layer, weights, meter_);
      case LayerKind::GlobalAvgPool:
        return std::make_unique<CpuGlobalAvgpool>();
      case LayerKind::Add:
        return std::make_unique<CpuAdd>(layer);
      case LayerKind::MaxPool:
        return std::make_unique<CpuMaxpool>();
      case LayerKind::Upsample:
        return std::make_unique<CpuUpsample>(layer.half_pixel);
    }
    fail(layer.name + ": a layer kind the CPU backend does not know");
  }

  void preprocess(std::span<const ImageView> frames, std::span<const CropRect> crops,
                  const Preprocess& pp, const Tensor& out) override {
    cpu::preprocess(frames, crops, pp, out);
  }
  void preprocess_yuv420(std::span<const YuvView> frames, std::span<const CropRect> crops,
                         const ColorSpec& cs, const Preprocess& pp, const Tensor& out) override {
    cpu::preprocess_yuv420(frames, crops, cs, pp, out);
  }
  void letterbox_yuv420(std::span<const YuvView> frames, const ColorSpec& cs,
                        const Tensor& out) override {
    cpu::letterbox_yuv420(frames, cs, out);
  }
  void face_crops_yuv420(std::span<const YuvView> frames, std::span<const FaceSquare> faces,
                         int crop_size, const ColorSpec& cs, const Preprocess& pp,
                         const Tensor& out) override {
    cpu::face_crops_yuv420(frames, faces, crop_size, cs, pp, out);
  }
  void softmax_argmax(const Tensor& logits, const Tensor& probs, const Tensor& labels) override {
    cpu::softmax_argmax(logits, probs, labels);
  }
  void vote_accumulate(const Tensor& probs, const Tensor& labels, std::span<const Segment> segments,
                       const Tensor& counts, const Tensor& sums) override {
    cpu::vote_accumulate(probs, labels, segments, counts, sums);
  }
  void vote_finalize(const Tensor& counts, const Tensor& sums, std::span<const int> slots,
                     VoteMode mode, const Tensor& winners, const Tensor& out_counts,
                     const Tensor& out_sums) override {
    cpu::vote_finalize(counts, sums, slots, mode, winners, out_counts, out_sums);
  }
  // The activations are already f32 on the host: the float64 reference runs on them as they are.
  void gradcam(const Tensor& acts, Head head, std::span<const DenseWeights> dense,
               std::span<int> classes, const Tensor& maps, const Tensor& logits) override {
    cpu::gradcam(acts, head, dense, classes, maps, logits);
  }

 private:
  int threads_ = 1;
  CpuConvPolicy policy_;
  MemoryMeter meter_;
};

}  // namespace

std::string cpu_bf16_unavailable() { return onednn_bf16_unavailable(); }
std::string cpu_int8_unavailable() { return onednn_int8_unavailable(); }

std::unique_ptr<Backend> make_cpu_backend(int threads, ConvImpl conv_impl, Precision precision) {
  return std::make_unique<CpuBackend>(threads,
                                      resolve_cpu_conv(conv_impl, precision, cpu_features()));
}

ScopedOmpThreads::ScopedOmpThreads(int threads) : before_(omp_get_max_threads()) {
  omp_set_num_threads(threads);
}
ScopedOmpThreads::~ScopedOmpThreads() { omp_set_num_threads(before_); }

}  // namespace fervid::cpu
