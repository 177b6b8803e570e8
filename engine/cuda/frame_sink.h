// The CUDA backend's DeviceFrameSink (fervid/video.h): a bounded pool of device buffers that
// NVDEC surfaces are copied into (NV12, rows padded to 256 bytes).
#pragma once

#include <cuda_runtime.h>

#include <memory>

#include "fervid/tensor.h"

namespace fervid {
class DeviceFrameSink;
}

namespace fervid::cuda {

// At most `max_frames` buffers are out at once; a buffer dropped by the model goes back to the
// pool behind an event on `consumer` (the backend's stream), so it is written again only after
// the kernels queued on it have read it. Allocations are counted by `meter`.
std::shared_ptr<DeviceFrameSink> make_frame_sink(cudaStream_t consumer, MemoryMeter meter,
                                                 int max_frames);

}  // namespace fervid::cuda
