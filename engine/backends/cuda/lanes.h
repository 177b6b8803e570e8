// The CUDA backend's lanes (backends/backend.h: Frames, Network, Vote) as three streams of their
// own, the fences between them (events recorded on one stream, waited for on another) and the
// timelines (events on the current lane). Every op of the backend goes to current(); cuDNN and
// cuBLASLt are bound to network(), so the frame-stage ops check on_network().
#pragma once

#include <cuda_runtime.h>

#include <memory>

#include "backends/backend.h"
#include "cuda/runtime.h"

namespace fervid::cuda {

class CudaLanes final : public Lanes, public Timelines {
 public:
  CudaLanes();
  cudaStream_t current() const { return current_; }
  cudaStream_t network() const { return network_.get(); }
  // Fails (an internal error naming `op`) unless the current lane is Network.
  void on_network(const char* op) const;
  void synchronize_all() const;

  void use_lane(Lane lane) override;
  std::unique_ptr<Fence> make_fence() override;
  void wait_for(const Fence& fence) override;
  std::unique_ptr<Timeline> make_timeline() override;

 private:
  Stream network_, frames_, vote_;
  Lane lane_ = Lane::Network;
  cudaStream_t current_ = nullptr;  // the stream of lane_
};

}  // namespace fervid::cuda
