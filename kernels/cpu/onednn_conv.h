// conv3x3_bias_relu on oneDNN (Debian's libdnnl, the library inside OpenVINO and PyTorch's CPU
// path): the same op as cpu::conv3x3_bias_relu (ops.h) and the same tensors, run by oneDNN's JIT
// convolution for this CPU with the bias and the ReLU fused (a post-op), activations NHWC. One
// OnednnConv per conv layer's weights: each frame size gets its primitive and its weights,
// reordered once into the layout that primitive prefers, on first use. Frames run one at a time
// (each on every thread), so a frame's result never depends on the frames batched with it.
// In bf16 the frame is rounded to bf16 on its way in and the weights once, the products are
// accumulated in f32 and the output stays f32 (activations between layers are f32 in memory).
// Bf16 runs oneDNN's bf16 kernels (AVX512_BF16's dot product or AMX); Bf16OnFma gives the same
// rounded operands to the f32 kernel instead: a product of two bf16 values is exact in f32, so
// both are bf16 operands with f32 sums, in another order. It is the faster of the two where the
// bf16 dot product runs slower than the f32 FMA (onednn_bf16_dot_slow()).
// In Winograd (fp32) the layer runs oneDNN's Winograd convolution (F(4x4,3x3) or F(2x2,3x3), its
// choice per shape) in oneDNN's blocked layout: the frame is reordered in, and the output (pooled
// there first when a pool follows) reordered back to NHWC. Fewer multiplications, a little more
// rounding (docs/perf/cpu.md measures both); where oneDNN has no Winograd kernel for this CPU
// (it needs AVX-512) the layer runs the direct convolution.
// In int8 (VNNI or AMX) the frame is quantized to u8 at the layer's calibrated input scale (a
// oneDNN reorder, rounding as cpu::quantize_u8 does) unless the layer before wrote it as u8
// already, the weights once to s8 per output channel (cpu::quantize_weights_s8), the sums are
// exact int32, and the output is f32 or, for a next int8 layer, u8 at that layer's scale
// (Int8Io), pooled in the same bands as fp32's. cpu::conv3x3_bias_relu_int8 is its reference.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "fervid/tensor.h"

namespace fervid::cpu {

// Whether this build has oneDNN (FERVID_ONEDNN).
bool onednn_built();
// "" when oneDNN can convolve in bf16 on this CPU (AVX512_BF16 or AMX), else why not, in one
// line (e.g. "this CPU has neither AVX512_BF16 nor AMX (oneDNN's ISA here: avx2)").
std::string onednn_bf16_unavailable();
// "" where oneDNN's bf16 kernels are the fast way to multiply bf16 values on this CPU, else why
// not, in one line: the cores of Intel's Sapphire Rapids generation (those with AVX512_FP16) run
// AVX512_BF16's dot product (VDPBF16PS) at half the multiply-add rate of their f32 FMA
// (docs/perf/cpu.md measures it); their bf16 speed is in AMX, so without AMX (a hypervisor that
// hides it) bf16 operands multiply faster on the FMA units.
std::string onednn_bf16_dot_slow();
// The rule behind it, for a CPU with these features (tests call it with each combination).
std::string bf16_dot_slow_on(bool intel, bool avx512_fp16, bool amx);
// "" when oneDNN has a Winograd convolution for this CPU (it needs AVX-512), else why not.
std::string onednn_winograd_unavailable();

// "" when oneDNN can convolve in int8 at full speed on this CPU (AVX-512 VNNI, AVX-VNNI or AMX),
// else why not, in one line. (oneDNN runs int8 without VNNI too, on pairs of products that can
// saturate in 16 bits; fervid does not offer that.)
std::string onednn_int8_unavailable();

// How an OnednnConv computes: oneDNN's direct convolution in f32, in bf16 (its bf16 kernels, or
// its f32 kernel on operands rounded to bf16), its Winograd one (f32), or in int8 (u8
// activations with the layer's calibrated scale, s8 weights per output channel; the output f32).
enum class OnednnMath { Fp32, Bf16, Bf16OnFma, Winograd, Int8 };

// Int8: how a layer meets its neighbours. `u8_input`: x holds u8 values (v stands for v *
// in_scale), written by an int8 layer before it, so the frame is not quantized again.
// `out_scale` > 0: y is written as u8 at that scale (the next layer's input scale), the ReLU's
// output rounded to nearest and saturated, and pooled in u8 (max commutes with the rounding);
// 0: y is f32.
struct Int8Io {
  bool u8_input = false;
  float out_scale = 0;
};

class OnednnConv {
 public:
  // w [K,3,3,C] f32 (OHWI, as the CPU backend prepares conv weights); read when a plan is made.
  // Int8: `in_scale` is the input's (quantize_u8, ops.h), > 0; the weights are quantized here,
  // as cpu::conv3x3_bias_relu_int8 quantizes them.
  explicit OnednnConv(Tensor w, OnednnMath math = OnednnMath::Fp32, float in_scale = 0,
                      Int8Io io = {});
  ~OnednnConv();
  OnednnConv(const OnednnConv&) = delete;
  OnednnConv& operator=(const OnednnConv&) = delete;

  // x [N,H,W,C], b [K] -> y [N,H,W,K] (or [N,H/2,W/2,K] when pool), as cpu::conv3x3_bias_relu;
  // x and y f32, or u8 as Int8Io says.
  void run(const Tensor& x, const Tensor& b, bool pool, const Tensor& y);

  // Whether frames of this size run Winograd (false where this CPU has no Winograd kernel).
  bool winograd(int h, int w, bool pool);

 private:
  struct Prim;
  struct Wino;
  struct Plan;
  Plan& plan(int h, int w, bool pool);
  std::unique_ptr<Wino> wino(int h, int w, bool pool);  // null where oneDNN has none
  void run_winograd(Wino& p, const Tensor& x, const Tensor& b, const Tensor& y);
  Prim& prim(int rows, int w, int pad_top, int pad_bottom);  // under mutex_

  // A pooled layer's band of output rows: about this many bytes of f32 output (a core's cache).
  static constexpr int64_t kBandBytes = 512 << 10;

  Tensor w_;
  OwnedTensor rounded_w_;  // Bf16OnFma: the weights rounded to bf16 (w_ views them)
  OnednnMath math_ = OnednnMath::Fp32;
  bool bf16() const { return math_ == OnednnMath::Bf16; }  // oneDNN's bf16 kernels
  bool rounds() const { return math_ == OnednnMath::Bf16OnFma; }
  bool int8() const { return math_ == OnednnMath::Int8; }
  float in_scale_ = 0;
  Int8Io io_;
  bool u8_out() const { return int8() && io_.out_scale > 0; }
  std::vector<int8_t> w8_;         // Int8: the weights, OHWI
  std::vector<float> out_scales_;  // Int8: in_scale * the weights' scale, per output channel
  std::mutex mutex_;
  std::map<std::tuple<int, int, bool>, std::unique_ptr<Plan>> plans_;
  std::map<std::tuple<int, int, int>, std::unique_ptr<Prim>> prims_;
};

}  // namespace fervid::cpu
