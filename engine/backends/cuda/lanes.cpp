#include "backends/cuda/lanes.h"

#include <string>
#include <vector>

#include "cuda/check.h"
#include "fervid/error.h"

namespace fervid::cuda {

namespace {

// `lane` points at the lanes' current stream: marks go where the work goes.
class CudaTimeline final : public Timeline {
 public:
  explicit CudaTimeline(const cudaStream_t* lane) : lane_(lane) {}
  void mark() override {
    if (count_ == events_.size()) events_.push_back(std::make_unique<Event>());
    events_[count_++]->record(*lane_);
  }
  std::vector<double> take_ms() override {
    std::vector<double> ms;
    for (size_t i = 1; i < count_; ++i) ms.push_back(events_[i]->since(*events_[i - 1]));
    count_ = 0;
    return ms;
  }

 private:
  const cudaStream_t* lane_;
  std::vector<std::unique_ptr<Event>> events_;
  size_t count_ = 0;
};

class CudaFence final : public Fence {
 public:
  explicit CudaFence(const cudaStream_t* lane) : lane_(lane) {}
  void record() override { event_.record(*lane_); }
  void wait() override { event_.synchronize(); }
  cudaEvent_t get() const { return event_.get(); }

 private:
  const cudaStream_t* lane_;
  Event event_;
};

}  // namespace

CudaLanes::CudaLanes() : current_(network_.get()) {}

void CudaLanes::on_network(const char* op) const {
  if (lane_ != Lane::Network) fail(std::string("internal error: ") + op + " off the network lane");
}

void CudaLanes::synchronize_all() const {
  for (const Stream* s : {&frames_, &network_, &vote_}) s->synchronize();
}

void CudaLanes::use_lane(Lane lane) {
  lane_ = lane;
  current_ = lane == Lane::Frames    ? frames_.get()
             : lane == Lane::Network ? network_.get()
                                     : vote_.get();
}

std::unique_ptr<Fence> CudaLanes::make_fence() { return std::make_unique<CudaFence>(&current_); }

void CudaLanes::wait_for(const Fence& fence) {
  const auto* f = dynamic_cast<const CudaFence*>(&fence);
  if (!f) fail("internal error: a fence of another backend");
  FV_CUDA_CHECK(cudaStreamWaitEvent(current_, f->get(), 0));
}

std::unique_ptr<Timeline> CudaLanes::make_timeline() {
  return std::make_unique<CudaTimeline>(&current_);
}

}  // namespace fervid::cuda
