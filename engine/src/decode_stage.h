// The decode stage of a classify run (DecodeStage) and what it sends the model thread through a
// bounded Queue: per input, its crop when the crop comes with the video (StartMsg), its sampled
// frames (FrameMsg) and its end (EndMsg, with the reason it failed or a warning).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "face.h"
#include "face_follower.h"
#include "fervid/inputs.h"
#include "fervid/run.h"
#include "run_clock.h"
#include "video.h"

namespace fervid {

struct FrameMsg {
  int video;
  Frame frame;
  std::optional<CropRect> crop = std::nullopt;  // this frame's own crop (--crop face)
  int track = 0;  // --crop face: the track id of the face it is around (0: none, the centre)
};
// Before the frames of a video whose crop is chosen per video (haar, boxes=FILE).
struct StartMsg {
  int video;
  CropRect crop;
  std::string warning;
};
struct EndMsg {
  int video;
  std::string error, warning;
  SourceStats stats;
};
using Msg = std::variant<FrameMsg, StartMsg, EndMsg>;

// A bounded queue between the decode thread and the model; close() ends it from either side.
// It adds up how long each side waited (push: the queue was full; pop: it was empty).
class Queue {
 public:
  double push_wait_s = 0, pop_wait_s = 0;
  explicit Queue(size_t capacity) : capacity_(capacity) {}
  bool push(Msg m) {
    std::unique_lock lock(mu_);
    if (!closed_ && items_.size() >= capacity_) {
      const auto t0 = Clock::now();
      not_full_.wait(lock, [&] { return closed_ || items_.size() < capacity_; });
      push_wait_s += seconds_since(t0);
    }
    if (closed_) return false;
    items_.push_back(std::move(m));
    not_empty_.notify_one();
    return true;
  }
  bool pop(Msg& m) {
    std::unique_lock lock(mu_);
    if (!closed_ && items_.empty()) {
      const auto t0 = Clock::now();
      not_empty_.wait(lock, [&] { return closed_ || !items_.empty(); });
      pop_wait_s += seconds_since(t0);
    }
    if (items_.empty()) return false;
    m = std::move(items_.front());
    items_.pop_front();
    not_full_.notify_one();
    return true;
  }
  void close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    not_empty_.notify_all();
    not_full_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable not_full_, not_empty_;
  std::deque<Msg> items_;
  size_t capacity_;
  bool closed_ = false;
};

// What one decode thread finds faces with: the Haar cascade (--crop haar) or the detector and
// its tracker (--crop face).
struct FaceTools {
  std::unique_ptr<FaceFinder> haar;
  std::unique_ptr<FaceFollower> follower;
};

// The decode threads of a run and the queue they fill, with the NVDEC frame pool when NVDEC
// decodes. Each thread takes the next input by number and sends, per input, the crop that comes
// with it (haar, boxes=FILE), its frames (with --crop face, each with its own crop) and its end. A
// thread that fails outside any one video (out of memory, a device error) stops the run: its video
// would never end; finish() rethrows its error.
class DecodeStage {
 public:
  // Decoded frames buffered ahead of the model: ClassifyOptions::queue_frames, or 2 batches.
  static int queue_frames(const ClassifyOptions& o);

  DecodeStage(const std::vector<InputItem>& inputs, const ClassifyOptions& options,
              DecoderKind decoder, Backend& be, int threads);
  ~DecodeStage();
  DecodeStage(const DecodeStage&) = delete;
  DecodeStage& operator=(const DecodeStage&) = delete;

  Queue& queue() { return queue_; }
  // Closes the queue and joins the threads.
  void stop();
  // Joins the threads; the decode shares of `stats`, per thread on average.
  void finish(RunStats& stats);

 private:
  Queue queue_;
  const std::vector<std::optional<CropRect>> boxes_;
  std::shared_ptr<DeviceFrameSink> sink_;
  std::optional<DetectorWeights> detector_;  // --crop face's, shared by the threads' followers
  std::vector<FaceTools> faces_;
  std::vector<double> thread_s_;
  std::atomic<int> next_input_{0}, running_;
  std::mutex failure_mu_;
  std::exception_ptr failure_;
  std::vector<std::thread> threads_;
};

}  // namespace fervid
