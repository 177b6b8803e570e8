#include "backends/cuda/frame_sink.h"

#include <condition_variable>
#include <mutex>
#include <vector>

#include "backends/backend.h"
#include "cuda/check.h"
#include "cuda/runtime.h"

namespace fervid::cuda {

namespace {

struct Slot {
  Buffer buffer;
  Event freed;           // recorded on the pool's stream behind `frames_read` at the drop
  bool pending = false;  // `freed` was recorded and may not have completed
};

// Shared by the sink and every frame it handed out, so that a frame may outlive the sink.
struct Pool {
  std::mutex mu;
  std::condition_variable returned;
  std::vector<std::unique_ptr<Slot>> free;
  int out = 0;  // slots held by frames
  int max = 0;
  cudaEvent_t frames_read = nullptr;
  Stream release;
  MemoryMeter meter;
};

size_t round_up(size_t v, size_t to) { return (v + to - 1) / to * to; }

class CudaFrameSink final : public DeviceFrameSink {
 public:
  CudaFrameSink(cudaEvent_t frames_read, MemoryMeter meter, int max_frames)
      : pool_(std::make_shared<Pool>()) {
    if (max_frames < 1) fail("internal error: a frame sink needs room for a frame");
    pool_->max = max_frames;
    pool_->frames_read = frames_read;
    pool_->meter = std::move(meter);
  }

  std::shared_ptr<const void> copy_nv12(const YuvView& surface, YuvView& out) override {
    if (!surface.on_device || surface.uv_step != 2 || surface.width < 1 || surface.height < 1)
      fail("internal error: copy_nv12 takes an NV12 frame in device memory");
    const int w = surface.width, h = surface.height;
    const size_t y_pitch = round_up(size_t(w), 256), uv_rows = size_t(h + 1) / 2;
    const size_t bytes = y_pitch * size_t(h) + y_pitch * uv_rows;
    std::unique_ptr<Slot> slot = acquire();
    try {
      if (slot->pending) slot->freed.synchronize();  // the last batch that read it is done
      slot->pending = false;
      if (slot->buffer.bytes() < bytes) {
        slot->buffer = Buffer();
        slot->buffer = pool_->meter.track(device_buffer(bytes));
      }
      auto* y = static_cast<uint8_t*>(slot->buffer.data());
      uint8_t* uv = y + y_pitch * size_t(h);
      // The per-thread stream waits for NVDEC's work on the legacy stream (where FFmpeg maps the
      // surface), and the surface goes back to the decoder when this returns: copy, then wait.
      FV_CUDA_CHECK(cudaMemcpy2DAsync(y, y_pitch, surface.y, size_t(surface.y_stride), size_t(w),
                                      size_t(h), cudaMemcpyDeviceToDevice, cudaStreamPerThread));
      FV_CUDA_CHECK(cudaMemcpy2DAsync(uv, y_pitch, surface.u, size_t(surface.uv_stride),
                                      size_t(w + 1) / 2 * 2, uv_rows, cudaMemcpyDeviceToDevice,
                                      cudaStreamPerThread));
      FV_CUDA_CHECK(cudaStreamSynchronize(cudaStreamPerThread));
      out = {y, uv, uv + 1, int(y_pitch), int(y_pitch), 2, w, h, true};
    } catch (...) {
      give_back(pool_, std::move(slot), false);
      throw;
    }
    Slot* raw = slot.release();
    return std::shared_ptr<const void>(raw->buffer.data(), [pool = pool_, raw](const void*) {
      give_back(pool, std::unique_ptr<Slot>(raw), true);
    });
  }

 private:
  std::unique_ptr<Slot> acquire() {
    std::unique_lock lock(pool_->mu);
    pool_->returned.wait(lock, [&] { return pool_->out < pool_->max; });
    ++pool_->out;
    if (pool_->free.empty()) return std::make_unique<Slot>();
    std::unique_ptr<Slot> s = std::move(pool_->free.back());
    pool_->free.pop_back();
    return s;
  }

  // Runs where a frame is dropped (a destructor), so it never throws: when the event cannot be
  // recorded it waits for the device instead.
  static void give_back(const std::shared_ptr<Pool>& pool, std::unique_ptr<Slot> slot, bool used) {
    if (used) {
      const cudaStream_t s = pool->release.get();
      slot->pending = cudaStreamWaitEvent(s, pool->frames_read, 0) == cudaSuccess &&
                      cudaEventRecord(slot->freed.get(), s) == cudaSuccess;
      if (!slot->pending) cudaDeviceSynchronize();
    }
    std::lock_guard lock(pool->mu);
    pool->free.push_back(std::move(slot));
    --pool->out;
    pool->returned.notify_one();
  }

  std::shared_ptr<Pool> pool_;
};

}  // namespace

std::shared_ptr<DeviceFrameSink> make_frame_sink(cudaEvent_t frames_read, MemoryMeter meter,
                                                 int max_frames) {
  return std::make_shared<CudaFrameSink>(frames_read, std::move(meter), max_frames);
}

}  // namespace fervid::cuda
