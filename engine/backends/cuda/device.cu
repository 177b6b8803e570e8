// Device discovery for the CUDA build. Without a driver cudaGetDeviceCount fails with
// cudaErrorInsufficientDriver (35) and leaves the count unwritten, so any failure means no GPU.
#include <cuda_runtime.h>

#include <cstdio>

#include "backends/cuda/cuda_probe.h"

namespace fervid {

bool cuda_device_available(std::string* why) {
  int count = 0;
  cudaError_t rc = cudaGetDeviceCount(&count);
  if (rc != cudaSuccess) {
    if (why)
      *why = std::string("no CUDA device: cudaGetDeviceCount failed with ") + cudaGetErrorName(rc) +
             " (" + std::to_string(int(rc)) + ")";
    cudaGetLastError();  // clear the sticky error so later probes start clean
    return false;
  }
  if (count < 1) {
    if (why) *why = "no CUDA device: cudaGetDeviceCount found 0 devices";
    return false;
  }
  return true;
}

std::string cuda_device_summary() {
  std::string why;
  if (!cuda_device_available(&why)) return why;
  cudaDeviceProp p{};
  if (cudaGetDeviceProperties(&p, 0) != cudaSuccess) return "device 0: properties unavailable";
  char buf[256];
  std::snprintf(buf, sizeof(buf), "%s, sm_%d%d, %.1f GiB", p.name, p.major, p.minor,
                double(p.totalGlobalMem) / double(1ull << 30));
  return buf;
}

bool cuda_built() { return true; }

}  // namespace fervid
