// Which code runs the CPU backend's convolutions: the one place their rules and messages live.
// resolve_cpu_conv() checks what --conv-impl and --precision ask for against this build and CPU
// once, when the backend is made; CpuConvPolicy::for_layer() then gives each layer its math and
// the reason, when the layer is prepared. Pure logic over CpuFeatures, so that a test runs it as a
// table on any machine (tests/engine_test.cpp, ConvPolicy.*).
#pragma once

#include <cstdint>
#include <string>

#include "fervid/options.h"

namespace fervid::cpu {

// What the build and this CPU offer (cpu_features() reads them; tests make their own).
struct CpuFeatures {
  bool onednn = false;        // the build has oneDNN
  std::string no_bf16;        // "" when oneDNN can convolve in bf16 here, else why not
  std::string no_winograd;    // "" when oneDNN has a Winograd convolution here, else why not
  std::string bf16_dot_slow;  // "" unless the bf16 dot product is slower than the f32 FMA: why
  std::string no_int8;        // "" when oneDNN can convolve in int8 here, else why not
};
CpuFeatures cpu_features();

// How one layer convolves.
enum class CpuConvMath {
  Blas,       // im2col + OpenBLAS, the reference (kernels/cpu/conv3x3_bias_relu.cpp)
  Fp32,       // oneDNN's direct convolution
  Winograd,   // oneDNN's Winograd convolution (fp32)
  Bf16,       // oneDNN's bf16 kernels
  Bf16OnFma,  // bf16 operands on oneDNN's f32 kernel
  Int8,       // oneDNN's int8 kernels (u8 activations at the layer's calibrated scale, s8 weights)
};
const char* cpu_conv_math_name(CpuConvMath m);  // "blas", "onednn", "winograd", "onednn-bf16", ...

struct CpuLayerConv {
  CpuConvMath math;
  std::string why;
};

struct CpuConvPolicy {
  ConvImpl impl = ConvImpl::Blas;  // Onednn, Winograd or Blas: auto resolved
  bool bf16 = false;
  bool int8 = false;
  std::string bf16_on_fma;  // bf16 operands on the f32 kernel, and why; "" for oneDNN's bf16
  std::string chosen;       // why `impl`: "asked for" or auto's reason

  // In bf16 a layer of few input channels (conv1_1's 3) stays fp32; Winograd runs the layers of
  // 128 input channels or more (conv2_2 on). oneDNN's bf16 and Winograd kernels were slower on the
  // others (docs/perf/cpu.md).
  // In int8 the same layer stays fp32 (its input, the normalised image, is signed).
  static constexpr int64_t kBf16MinChannels = 16, kWinogradMinChannels = 128, kInt8MinChannels = 16;
  // `int8_scaled`: the card has an int8 scale for the layer's input (its values are >= 0), which
  // runs a layer of few channels in int8 too.
  CpuLayerConv for_layer(int64_t in_channels, bool int8_scaled = false) const;
  // The device name's part about convolutions: "oneDNN, Winograd from 128 channels, bf16 kernels".
  std::string describe() const;
};

// Fails with one line (fail_option) for a combination this build or CPU cannot run.
CpuConvPolicy resolve_cpu_conv(ConvImpl asked, Precision precision, const CpuFeatures& cpu);

}  // namespace fervid::cpu
