// A test double's base: a Backend that hands every call to another backend (by default the CPU
// backend), so that a double overrides only what it observes or changes (RecordingBackend, the
// lane simulator of tests/pipeline_test.cpp). A new op of Backend is forwarded here once.
#pragma once

#include <memory>
#include <string>

#include "backends/backend.h"
#include "backends/cpu/cpu_backend.h"

namespace fervid::test {

class ForwardingBackend : public Backend {
 public:
  explicit ForwardingBackend(std::unique_ptr<Backend> inner = cpu::make_cpu_backend(1))
      : inner_(std::move(inner)) {}
  Backend& inner() { return *inner_; }

  std::string name() const override { return inner_->name(); }
  std::string device_name() const override { return inner_->device_name(); }
  Layout activation_layout() const override { return inner_->activation_layout(); }
  DType compute_dtype() const override { return inner_->compute_dtype(); }
  Precision precision() const override { return inner_->precision(); }
  bool prefers_yuv_frames() const override { return inner_->prefers_yuv_frames(); }
  Buffer allocate(size_t bytes) override { return inner_->allocate(bytes); }
  void copy_from_host(const Tensor& dst, const void* src) override {
    inner_->copy_from_host(dst, src);
  }
  void copy_to_host(void* dst, const Tensor& src) override { inner_->copy_to_host(dst, src); }
  Buffer allocate_host(size_t bytes) override { return inner_->allocate_host(bytes); }
  void copy_to_host_async(void* dst, const Tensor& src) override {
    inner_->copy_to_host_async(dst, src);
  }
  void synchronize() override { inner_->synchronize(); }
  size_t peak_memory_bytes() const override { return inner_->peak_memory_bytes(); }
  std::unique_ptr<PreparedLayer> prepare(const LayerDesc& layer,
                                         const LayerWeights& weights) override {
    return inner_->prepare(layer, weights);
  }
  void preprocess(std::span<const ImageView> frames, std::span<const CropRect> crops,
                  const Preprocess& pp, const Tensor& out) override {
    inner_->preprocess(frames, crops, pp, out);
  }
  void preprocess_yuv420(std::span<const YuvView> frames, std::span<const CropRect> crops,
                         const ColorSpec& cs, const Preprocess& pp, const Tensor& out) override {
    inner_->preprocess_yuv420(frames, crops, cs, pp, out);
  }
  void softmax_argmax(const Tensor& logits, const Tensor& probs, const Tensor& labels) override {
    inner_->softmax_argmax(logits, probs, labels);
  }
  void vote_accumulate(const Tensor& probs, const Tensor& labels, std::span<const Segment> segments,
                       const Tensor& counts, const Tensor& sums) override {
    inner_->vote_accumulate(probs, labels, segments, counts, sums);
  }
  void vote_finalize(const Tensor& counts, const Tensor& sums, std::span<const int> slots,
                     VoteMode mode, const Tensor& winners, const Tensor& out_counts,
                     const Tensor& out_sums) override {
    inner_->vote_finalize(counts, sums, slots, mode, winners, out_counts, out_sums);
  }
  Lanes* lanes() override { return inner_->lanes(); }
  GraphReplay* graph_replay() override { return inner_->graph_replay(); }
  Timelines* timelines() override { return inner_->timelines(); }
  FrameSinks* frame_sinks() override { return inner_->frame_sinks(); }
  ReferenceGemm* reference_gemm() override { return inner_->reference_gemm(); }
  DeviceGradcam* device_gradcam() override { return inner_->device_gradcam(); }

 private:
  std::unique_ptr<Backend> inner_;
};

// A prepared layer whose runs go through `around(run)`: a double that wraps the inner backend's
// layers (to log them, or to queue them on a simulated lane).
class WrappedLayer final : public PreparedLayer {
 public:
  using Around = std::function<void(const std::function<void()>& run)>;
  WrappedLayer(std::unique_ptr<PreparedLayer> inner, Around around)
      : inner_(std::move(inner)), around_(std::move(around)) {}
  void run(std::span<const Tensor> x, const Tensor& y) override {
    std::vector<Tensor> xs(x.begin(), x.end());
    around_([this, xs, y] { inner_->run(xs, y); });
  }
  std::vector<LayerPlan> plans() const override { return inner_->plans(); }

 private:
  std::unique_ptr<PreparedLayer> inner_;
  Around around_;
};

}  // namespace fervid::test
