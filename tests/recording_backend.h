// A test backend: the CPU backend's ops, with Lanes that run nothing but write down, in order,
// every lane switch, fence record and wait ("use Vote", "record f2", "wait f2", "host waits f2")
// and every op (a layer by its name) with the lane it was queued on ("vote_accumulate@Vote",
// "conv1_1@Network"). The CPU ops run at once,
// so results are the CPU backend's; the log shows the protocol the caller followed.
// With `graphs`, it also has GraphReplay, run as the CUDA backend runs it: a key's first call runs
// the work (planning), the second "captures" it (runs it, watching), later calls are replays that
// run nothing. What a CUDA graph capture cannot hold (an allocation, a copy to or from the host,
// a synchronisation, a lane switch or fence) is logged as "CAPTURE BROKEN: <what>" when the
// work calls it while captured.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "forwarding_backend.h"

namespace fervid::test {

class RecordingBackend final : public ForwardingBackend, Lanes, GraphReplay {
 public:
  explicit RecordingBackend(bool graphs = false) : graphs_(graphs) {}
  std::vector<std::string> log;

  std::string name() const override { return "recording"; }
  std::string device_name() const override { return "CPU ops, recorded lanes"; }
  Buffer allocate(size_t bytes) override {
    outside_capture("allocate");
    return inner().allocate(bytes);
  }
  void copy_from_host(const Tensor& dst, const void* src) override {
    outside_capture("copy_from_host");
    inner().copy_from_host(dst, src);
  }
  void copy_to_host(void* dst, const Tensor& src) override {
    outside_capture("copy_to_host");
    op("copy_to_host");
    inner().copy_to_host(dst, src);
  }
  Buffer allocate_host(size_t bytes) override {
    outside_capture("allocate_host");
    return Buffer::host(bytes);
  }
  void copy_to_host_async(void* dst, const Tensor& src) override {
    outside_capture("copy_to_host_async");
    op("copy_to_host_async");
    inner().copy_to_host(dst, src);
  }
  void synchronize() override { outside_capture("synchronize"); }
  std::unique_ptr<PreparedLayer> prepare(const LayerDesc& layer,
                                         const LayerWeights& weights) override {
    return std::make_unique<WrappedLayer>(inner().prepare(layer, weights),
                                          [this, name = layer.name](const auto& run) {
                                            op(name.c_str());
                                            run();
                                          });
  }
  void preprocess(std::span<const ImageView> f, std::span<const CropRect> c, const Preprocess& pp,
                  const Tensor& out) override {
    op("preprocess");
    inner().preprocess(f, c, pp, out);
  }
  void preprocess_yuv420(std::span<const YuvView> f, std::span<const CropRect> c,
                         const ColorSpec& cs, const Preprocess& pp, const Tensor& out) override {
    op("preprocess_yuv420");
    inner().preprocess_yuv420(f, c, cs, pp, out);
  }
  void softmax_argmax(const Tensor& l, const Tensor& p, const Tensor& labels) override {
    op("softmax_argmax");
    inner().softmax_argmax(l, p, labels);
  }
  void vote_accumulate(const Tensor& probs, const Tensor& labels, std::span<const Segment> s,
                       const Tensor& counts, const Tensor& sums) override {
    op("vote_accumulate");
    inner().vote_accumulate(probs, labels, s, counts, sums);
  }
  void vote_finalize(const Tensor& counts, const Tensor& sums, std::span<const int> slots,
                     VoteMode mode, const Tensor& w, const Tensor& oc, const Tensor& os) override {
    op("vote_finalize");
    inner().vote_finalize(counts, sums, slots, mode, w, oc, os);
  }

  Lanes* lanes() override { return this; }
  GraphReplay* graph_replay() override { return graphs_ ? this : nullptr; }
  void replay(const void* owner, int64_t key, const std::function<void()>& work) override {
    int& calls = calls_[{owner, key}];
    if (++calls > 2) {
      log.push_back("replay " + std::to_string(key));
      ++replays_;
      return;
    }
    if (calls == 1) return work();  // plans
    capturing_ = true;
    log.push_back("capture " + std::to_string(key));
    try {
      work();
    } catch (...) {
      capturing_ = false;
      throw;
    }
    capturing_ = false;
  }
  void forget_replays(const void* owner) override {
    std::erase_if(calls_, [&](const auto& kv) { return kv.first.first == owner; });
  }
  ReplayStats replay_stats() const override {
    ReplayStats st;
    st.enabled = graphs_;
    for (const auto& [key, calls] : calls_) st.graphs += calls >= 2;
    st.replays = replays_;
    return st;
  }
  void use_lane(Lane lane) override {
    outside_capture("use_lane");
    lane_ = lane;
    log.push_back(std::string("use ") + lane_name(lane));
  }
  std::unique_ptr<Fence> make_fence() override {
    outside_capture("make_fence");
    return std::make_unique<LoggedFence>(*this, ++fences_);
  }
  void wait_for(const Fence& fence) override {
    outside_capture("wait_for");
    log.push_back("wait f" + std::to_string(dynamic_cast<const LoggedFence&>(fence).id));
  }

 private:
  struct LoggedFence final : Fence {
    LoggedFence(RecordingBackend& be, int id) : be(be), id(id) {}
    void record() override {
      be.outside_capture("Fence::record");
      be.log.push_back("record f" + std::to_string(id));
    }
    void wait() override {
      be.outside_capture("Fence::wait");
      be.log.push_back("host waits f" + std::to_string(id));
    }
    RecordingBackend& be;
    int id;
  };
  static const char* lane_name(Lane l) {
    return l == Lane::Frames ? "Frames" : l == Lane::Network ? "Network" : "Vote";
  }
  void op(const char* name) { log.push_back(std::string(name) + "@" + lane_name(lane_)); }
  void outside_capture(const char* what) {
    if (capturing_) log.push_back(std::string("CAPTURE BROKEN: ") + what);
  }

  bool graphs_ = false, capturing_ = false;
  std::map<std::pair<const void*, int64_t>, int> calls_;
  int64_t replays_ = 0;
  Lane lane_ = Lane::Network;
  int fences_ = 0;
};

}  // namespace fervid::test
