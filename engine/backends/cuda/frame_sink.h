// The CUDA backend's DeviceFrameSink (backends/backend.h): a bounded pool of device buffers that
// NVDEC surfaces are copied into (NV12, rows padded to 256 bytes).
#pragma once

#include <cuda_runtime.h>

#include <memory>

#include "fervid/tensor.h"

namespace fervid {
class DeviceFrameSink;
}

namespace fervid::cuda {

// At most `max_frames` buffers are out at once. `frames_read` is recorded by the backend after
// every kernel that reads frames; a dropped buffer goes back to the pool behind the latest record
// of it (waited for on the pool's own stream, so dropping a frame never touches the backend's
// stream, which may be capturing a CUDA graph), so it is written again only after the kernels
// queued on it have read it. Allocations are counted by `meter`.
std::shared_ptr<DeviceFrameSink> make_frame_sink(cudaEvent_t frames_read, MemoryMeter meter,
                                                 int max_frames);

}  // namespace fervid::cuda
