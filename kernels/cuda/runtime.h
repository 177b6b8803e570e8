// Owners of device resources (docs/style.md 3): device and pinned buffers come back as
// fervid::Buffer with a deleter that frees them; Stream and Event free their handles. Destructors
// never throw.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

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

// A captured graph (cudaGraph_t), destroyed with its owner.
class Graph {
 public:
  Graph() = default;
  ~Graph();
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;
  cudaGraph_t get() const { return graph_; }
  cudaGraph_t* out() { return &graph_; }  // for cudaStreamEndCapture; empty before

 private:
  cudaGraph_t graph_ = nullptr;
};

// An executable graph (cudaGraphExec_t), or none; destroyed with its owner or by reset().
class GraphExec {
 public:
  GraphExec() = default;
  explicit GraphExec(cudaGraphExec_t exec) : exec_(exec) {}
  ~GraphExec() { reset(); }
  GraphExec(GraphExec&& other) noexcept : exec_(std::exchange(other.exec_, nullptr)) {}
  GraphExec& operator=(GraphExec&& other) noexcept {
    if (this != &other) {
      reset();
      exec_ = std::exchange(other.exec_, nullptr);
    }
    return *this;
  }
  explicit operator bool() const { return exec_ != nullptr; }
  void launch(cudaStream_t stream) const;
  void reset() noexcept;

 private:
  cudaGraphExec_t exec_ = nullptr;
};

}  // namespace fervid::cuda
