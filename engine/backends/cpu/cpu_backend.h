// The CPU backend (engine/backends/cpu/cpu_backend.cpp): the ops of kernels/cpu, f32, NHWC, in
// host memory, on `threads` OpenMP threads (0: all cores). Convolutions on oneDNN
// (conv_impl onednn, or auto in a build with it) or on im2col + OpenBLAS (blas, the reference).
#pragma once

#include <memory>

#include "backends/backend.h"

namespace fervid::cpu {

// Fails with one line for conv_impl onednn in a build without oneDNN.
std::unique_ptr<Backend> make_cpu_backend(int threads, ConvImpl conv_impl = ConvImpl::Auto);

}  // namespace fervid::cpu
