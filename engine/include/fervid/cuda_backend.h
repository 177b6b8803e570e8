// The CUDA backend (engine/cuda/cuda_backend.cpp): NHWC activations in the chosen precision,
// cuDNN or fervid's own conv3x3 kernel per layer (--conv-impl), cuBLASLt for the FC layers,
// fervid's kernels for the rest. Without CUDA in the build (engine/src/no_cuda.cpp) the device
// functions fail with one line.
#pragma once

#include <memory>

#include "fervid/backend.h"

namespace fervid {

// options.precision: fp32 | tf32 | fp16 | bf16, "" = fp16. Fails when no device is usable.
std::unique_ptr<Backend> make_cuda_backend(const BackendOptions& options);
// Fails with one line on a --conv-impl that is unknown or that the precision rules out (fervid's
// kernel is fp16/bf16 only); needs no device.
void check_conv_impl(const BackendOptions& options);

// The rate of one square `size`^3 GEMM in `precision` (fp32, tf32, fp16, bf16) through cuBLASLt
// on device 0, in TFLOP/s: the reference the benchmark's frame stage is measured against.
double cuda_gemm_tflops(const std::string& precision, int size, int iters);

}  // namespace fervid
