#include "backends/cuda/graph_replay.h"

#include "backends/cuda/capture_guard.h"
#include "cuda/check.h"

namespace fervid::cuda {

void CudaGraphs::replay(const void* owner, int64_t key, const std::function<void()>& work) {
  on_network_("the frame stage");
  if (!enabled_) return work();
  Graph& g = graphs_[{owner, key}];
  const Placement now = placement_();
  if (g.exec && g.placement == now) {
    g.exec.launch(network_);
    ++replays_;
    return;
  }
  if (g.exec) {  // a buffer the graph uses has moved: plan and capture again
    g.exec.reset();
    g.planned = false;
  }
  if (!g.planned) {  // the first run plans (cuDNN's search, the conv timing) and synchronises
    work();
    g.planned = true;
    return;
  }
  capture(g, work);
  g.placement = placement_();
}

void CudaGraphs::forget_replays(const void* owner) {
  for (auto it = graphs_.begin(); it != graphs_.end();) {
    if (it->first.first != owner) {
      ++it;
      continue;
    }
    it = graphs_.erase(it);  // its GraphExec destroys the executable graph
  }
}

ReplayStats CudaGraphs::replay_stats() const {
  ReplayStats s;
  s.enabled = enabled_;
  for (const auto& [key, g] : graphs_) s.graphs += bool(g.exec);
  s.replays = replays_;
  s.failure = failure_;
  return s;
}

// Captures `work` on the network stream and launches the graph. When capture fails (an op that
// cannot be captured), graphs are switched off, the reason kept for replay_stats(), and `work`
// runs op by op. The capture always ends, also when `work` throws something else, which then
// propagates.
void CudaGraphs::capture(Graph& g, const std::function<void()>& work) {
  cuda::Graph graph;
  std::string why = capture_guarded(
      [&] { FV_CUDA_CHECK(cudaStreamBeginCapture(network_, cudaStreamCaptureModeThreadLocal)); },
      work,
      [&]() -> std::string {
        const cudaError_t rc = cudaStreamEndCapture(network_, graph.out());
        return rc == cudaSuccess ? ""
                                 : std::string("cudaStreamEndCapture: ") + cudaGetErrorName(rc);
      });
  if (why.empty()) {
    cudaGraphExec_t exec = nullptr;
    const cudaError_t rc = cudaGraphInstantiate(&exec, graph.get(), 0);
    if (rc != cudaSuccess)
      why = std::string("cudaGraphInstantiate: ") + cudaGetErrorName(rc);
    else
      g.exec = GraphExec(exec);
  }
  if (!why.empty()) {
    (void)cudaGetLastError();  // capture errors are not sticky; clear the last one
    enabled_ = false;
    failure_ = why;
    work();
    return;
  }
  g.exec.launch(network_);
  ++replays_;
}

}  // namespace fervid::cuda
