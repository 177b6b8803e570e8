#include "backends/cpu/conv_policy.h"

#include "cpu/onednn_conv.h"
#include "fervid/error.h"

namespace fervid::cpu {

CpuFeatures cpu_features() {
  CpuFeatures f;
  f.onednn = onednn_built();
  f.no_bf16 = onednn_bf16_unavailable();
  f.no_winograd = onednn_winograd_unavailable();
  f.bf16_dot_slow = onednn_bf16_dot_slow();
  f.no_int8 = onednn_int8_unavailable();
  return f;
}

const char* cpu_conv_math_name(CpuConvMath m) {
  switch (m) {
    case CpuConvMath::Blas:
      return "blas";
    case CpuConvMath::Fp32:
      return "onednn";
    case CpuConvMath::Winograd:
      return "winograd";
    case CpuConvMath::Bf16:
      return "onednn-bf16";
    case CpuConvMath::Bf16OnFma:
      return "onednn-bf16-on-fma";
    case CpuConvMath::Int8:
      return "onednn-int8";
  }
  return "?";
}

CpuConvPolicy resolve_cpu_conv(ConvImpl asked, Precision precision, const CpuFeatures& cpu) {
  const std::string impl = std::string("{{conv_impl}} ") + conv_impl_name(asked);
  if (cuda_conv_impl(asked))
    fail_option(impl +
                " is the CUDA backend's (CPU: auto, onednn, winograd or blas; or {{device}} cuda)");
  if ((asked == ConvImpl::Onednn || asked == ConvImpl::Winograd) && !cpu.onednn)
    fail_option(impl + ": this build has no oneDNN (install libdnnl-dev and rebuild)");
  const bool bf16 = precision == Precision::Bf16;
  if (bf16 && asked == ConvImpl::Blas)
    fail_option("{{precision}} bf16 runs the convolutions on oneDNN, not {{conv_impl}} blas");
  if (bf16 && asked == ConvImpl::Winograd)
    fail_option(
        "{{conv_impl}} winograd computes in fp32 (oneDNN has no bf16 Winograd); "
        "use {{conv_impl}} auto or onednn with {{precision}} bf16");
  if (asked == ConvImpl::Winograd && !cpu.no_winograd.empty())
    fail_option("{{conv_impl}} winograd: " + cpu.no_winograd +
                "; use {{conv_impl}} auto or onednn");
  const bool int8 = precision == Precision::Int8;
  if (int8 && asked == ConvImpl::Blas)
    fail_option("{{precision}} int8 runs the convolutions on oneDNN, not {{conv_impl}} blas");
  if (int8 && asked == ConvImpl::Winograd)
    fail_option(
        "{{conv_impl}} winograd computes in fp32; use {{conv_impl}} auto or onednn with "
        "{{precision}} int8");
  if (bf16) {
    if (!cpu.no_bf16.empty())
      fail_option("{{precision}} bf16 on the CPU: " + cpu.no_bf16 + "; use fp32");
  } else if (int8) {
    if (!cpu.no_int8.empty())
      fail_option("{{precision}} int8 on the CPU: " + cpu.no_int8 + "; use fp32");
  } else if (precision != Precision::Fp32 && precision != Precision::Default) {
    fail_option(std::string("{{precision}} ") + precision_name(precision) +
                ": the CPU backend computes in fp32, bf16 or int8");
  }
  CpuConvPolicy p;
  p.bf16 = bf16;
  p.int8 = int8;
  p.impl = asked;
  p.chosen = "asked for with " + impl;
  if (asked != ConvImpl::Auto) return p;
  // auto: oneDNN on every layer where the build has it (faster on each), in fp32 its Winograd
  // convolution where this CPU has it (faster, as close to float64: docs/perf/cpu.md); in bf16
  // its bf16 kernels, or its f32 one on bf16 operands where the bf16 dot product is the slower
  // (--conv-impl onednn keeps the bf16 kernels there, to compare).
  if (bf16) p.bf16_on_fma = cpu.bf16_dot_slow;
  if (!cpu.onednn) {
    p.impl = ConvImpl::Blas;
    p.chosen = "auto: this build has no oneDNN";
  } else if (bf16 || int8 || !cpu.no_winograd.empty()) {
    p.impl = ConvImpl::Onednn;
    p.chosen = bf16   ? "auto: oneDNN in bf16"
               : int8 ? "auto: oneDNN in int8"
                      : "auto: " + cpu.no_winograd;
  } else {
    p.impl = ConvImpl::Winograd;
    p.chosen = "auto: oneDNN's Winograd where a layer has " +
               std::to_string(CpuConvPolicy::kWinogradMinChannels) + " input channels or more";
  }
  return p;
}

CpuLayerConv CpuConvPolicy::for_layer(int64_t in_channels, bool int8_scaled) const {
  if (impl == ConvImpl::Blas) return {CpuConvMath::Blas, chosen};
  if (int8 && (in_channels >= kInt8MinChannels || int8_scaled)) return {CpuConvMath::Int8, chosen};
  if (int8)
    return {CpuConvMath::Fp32,
            "int8 keeps a layer of fewer than " + std::to_string(kInt8MinChannels) +
                " input channels in fp32 unless the card has its scale (an image normalised to "
                "values >= 0)"};
  if (bf16 && in_channels >= kBf16MinChannels) {
    if (bf16_on_fma.empty()) return {CpuConvMath::Bf16, chosen};
    return {CpuConvMath::Bf16OnFma, "auto: " + bf16_on_fma};
  }
  if (bf16)
    return {CpuConvMath::Fp32, "bf16 is slower on layers of fewer than " +
                                   std::to_string(kBf16MinChannels) + " input channels"};
  if (impl == ConvImpl::Winograd && in_channels >= kWinogradMinChannels)
    return {CpuConvMath::Winograd, chosen};
  if (impl == ConvImpl::Winograd)
    return {CpuConvMath::Fp32, "Winograd is slower on layers of fewer than " +
                                   std::to_string(kWinogradMinChannels) + " input channels"};
  return {CpuConvMath::Fp32, chosen};
}

std::string CpuConvPolicy::describe() const {
  const std::string conv =
      impl == ConvImpl::Onednn ? "oneDNN"
      : impl == ConvImpl::Winograd
          ? "oneDNN, Winograd from " + std::to_string(kWinogradMinChannels) + " channels"
          : "OpenBLAS";
  if (int8)
    return conv + ", int8 from " + std::to_string(kInt8MinChannels) +
           " channels (u8 activations, s8 weights per channel)";
  const std::string products = !bf16 ? ""
                               : bf16_on_fma.empty()
                                   ? ", bf16 kernels"
                                   : ", bf16 operands on the f32 FMA units (" + bf16_on_fma + ")";
  return conv + products;
}

}  // namespace fervid::cpu
