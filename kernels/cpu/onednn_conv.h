// conv3x3_bias_relu on oneDNN (Debian's libdnnl, the library inside OpenVINO and PyTorch's CPU
// path): the same op as cpu::conv3x3_bias_relu (ops.h) and the same tensors, run by oneDNN's JIT
// convolution for this CPU with the bias and the ReLU fused (a post-op), activations NHWC. One
// OnednnConv per conv layer's weights: each frame size gets its primitive and its weights,
// reordered once into the layout that primitive prefers, on first use. Frames run one at a time
// (each on every thread), so a frame's result never depends on the frames batched with it.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "fervid/tensor.h"

namespace fervid::cpu {

// Whether this build has oneDNN (FERVID_ONEDNN).
bool onednn_built();

class OnednnConv {
 public:
  // w [K,3,3,C] f32 (OHWI, as the CPU backend prepares conv weights); read when a plan is made.
  explicit OnednnConv(Tensor w);
  ~OnednnConv();
  OnednnConv(const OnednnConv&) = delete;
  OnednnConv& operator=(const OnednnConv&) = delete;

  // x [N,H,W,C], b [K] -> y [N,H,W,K] (or [N,H/2,W/2,K] when pool), as cpu::conv3x3_bias_relu.
  void run(const Tensor& x, const Tensor& b, bool pool, const Tensor& y);
  // oneDNN's implementation for H x W frames, e.g. "jit:avx512_core" (makes the plan).
  std::string implementation(int h, int w);

 private:
  struct Plan;
  Plan& plan(int h, int w);

  Tensor w_;
  std::mutex mutex_;
  std::map<std::pair<int, int>, std::unique_ptr<Plan>> plans_;
};

}  // namespace fervid::cpu
