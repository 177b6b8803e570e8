// Model: a ModelSpec with its weights prepared for one backend, and the activation arena planned
// once for the largest batch. forward() is the loop over the layers calling the backend's ops.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "fervid/weights.h"
#include "video.h"

namespace fervid {

class Model {
 public:
  Model(const Weights& weights, Backend& backend, int max_batch);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelSpec& spec() const { return spec_; }
  int max_batch() const { return max_batch_; }
  Backend& backend() const { return backend_; }

  // Called after each layer with its name ("preprocess", "conv1_1", ..., "fc3", "softmax") when
  // given; the benchmark uses it for per-layer times.
  using LayerHook = std::function<void(const std::string& layer)>;

  // Runs frames.size() <= max_batch frames; results stay in the backend's memory.
  void forward(std::span<const ImageView> frames, std::span<const CropRect> crops,
               const LayerHook& hook = {});
  // The same from decoded frames, RGB or YUV (Frame::is_yuv): each run of frames of one kind is
  // preprocessed by the backend's op for it.
  void forward(std::span<const Frame> frames, std::span<const CropRect> crops,
               const LayerHook& hook = {});
  // forward() in its two halves: the frames preprocessed into input(slot), then the network (the
  // frame stage) from input(slot). Without a hook the frame stage of each (batch size, slot) is
  // replayed by the backend where it can (GraphReplay: CUDA graphs); with one it runs op by op. Two
  // input slots let the next batch's preprocess overlap this batch's frame stage (Lane); forward()
  // uses slot 0, and slot 1 is allocated when first used.
  static constexpr int kInputSlots = 2;
  void preprocess(std::span<const Frame> frames, std::span<const CropRect> crops, int slot = 0);
  void forward_preprocessed(int n, const LayerHook& hook = {}, int slot = 0);

  // Grad-CAM's forward (Engine::explain): the frames preprocessed into input(0), then the conv
  // layers with the last one's pool left out. Returns that layer's activated output [n, H, W, K]
  // (in the activation layout and compute dtype; valid until the next forward).
  Tensor forward_features(std::span<const ImageView> frames, std::span<const CropRect> crops);

  const Tensor& input(int slot = 0);                // [max_batch, S, S, 3] when NHWC
  const Tensor& logits() const { return logits_; }  // f32 [max_batch, C]
  const Tensor& probs() const { return probs_; }    // f32 [max_batch, C]
  const Tensor& labels() const { return labels_; }  // i32 [max_batch]

 private:
  Tensor activation(int which, std::vector<int64_t> shape) const;
  void check_batch(int n) const;  // 1..max_batch frames, or a one-line error
  void run_layers(int n, const LayerHook& hook, int slot);
  // The conv layers from input(slot); the last one's pool only when `last_pool`. Returns the
  // last output and which arena buffer is free.
  Tensor run_convs(int n, const LayerHook& hook, int slot, bool last_pool, int& which);
  void allocate_input(int slot);

  ModelSpec spec_;
  Backend& backend_;
  int max_batch_;
  std::vector<ConvLayer> conv_layers_;
  std::vector<DenseLayer> dense_layers_;
  std::vector<OwnedTensor> conv_w_, conv_b_, dense_w_, dense_b_;
  Buffer arena_[2];
  Buffer input_buf_[kInputSlots], head_buf_;
  Tensor input_[kInputSlots], logits_, probs_, labels_;
};

}  // namespace fervid
