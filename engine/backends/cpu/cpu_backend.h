// The CPU backend (engine/backends/cpu/cpu_backend.cpp): the reference ops of kernels/cpu, f32,
// NHWC, in host memory, on `threads` OpenMP threads (0: all cores).
#pragma once

#include <memory>

#include "backends/backend.h"

namespace fervid::cpu {

std::unique_ptr<Backend> make_cpu_backend(int threads);

}  // namespace fervid::cpu
