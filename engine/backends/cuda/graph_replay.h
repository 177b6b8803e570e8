// The CUDA backend's GraphReplay (backends/backend.h): the frame stage of each (model, batch
// size, input slot) runs op by op the first time (planning: cuDNN's search, the conv timing,
// workspaces), is captured as a CUDA graph the second time (only this thread's calls count:
// cudaStreamCaptureModeThreadLocal) and replayed from then on, while the buffers it uses besides
// the model's own stay where they were (`placement`: a larger batch may move the pool scratch or a
// library workspace; then it is planned and captured again). The capture always ends
// (capture_guarded); a capture that fails switches graphs off for the backend, the reason kept.
#pragma once

#include <cuda_runtime.h>

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "backends/backend.h"
#include "cuda/runtime.h"

namespace fervid::cuda {

class CudaGraphs final : public GraphReplay {
 public:
  using Placement = std::vector<const void*>;
  // `network`: the stream the frame stage runs on; `on_network` fails off the network lane.
  CudaGraphs(cudaStream_t network, bool enabled, std::function<Placement()> placement,
             std::function<void(const char*)> on_network)
      : network_(network),
        enabled_(enabled),
        placement_(std::move(placement)),
        on_network_(std::move(on_network)) {}

  void replay(const void* owner, int64_t key, const std::function<void()>& work) override;
  void forget_replays(const void* owner) override;
  ReplayStats replay_stats() const override;

 private:
  struct Graph {
    bool planned = false;
    GraphExec exec;
    Placement placement;
  };
  void capture(Graph& g, const std::function<void()>& work);

  cudaStream_t network_;
  bool enabled_;
  std::function<Placement()> placement_;
  std::function<void(const char*)> on_network_;
  std::map<std::pair<const void*, int64_t>, Graph> graphs_;
  int64_t replays_ = 0;
  std::string failure_;
};

}  // namespace fervid::cuda
