// Owners of device resources (STYLE.md 3): device and pinned buffers come back as fervid::Buffer
// with a deleter that frees them; Stream and Event free their handles. Destructors never throw.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "fervid/tensor.h"

namespace fervid::cuda {

Buffer device_buffer(size_t bytes);
Buffer pinned_buffer(size_t bytes);

class Stream {
 public:
  Stream();
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return stream_; }
  void synchronize() const;

 private:
  cudaStream_t stream_ = nullptr;
};

class Event {
 public:
  Event();
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return event_; }
  void record(cudaStream_t stream) const;
  void synchronize() const;
  // Milliseconds from `start` to this event (both recorded and completed).
  float since(const Event& start) const;

 private:
  cudaEvent_t event_ = nullptr;
};

}  // namespace fervid::cuda
