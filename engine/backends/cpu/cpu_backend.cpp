// The CPU backend: the reference implementation of every op, f32, NHWC, host memory.
#include "backends/cpu/cpu_backend.h"

#include <cblas.h>
#include <omp.h>

#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

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

class CpuBackend final : public Backend, Timelines {
 public:
  // conv_: Onednn (every conv layer on oneDNN's direct convolution), Winograd (oneDNN's Winograd
  // where a layer has enough input channels) or Blas (im2col + OpenBLAS, the reference).
  // bf16_on_fma: bf16's operands multiplied on the f32 FMA units (OnednnMath::Bf16OnFma), the
  // reason being bf16_on_fma (why oneDNN's bf16 kernels are slower on this CPU); "" for those.
  CpuBackend(int threads, ConvImpl conv, bool bf16, std::string bf16_on_fma)
      : conv_(conv), bf16_(bf16), bf16_on_fma_(std::move(bf16_on_fma)) {
    if (threads > 0) {
      omp_set_num_threads(threads);
      openblas_set_num_threads(threads);
    }
    threads_ = threads > 0 ? threads : omp_get_max_threads();
  }
  std::string name() const override { return "cpu"; }
  Layout activation_layout() const override { return Layout::NHWC; }
  DType compute_dtype() const override { return DType::F32; }
  Precision precision() const override { return bf16_ ? Precision::Bf16 : Precision::Fp32; }
  // swscale's RGB is the reference path.
  bool prefers_yuv_frames() const override { return false; }
  std::string device_name() const override {
    const std::string conv =
        conv_ == ConvImpl::Onednn ? "oneDNN"
        : conv_ == ConvImpl::Winograd
            ? "oneDNN, Winograd from " + std::to_string(kWinogradMinChannels) + " channels"
            : "OpenBLAS";
    const std::string products =
        !bf16_                 ? ""
        : bf16_on_fma_.empty() ? ", bf16 kernels"
                               : ", bf16 operands on the f32 FMA units (" + bf16_on_fma_ + ")";
    return "CPU, " + std::to_string(threads_) + " threads, conv3x3 on " + conv + products;
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

  // The CPU linear op flattens rank-4 inputs in CHW order itself, so weights keep their layout.
  OwnedTensor prepare_weight(const Tensor& host_f32, const WeightUse& use) override {
    OwnedTensor t;
    if (use.role == WeightRole::Conv) {
      t = conv_weight_ohwi(host_f32);
    } else {
      t = host_tensor(host_f32.shape(), DType::F32);
      std::memcpy(t.tensor.data(), host_f32.data(), host_f32.bytes());
    }
    t.buffer = meter_.track(std::move(t.buffer));
    if (use.role == WeightRole::Conv && conv_ != ConvImpl::Blas) {
      // The layer's oneDNN convolution lives as long as its weights: the buffer's release
      // forgets it, so no later weights at the same address can meet it.
      const void* key = t.tensor.data();
      {
        std::lock_guard<std::mutex> lock(convs_->mutex);
        // In bf16 a layer of few input channels (conv1_1's 3) stays fp32, and Winograd runs
        // the layers of 128 input channels or more (conv2_2 on): oneDNN's bf16 and Winograd
        // kernels were slower on the others (docs/perf/cpu.md).
        const int64_t c = t.tensor.dim(3);
        OnednnMath math = OnednnMath::Fp32;
        if (bf16_ && c >= kBf16MinChannels)
          math = bf16_on_fma_.empty() ? OnednnMath::Bf16 : OnednnMath::Bf16OnFma;
        if (conv_ == ConvImpl::Winograd && c >= kWinogradMinChannels) math = OnednnMath::Winograd;
        convs_->map[key] = std::make_shared<OnednnConv>(t.tensor, math);
      }
      auto owner = std::make_shared<Buffer>(std::move(t.buffer));
      t.buffer = Buffer(owner->data(), owner->bytes(), owner->device(),
                        [owner, convs = convs_, key](void*) mutable {
                          {
                            std::lock_guard<std::mutex> lock(convs->mutex);
                            convs->map.erase(key);
                          }
                          owner.reset();
                        });
    }
    return t;
  }

  void preprocess(std::span<const ImageView> frames, std::span<const CropRect> crops,
                  const Preprocess& pp, const Tensor& out) override {
    cpu::preprocess(frames, crops, pp, out);
  }
  void preprocess_yuv420(std::span<const YuvView> frames, std::span<const CropRect> crops,
                         const ColorSpec& cs, const Preprocess& pp, const Tensor& out) override {
    cpu::preprocess_yuv420(frames, crops, cs, pp, out);
  }

  void conv3x3_bias_relu(const Tensor& x, const Tensor& w, const Tensor& b, bool pool,
                         const Tensor& y) override {
    // Weights this backend prepared run on oneDNN; others (a test's own) on the reference.
    std::shared_ptr<OnednnConv> conv;
    if (conv_ != ConvImpl::Blas) {
      std::lock_guard<std::mutex> lock(convs_->mutex);
      auto it = convs_->map.find(w.data());
      if (it != convs_->map.end()) conv = it->second;
    }
    if (conv) {
      conv->run(x, b, pool, y);
    } else {
      cpu::conv3x3_bias_relu(x, w, b, pool, y);
    }
  }
  void maxpool2x2(const Tensor& x, const Tensor& y) override { cpu::maxpool2x2(x, y); }
  void global_avgpool(const Tensor& x, const Tensor& y) override { cpu::global_avgpool(x, y); }
  void linear(const Tensor& x, const Tensor& w, const Tensor& b, bool relu,
              const Tensor& y) override {
    cpu::linear(x, w, b, relu, y);
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

 private:
  struct Convs {
    std::mutex mutex;
    std::map<const void*, std::shared_ptr<OnednnConv>> map;  // by the weights' address
  };
  int threads_ = 1;
  ConvImpl conv_ = ConvImpl::Blas;
  bool bf16_ = false;
  std::string bf16_on_fma_;
  static constexpr int64_t kBf16MinChannels = 16, kWinogradMinChannels = 128;
  std::shared_ptr<Convs> convs_ = std::make_shared<Convs>();
  MemoryMeter meter_;
};

}  // namespace

std::string cpu_bf16_unavailable() { return onednn_bf16_unavailable(); }

std::unique_ptr<Backend> make_cpu_backend(int threads, ConvImpl conv_impl, Precision precision) {
  if (cuda_conv_impl(conv_impl))
    fail_option(std::string("--conv-impl ") + conv_impl_name(conv_impl) +
                " is the CUDA backend's (CPU: auto, onednn, winograd or blas)");
  if ((conv_impl == ConvImpl::Onednn || conv_impl == ConvImpl::Winograd) && !onednn_built())
    fail_option(std::string("--conv-impl ") + conv_impl_name(conv_impl) +
                ": this build has no oneDNN (install libdnnl-dev and rebuild)");
  const bool bf16 = precision == Precision::Bf16;
  if (bf16 && conv_impl == ConvImpl::Blas)
    fail_option("--precision bf16 runs the convolutions on oneDNN, not --conv-impl blas");
  if (bf16 && conv_impl == ConvImpl::Winograd)
    fail_option(
        "--conv-impl winograd computes in fp32 (oneDNN has no bf16 Winograd); "
        "use --conv-impl auto or onednn with --precision bf16");
  const std::string no_winograd = onednn_winograd_unavailable();
  if (conv_impl == ConvImpl::Winograd && !no_winograd.empty())
    fail_option("--conv-impl winograd: " + no_winograd + "; use --conv-impl auto or onednn");
  if (bf16) {
    const std::string why = onednn_bf16_unavailable();
    if (!why.empty()) fail_option("--precision bf16 on the CPU: " + why + "; use fp32");
  } else if (precision != Precision::Fp32 && precision != Precision::Default) {
    fail_option(std::string("--precision ") + precision_name(precision) +
                ": the CPU backend computes in fp32 or bf16");
  }
  // auto: oneDNN on every layer where the build has it (faster on each), in fp32 its Winograd
  // convolution where this CPU has it (faster, as close to float64: docs/perf/cpu.md); in bf16
  // its bf16 kernels, or its f32 one on bf16 operands where the bf16 dot product is the slower
  // (--conv-impl onednn keeps the bf16 kernels there, to compare).
  std::string bf16_on_fma;
  if (conv_impl == ConvImpl::Auto) {
    if (bf16) bf16_on_fma = onednn_bf16_dot_slow();
    conv_impl = !onednn_built()                ? ConvImpl::Blas
                : bf16 || !no_winograd.empty() ? ConvImpl::Onednn
                                               : ConvImpl::Winograd;
  }
  return std::make_unique<CpuBackend>(threads, conv_impl, bf16, std::move(bf16_on_fma));
}

}  // namespace fervid::cpu
