// The CUDA backend (engine/backends/cuda/cuda_backend.cpp): NHWC activations in the chosen
// precision, cuDNN or fervid's own conv3x3 kernel per layer (--conv-impl), cuBLASLt for the FC
// layers, fervid's kernels for the rest, lanes on three streams, the frame stage as replayed CUDA
// graphs. Without CUDA in the build (no_cuda.cpp) it fails with one line.
#pragma once

#include <memory>

#include "backends/backend.h"

namespace fervid {

// precision Default is fp16. Fails with one line when no device is usable. The options are
// taken as they are: make_backend (the engine) checks their combinations.
std::unique_ptr<Backend> make_cuda_backend(const BackendOptions& options);

}  // namespace fervid
