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
// The driver context the CUDA runtime (so the backend) uses on device 0: its primary context,
// made current on the calling thread, as the driver API's CUcontext; nullptr with `why` when there
// is none. FFmpeg's NVDEC decoders are handed this context (engine/src/video_ffmpeg.cpp), so that
// decoded surfaces are device pointers of the backend's own context and FFmpeg neither creates a
// context nor asks the primary one for flags of its own.
void* cuda_runtime_context(std::string* why);
// "cuDNN 9.x.y, cuBLASLt 13.x.y" as the libraries loaded at run time report them (no device
// needed), or "none (built without CUDA)".
std::string cuda_library_versions();

}  // namespace fervid
