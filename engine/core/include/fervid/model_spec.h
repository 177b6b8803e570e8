// ModelSpec: the network as data. A VGG configuration list, the input size, the head (`gap` or
// `flatten`) with its dense widths, the class names, the preprocessing and the default vote.
// Read from a JSON model card (weights/*.json) or from a safetensors file's metadata.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace fervid {

enum class Head { Gap, Flatten };
enum class VoteMode { Majority, Confidence };

const char* head_name(Head head);
const char* vote_name(VoteMode vote);
VoteMode parse_vote(const std::string& text);  // "majority" | "confidence"
// The winner of one vote by `mode` (docs/design.md): majority = most frequent label, ties ->
// higher summed probability -> lower index; confidence = highest summed probability, ties -> lower
// index. The CPU backend's vote and the face tracks' votes both use it.
int vote_winner(const int32_t* counts, const double* sums, int classes, VoteMode mode);

// out[c] = (in[src(c)] * scale - mean[c]) / std[c], src(c) = bgr ? 2 - c : c, in in 0..255.
// mean and std are given in the output channel order.
struct Preprocess {
  bool bgr = false;
  float scale = 1.0f / 255.0f;
  std::array<float, 3> mean{0.0f, 0.0f, 0.0f};
  std::array<float, 3> std{1.0f, 1.0f, 1.0f};
  // torchvision's Resize(resize) + CenterCrop(input_size): the crop is resized so that its
  // shorter side is `resize` (resize_window, fervid/frame.h), and the centred input_size square
  // of that is the input. 0: the crop is resized to input_size x input_size directly.
  int resize = 0;
};

// Derived per conv layer: the torchvision tensor names and whether a 2x2 max-pool follows.
struct ConvLayer {
  int in_channels = 0;
  int out_channels = 0;
  bool pool = false;
  int feature_index = 0;  // features.<index>.weight
  std::string name;       // conv1_1 ... conv5_3
};

struct DenseLayer {
  int in_features = 0;
  int out_features = 0;
  bool relu = false;
  int classifier_index = 0;  // classifier.<index>.weight
};

struct ModelSpec {
  static constexpr int kPool = -1;  // "M" in a configuration list

  std::string name;
  std::vector<int> config;
  int input_size = 224;
  Head head = Head::Gap;
  std::vector<int> dense;  // hidden widths; the last layer has classes.size() outputs
  std::vector<std::string> classes;
  Preprocess preprocess;
  VoteMode vote = VoteMode::Confidence;
  std::string crop = "full";  // the default --crop
  // The face crops' margin (--crop face and haar, `fervid faces`): the square around a face is
  // widened by this share of the face's larger side on every side. Card key "face_margin", 0..2;
  // a model fine-tuned on faces cut with another margin says so here.
  double face_margin = 0.25;
  static constexpr double kDefaultFaceMargin = 0.25, kMaxFaceMargin = 2.0;

  // --precision int8: the scale of each conv layer's input (by layer name, "conv1_2"; a u8 value
  // v stands for v * scale), measured over `int8_frames` frames by fervid calibrate. Card key
  // "int8": {"input_scales": {...}, "frames": N}. Empty: the card has no calibration.
  std::map<std::string, float> int8_scales;
  int64_t int8_frames = 0;

  // Throws fervid::Error naming `origin` and the field when the spec is inconsistent.
  void validate(const std::string& origin) const;

  std::vector<ConvLayer> conv_layers() const;
  std::vector<DenseLayer> dense_layers() const;
  int feature_channels() const;  // channels of the last conv layer
  int feature_size() const;      // spatial size after the last pool
  int num_classes() const { return static_cast<int>(classes.size()); }
  // Every tensor the weights file must hold, name -> shape, in network order.
  std::vector<std::pair<std::string, std::vector<int64_t>>> expected_tensors() const;
  int64_t parameter_count() const;
  // Multiply-accumulates of one frame through the whole network.
  double macs_per_frame() const;

  nlohmann::json to_json() const;
  static ModelSpec from_json(const nlohmann::json& j, const std::string& origin);
  static ModelSpec load_card(const std::string& path);
};

// The metadata key under which a weights file carries its model card (as a JSON string).
inline constexpr const char* kSpecMetadataKey = "fervid.model_card";

}  // namespace fervid
