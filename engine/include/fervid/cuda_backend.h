// The CUDA backend (engine/cuda/cuda_backend.cpp): NHWC activations in the chosen precision,
// cuDNN for the convolutions, cuBLASLt for the FC layers, fervid's kernels for the rest. Without
// CUDA in the build (engine/src/no_cuda.cpp) both functions fail with one line.
#pragma once

#include <memory>

#include "fervid/backend.h"

namespace fervid {

// options.precision: fp32 | tf32 | fp16 | bf16, "" = fp16. Fails when no device is usable.
std::unique_ptr<Backend> make_cuda_backend(const BackendOptions& options);

// The rate of one square `size`^3 GEMM in `precision` (fp32, tf32, fp16, bf16) through cuBLASLt
// on device 0, in TFLOP/s: the reference the benchmark's frame stage is measured against.
double cuda_gemm_tflops(const std::string& precision, int size, int iters);

}  // namespace fervid
