// Device discovery for the CUDA build. Without a driver cudaGetDeviceCount fails with
// cudaErrorInsufficientDriver (35) and leaves the count unwritten, so any failure means no GPU.
#include <cublasLt.h>
#include <cuda.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstdio>

#include "backends/cuda/cuda_probe.h"

namespace fervid {

bool cuda_device_available(std::string* why) {
  int count = 0;
  cudaError_t rc = cudaGetDeviceCount(&count);
  if (rc != cudaSuccess) {
    // In plain words first (the common cases), then what CUDA said.
    const std::string plain = rc == cudaErrorInsufficientDriver ? "no NVIDIA driver is loaded"
                              : rc == cudaErrorNoDevice         ? "the driver sees no GPU"
                                                                : "the GPU cannot be used";
    if (why)
      *why = "no CUDA device: " + plain + " (cudaGetDeviceCount: " + cudaGetErrorName(rc) + ", " +
             std::to_string(int(rc)) + ")";
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

void* cuda_runtime_context(std::string* why) {
  if (!cuda_device_available(why)) return nullptr;
  auto failed = [&](const std::string& what, cudaError_t rc) -> void* {
    if (why) *why = what + " failed: " + cudaGetErrorName(rc);
    cudaGetLastError();
    return nullptr;
  };
  // cudaFree(nullptr) makes the runtime create and bind its (lazily made) primary context.
  if (cudaError_t rc = cudaSetDevice(0); rc != cudaSuccess) return failed("cudaSetDevice(0)", rc);
  if (cudaError_t rc = cudaFree(nullptr); rc != cudaSuccess) return failed("cudaFree(nullptr)", rc);
  // The driver's cuCtxGetCurrent through the runtime, so that nothing links libcuda itself.
  void* fn = nullptr;
  cudaDriverEntryPointQueryResult found{};
  if (cudaError_t rc = cudaGetDriverEntryPointByVersion("cuCtxGetCurrent", &fn, 12000,
                                                        cudaEnableDefault, &found);
      rc != cudaSuccess || found != cudaDriverEntryPointSuccess || !fn) {
    if (rc != cudaSuccess) return failed("cudaGetDriverEntryPointByVersion(cuCtxGetCurrent)", rc);
    if (why) *why = "the CUDA driver has no cuCtxGetCurrent";
    return nullptr;
  }
  CUcontext ctx = nullptr;
  const CUresult cr = reinterpret_cast<CUresult (*)(CUcontext*)>(fn)(&ctx);
  if (cr != CUDA_SUCCESS || !ctx) {
    if (why) *why = "cuCtxGetCurrent failed with CUresult " + std::to_string(int(cr));
    return nullptr;
  }
  return ctx;
}

std::string cuda_library_versions() {
  auto dotted = [](size_t v, size_t major_div, size_t minor_div) {
    return std::to_string(v / major_div) + "." + std::to_string(v % major_div / minor_div) + "." +
           std::to_string(v % minor_div);
  };
  // cuDNN 9: major * 10000 + minor * 100 + patch; cuBLASLt: major * 10000 + minor * 100 + patch.
  return "cuDNN " + dotted(cudnnGetVersion(), 10000, 100) + ", cuBLASLt " +
         dotted(cublasLtGetVersion(), 10000, 100);
}

}  // namespace fervid
