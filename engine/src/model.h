// Model: a card's network as a list of layers (network_of: data, LayerDesc), each prepared once by
// one backend with its weights (PreparedLayer: the backend's layout, its implementation, its
// plans), and the activation arena planned once for the largest batch. forward() is the loop over
// the prepared layers, then softmax + argmax.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "fervid/weights.h"
#include "video.h"

namespace fervid {

// The layers of a card's network, in order: its conv layers (3x3, stride 1, padding 1, ReLU, the
// 2x2 pool fused where the card has one), a global average pool for the `gap` head, its dense
// layers (the first fed by the flattened activation for the `flatten` head; the last gives the
// logits). Each reads the layer before it.
std::vector<LayerDesc> network_of(const ModelSpec& spec);

// The activation arena of a layer list: the buffer each layer writes (-1 for an output of the
// network, LayerDesc::logits, which has its own) and how many buffers there are. A layer's output
// never shares a buffer with its inputs, and a buffer is free again after its last reader; for
// VGG16, two buffers used in turn.
struct ArenaPlan {
  std::vector<int> buffer_of;
  int buffers = 0;
};
ArenaPlan plan_arena(std::span<const LayerDesc> layers);

class Model {
 public:
  // `features`: also prepare the last conv layer without its pool, for forward_features
  // (Grad-CAM).
  Model(const Weights& weights, Backend& backend, int max_batch, bool features = false);
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
  void frame_stage(int n, const LayerHook& hook = {}, int slot = 0);

  // Grad-CAM's forward (Engine::explain; the model made with `features`): the frames preprocessed
  // into input(0), then the conv layers with the last one's pool left out. Returns that layer's
  // activated output [n, H, W, K] (in the activation layout and compute dtype; valid until the
  // next forward).
  Tensor forward_features(std::span<const ImageView> frames, std::span<const CropRect> crops);

  // The network's layers and how each runs on this backend (its plans so far).
  const std::vector<LayerDesc>& layers() const { return layers_; }
  std::vector<LayerPlan> plans(size_t layer) const { return prepared_[layer]->plans(); }

  // Layer i's output for a batch of n, valid from when that layer ran (a LayerHook called with
  // its name) until a later layer reuses its buffer.
  Tensor layer_output(size_t i, int n) const;

  const Tensor& input(int slot = 0);                // [max_batch, S, S, 3] when NHWC
  const Tensor& logits() const { return logits_; }  // f32 [max_batch, C]
  const Tensor& probs() const { return probs_; }    // f32 [max_batch, C]
  const Tensor& labels() const { return labels_; }  // i32 [max_batch]

 private:
  Tensor activation(int buffer, std::vector<int64_t> shape) const;
  void check_batch(int n) const;  // 1..max_batch frames, or a one-line error
  // Runs the layers from input(slot), all of them (then softmax + argmax), or with `features` up
  // to the last conv layer, which runs without its pool. Returns the last layer's output.
  Tensor run_layers(int n, const LayerHook& hook, int slot, bool features = false);
  void allocate_arena();
  void allocate_input(int slot);

  ModelSpec spec_;
  Backend& backend_;
  int max_batch_;
  std::vector<LayerDesc> layers_;
  std::vector<std::unique_ptr<PreparedLayer>> prepared_;
  LayerDesc features_desc_;                  // the last conv layer without its pool,
  std::unique_ptr<PreparedLayer> features_;  // prepared when the model is made with `features`
  int last_conv_ = -1;
  std::vector<int> buffer_of_;  // the arena buffer each layer writes (-1: the logits)
  std::vector<Buffer> arena_;
  Buffer input_buf_[kInputSlots], head_buf_;
  Tensor input_[kInputSlots], logits_, probs_, labels_;
};

}  // namespace fervid
