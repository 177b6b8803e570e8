// Weights: a safetensors file checked against a ModelSpec (every expected tensor present with its
// shape, nothing extra, float dtype, finite values) and converted once to f32 host tensors in
// torchvision's layouts: conv OIHW [out, in, 3, 3], linear [out, in].
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "fervid/model_spec.h"
#include "fervid/safetensors.h"
#include "fervid/tensor.h"

namespace fervid {

struct LayerWeights {
  OwnedTensor weight;  // f32 host
  OwnedTensor bias;    // f32 host
};

// A dense layer as Grad-CAM's head reads it (cpu::gradcam, cuda::GradcamHead, DeviceGradcam):
// w [out, in] (in in torchvision's CHW order after a flatten) and b [out], f32 on the host, and
// whether a ReLU follows.
struct DenseWeights {
  const Tensor* w;
  const Tensor* b;
  bool relu;
};

struct Weights {
  std::string path;
  ModelSpec spec;
  std::string spec_origin;  // "metadata of FILE" or the card's path
  std::map<std::string, std::string> metadata;
  std::vector<LayerWeights> conv;   // one per conv layer
  std::vector<LayerWeights> dense;  // one per dense layer
  std::string stored_dtype;         // the file's dtype, e.g. "F16"
  // The classes (names and order) come from a card the user named, and the file has none of its
  // own to check them against (a bare state_dict): see classes_warning().
  bool classes_assumed = false;

  // When classes_assumed: one line saying the card's class order is taken on trust, and how to
  // carry the model's own; "" otherwise.
  std::string classes_warning() const {
    if (!classes_assumed) return "";
    std::string names;
    for (const std::string& c : spec.classes) names += (names.empty() ? "" : ", ") + c;
    return path + " carries no class names: the order of " + spec_origin + " (" + names +
           ") is assumed for its outputs; a model trained with other classes or another order "
           "(ImageFolder's is alphabetical) is mislabelled: export it with "
           "tools/export_weights.py, which takes the names from the checkpoint or --classes";
  }

  // Weights `fervid make-weights` wrote (metadata `untrained: true`): their labels mean nothing.
  bool untrained() const {
    auto it = metadata.find("untrained");
    return it != metadata.end() && it->second == "true";
  }

  // `spec` (from a card named by the user, described by `origin`) overrides the spec in the
  // file's metadata; without either, loading fails.
  static Weights load(const std::string& path, const std::optional<ModelSpec>& spec = {},
                      const std::string& origin = "");
};

// The spec a weights file carries in its metadata, if any.
std::optional<ModelSpec> spec_from_metadata(const SafetensorsFile& file);
// A float tensor of `file` (f32, f16 or bf16) as f32 on the host; fails on NaN or Inf, naming
// the tensor and the element.
OwnedTensor read_f32(const SafetensorsFile& file, const StTensorInfo& info);

// Differences between a file and a spec, one line each (missing, extra, shape, dtype).
std::vector<std::string> check_against_spec(const SafetensorsFile& file, const ModelSpec& spec);

// Deterministic He-initialised weights for demos and tests (metadata says untrained: true).
void make_weights(const ModelSpec& spec, uint64_t seed, StDType dtype, const std::string& out);

}  // namespace fervid
