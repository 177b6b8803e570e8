// The CPU backend (engine/backends/cpu/cpu_backend.cpp): the ops of kernels/cpu, f32, NHWC, in
// host memory, on `threads` OpenMP threads (0: all cores). Convolutions on oneDNN
// (conv_impl onednn, or auto in a build with it) or on im2col + OpenBLAS (blas, the reference).
#pragma once

#include <memory>

#include "backends/backend.h"

namespace fervid::cpu {

// precision fp32 (or Default), bf16 or int8. bf16: every conv layer on oneDNN in bf16 (f32
// accumulation, f32 activations between layers), the rest f32; bf16 needs oneDNN and AVX512_BF16
// or AMX. int8: the conv layers the card has scales for on oneDNN's int8 kernels, u8 activations
// from one to the next (docs/int8.md); needs oneDNN and VNNI or AMX. Under
// conv_impl auto, on a CPU whose bf16 dot product is slower than its f32 FMA
// (onednn_bf16_dot_slow()), the bf16 operands go to oneDNN's f32 kernel instead. Fails
// with one line for a combination this build or CPU cannot run.
std::unique_ptr<Backend> make_cpu_backend(int threads, ConvImpl conv_impl = ConvImpl::Auto,
                                          Precision precision = Precision::Fp32);
// "" when the CPU backend can run bf16 here, else why not (one line).
std::string cpu_bf16_unavailable();
// "" when the CPU backend can convolve in int8 here (oneDNN with AVX-512 VNNI, AVX-VNNI or AMX),
// else why not, in one line.
std::string cpu_int8_unavailable();

// OpenMP's thread count for the parallel regions the calling thread starts, set while this
// lives and restored after; other threads keep theirs (OpenMP keeps the count per thread). The
// face detector's small layers run on one thread this way beside the classifier: on two, the
// threads' fork and join took most of their time (measured, docs/faces.md).
class ScopedOmpThreads {
 public:
  explicit ScopedOmpThreads(int threads);
  ~ScopedOmpThreads();
  ScopedOmpThreads(const ScopedOmpThreads&) = delete;
  ScopedOmpThreads& operator=(const ScopedOmpThreads&) = delete;

 private:
  int before_;
};

}  // namespace fervid::cpu
