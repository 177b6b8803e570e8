// Whether a CUDA device is usable, without CUDA headers. Built from device.cu when the CUDA
// backend is compiled, otherwise from no_cuda.cpp (both in engine/backends/cuda).
#pragma once

#include <string>

namespace fervid {

// True when the build has CUDA and cudaGetDeviceCount reports a device. Any failure (no driver:
// error 35, no device: error 100, ...) counts as "no GPU"; `why` then says which.
bool cuda_device_available(std::string* why);
// "NVIDIA H100 80GB HBM3, sm_90, 79.1 GiB" for device 0, or the reason there is none.
std::string cuda_device_summary();
bool cuda_built();

}  // namespace fervid
