// Layers prepared by a backend from a test's own host tensors (backends/backend.h): a conv layer
// (weights OIHW [K,C,3,3], bias [K]) for inputs of H x W, a dense layer (weights [out, in]), and a
// run of one on a single input.
#pragma once

#include <memory>
#include <string>

#include "backends/backend.h"

namespace fervid::test {

// The tensors as LayerWeights, without copying (views; the caller keeps them alive).
inline LayerWeights weights_of(const Tensor& w, const Tensor& b) {
  return {OwnedTensor{Buffer(), w}, OwnedTensor{Buffer(), b}};
}

inline std::unique_ptr<PreparedLayer> prepare_conv(Backend& be, const Tensor& w, const Tensor& b,
                                                   int64_t height, int64_t width, bool pool,
                                                   const std::string& name = "conv") {
  LayerDesc d;
  d.kind = LayerKind::Conv;
  d.name = name;
  d.in_channels = w.dim(1);
  d.out_channels = w.dim(0);
  d.height = height;
  d.width = width;
  d.pool = pool;
  return be.prepare(d, weights_of(w, b));
}

// A dense layer; `flatten`: its input is a rank-4 activation [N, H, W, C] with these H, W, C
// (the weights' columns in torchvision's CHW order).
struct Flatten {
  int64_t height = 1, width = 1, channels = 0;
};
inline std::unique_ptr<PreparedLayer> prepare_dense(Backend& be, const Tensor& w, const Tensor& b,
                                                    bool relu, bool logits, Flatten flatten = {}) {
  LayerDesc d;
  d.kind = LayerKind::Dense;
  d.name = "fc";
  d.in_channels = flatten.channels > 0 ? flatten.channels : w.dim(1);
  d.height = flatten.height;
  d.width = flatten.width;
  d.out_channels = w.dim(0);
  d.relu = relu;
  d.logits = logits;
  return be.prepare(d, weights_of(w, b));
}

inline std::unique_ptr<PreparedLayer> prepare_global_avgpool(Backend& be, int64_t channels) {
  LayerDesc d;
  d.kind = LayerKind::GlobalAvgPool;
  d.name = "gap";
  d.in_channels = channels;
  return be.prepare(d, {});
}

inline void run_layer(PreparedLayer& layer, const Tensor& x, const Tensor& y) {
  const Tensor in[] = {x};
  layer.run(in, y);
}

}  // namespace fervid::test
