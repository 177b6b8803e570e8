// How host data reaches the CUDA backend's kernels: frames through two upload slots used in turn
// (each a pinned staging buffer and a device buffer, so the host fills one while the device reads
// the other; uploaded on a stream of their own, so that a batch's upload overlaps the frame stage
// of the batch before it: the preprocess kernel waits for its upload, the next upload into a slot
// waits for the kernel that last read it), and the vote's small tables through pinned memory
// behind the queued work. Only the crops of frames travel, packed after a table of where each is.
#pragma once

#include <cuda_runtime.h>

#include <functional>
#include <span>

#include "cuda/ops.h"
#include "cuda/runtime.h"
#include "fervid/frame.h"
#include "fervid/tensor.h"

namespace fervid::cuda {

// A pinned host buffer paired with the event after the last device read of it: the host waits
// for that event before it writes the buffer again.
struct Staging {
  Buffer host;
  Event done;
  bool pending = false;

  void* reserve(size_t bytes);
  void release(cudaStream_t stream);
};

class FrameUploads {
 public:
  // `drain` waits for all the backend's queued work (before a device buffer is replaced).
  FrameUploads(MemoryMeter meter, std::function<void()> drain)
      : meter_(std::move(meter)), drain_(std::move(drain)) {}

  // The crops of host RGB frames up, then cuda::preprocess on `lane` into `out`.
  void preprocess(std::span<const ImageView> frames, std::span<const CropRect> crops,
                  const Preprocess& pp, const Tensor& out, cudaStream_t lane);
  // The planes of YUV 4:2:0 frames around their crops up (frames already on the device are read
  // where they are), then cuda::preprocess_yuv420 on `lane`; `frames_read` is recorded after it
  // (the frame sink's buffers read so far).
  void preprocess_yuv420(std::span<const YuvView> frames, std::span<const CropRect> crops,
                         const ColorSpec& cs, const Preprocess& pp, const Tensor& out,
                         cudaStream_t lane, const Event& frames_read);

 private:
  struct Slot {
    Staging host;
    Buffer device;
    Event uploaded, read;
    bool read_pending = false;
  };
  Slot& next_slot(size_t bytes);
  void upload(Slot& u, const void* host, size_t bytes, cudaStream_t lane);
  void read_by(Slot& u, cudaStream_t lane);

  MemoryMeter meter_;
  std::function<void()> drain_;
  Stream stream_;
  Slot slots_[2];
  int next_ = 0;
};

// A small host table (the vote's segments or slots) copied to the device behind the queued work.
class TableUpload {
 public:
  TableUpload(MemoryMeter meter, std::function<void()> drain)
      : meter_(std::move(meter)), drain_(std::move(drain)) {}
  const void* upload(const void* src, size_t bytes, cudaStream_t lane);

 private:
  MemoryMeter meter_;
  std::function<void()> drain_;
  Staging staging_;
  Buffer device_;
};

}  // namespace fervid::cuda
