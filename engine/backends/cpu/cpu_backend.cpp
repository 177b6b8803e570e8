// The CPU backend: the reference implementation of every op, f32, NHWC, host memory.
#include "backends/cpu/cpu_backend.h"

#include <cblas.h>
#include <omp.h>

#include <chrono>
#include <cstring>

#include "cpu/ops.h"
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
  explicit CpuBackend(int threads) {
    if (threads > 0) {
      omp_set_num_threads(threads);
      openblas_set_num_threads(threads);
    }
    threads_ = threads > 0 ? threads : omp_get_max_threads();
  }
  std::string name() const override { return "cpu"; }
  Layout activation_layout() const override { return Layout::NHWC; }
  DType compute_dtype() const override { return DType::F32; }
  Precision precision() const override { return Precision::Fp32; }
  // swscale's RGB is the reference path.
  bool prefers_yuv_frames() const override { return false; }
  std::string device_name() const override {
    return "CPU, " + std::to_string(threads_) + " threads";
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
    cpu::conv3x3_bias_relu(x, w, b, pool, y);
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
  int threads_ = 1;
  MemoryMeter meter_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int threads) {
  return std::make_unique<CpuBackend>(threads);
}

}  // namespace fervid::cpu
