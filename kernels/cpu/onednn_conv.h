// conv3x3_bias_relu on oneDNN (Debian's libdnnl, the library inside OpenVINO and PyTorch's CPU
// path): the same op as cpu::conv3x3_bias_relu (ops.h) and the same tensors, run by oneDNN's JIT
// convolution for this CPU with the bias and the ReLU fused (a post-op), activations NHWC. One
// OnednnConv per conv layer's weights: each frame size gets its primitive and its weights,
// reordered once into the layout that primitive prefers, on first use. Frames run one at a time
// (each on every thread), so a frame's result never depends on the frames batched with it.
// In bf16 the frame is rounded to bf16 on its way in and the weights once, the products are
// accumulated in f32 and the output stays f32 (activations between layers are f32 in memory).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>

#include "fervid/tensor.h"

namespace fervid::cpu {

// Whether this build has oneDNN (FERVID_ONEDNN).
bool onednn_built();
// "" when oneDNN can convolve in bf16 on this CPU (AVX512_BF16 or AMX), else why not, in one
// line (e.g. "this CPU has neither AVX512_BF16 nor AMX (oneDNN's ISA here: avx2)").
std::string onednn_bf16_unavailable();

class OnednnConv {
 public:
  // w [K,3,3,C] f32 (OHWI, as the CPU backend prepares conv weights); read when a plan is made.
  explicit OnednnConv(Tensor w, bool bf16 = false);
  ~OnednnConv();
  OnednnConv(const OnednnConv&) = delete;
  OnednnConv& operator=(const OnednnConv&) = delete;

  // x [N,H,W,C], b [K] -> y [N,H,W,K] (or [N,H/2,W/2,K] when pool), as cpu::conv3x3_bias_relu.
  void run(const Tensor& x, const Tensor& b, bool pool, const Tensor& y);

 private:
  struct Prim;
  struct Plan;
  Plan& plan(int h, int w, bool pool);
  Prim& prim(int rows, int w, int pad_top, int pad_bottom);  // under mutex_

  // A pooled layer's band of output rows: about this many bytes of f32 output (a core's cache).
  static constexpr int64_t kBandBytes = 512 << 10;

  Tensor w_;
  bool bf16_ = false;
  std::mutex mutex_;
  std::map<std::tuple<int, int, bool>, std::unique_ptr<Plan>> plans_;
  std::map<std::tuple<int, int, int>, std::unique_ptr<Prim>> prims_;
};

}  // namespace fervid::cpu
