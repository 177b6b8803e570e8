// Which code runs the CUDA backend's convolutions: the one place their rules and messages live
// (make_backend checks them before any device work; the backend's conv layers follow them).
// Plain C++ without CUDA, so that its table test runs in every build (tests/engine_test.cpp,
// ConvPolicy.*).
#pragma once

#include <string>

#include "fervid/error.h"
#include "fervid/options.h"

namespace fervid {

// cuDNN's fused conv (+ the pool kernel), fervid's tensor-core conv with the pool fused
// (kernels/cuda/conv3x3_igemm_pool.cu), or the faster of the two, timed per layer and batch size.
enum class CudaConvMode { Cudnn, Igemm, Timed };

struct CudaConvPolicy {
  CudaConvMode mode = CudaConvMode::Cudnn;
  std::string why;
};

// Fails with one line (fail_option) for a combination the CUDA backend cannot run.
inline CudaConvPolicy resolve_cuda_conv(ConvImpl asked, Precision precision) {
  const std::string impl = conv_impl_name(asked);
  if (cpu_conv_impl(asked))
    fail_option("{{conv_impl}} " + impl + " is the CPU backend's (CUDA: auto, cudnn or fervid)");
  if (precision == Precision::Int8)
    fail_option(
        "{{precision}} int8 runs on the CPU backend (CUDA computes in fp32, tf32, fp16 or bf16)");
  const bool f32 = precision == Precision::Fp32 || precision == Precision::Tf32;
  if (asked == ConvImpl::Igemm && f32)
    fail_option("{{conv_impl}} fervid: fervid's conv3x3 computes in fp16 or bf16, not " +
                std::string(precision_name(precision)) +
                " (use {{conv_impl}} cudnn or {{precision}} fp16|bf16)");
  if (asked == ConvImpl::Cudnn) return {CudaConvMode::Cudnn, "asked for with {{conv_impl}} cudnn"};
  if (asked == ConvImpl::Igemm) return {CudaConvMode::Igemm, "asked for with {{conv_impl}} fervid"};
  if (f32) return {CudaConvMode::Cudnn, "auto: fp32 and tf32 run on cuDNN"};
  return {CudaConvMode::Timed, "auto: the faster of cuDNN and fervid's kernel, timed"};
}

}  // namespace fervid
