#include "classifier.h"

#include <map>
#include <memory>
#include <variant>

#include "batch.h"
#include "decode_stage.h"
#include "fervid/error.h"
#include "run_clock.h"
#include "stage_lanes.h"
#include "video_book.h"
#include "vote_table.h"

namespace fervid {

namespace {

// Stage times are read back (a wait for the device) once per this many batches.
constexpr int kStageReadBatches = 32;

// The backend's time in each stage of the batches (ClassifyOptions::stage_times): a time stamp
// before and after each stage, on the stage's lane, read back every kStageReadBatches batches
// and at the end.
class StageTimes {
 public:
  StageTimes(Backend& be, bool on) {
    if (Timelines* t = be.timelines(); t && on) timeline_ = t->make_timeline();
  }
  bool on() const { return timeline_ != nullptr; }
  void mark() {
    if (timeline_) timeline_->mark();
  }
  // After each batch's last mark.
  void batch_done(RunStats& stats) {
    if (timeline_ && ++batches_ == kStageReadBatches) read(stats);
  }
  void read(RunStats& stats) {
    if (!timeline_ || batches_ == 0) return;
    const std::vector<double> ms = timeline_->take_ms();
    // Per batch: preprocess, frame stage, vote, each followed by a gap (not counted).
    for (size_t i = 0; i + 4 < ms.size(); i += 6) {
      stats.preprocess_s += ms[i] / 1e3;
      stats.frame_stage_s += ms[i + 2] / 1e3;
      stats.vote_s += ms[i + 4] / 1e3;
    }
    batches_ = 0;
  }

 private:
  std::unique_ptr<Timeline> timeline_;
  int batches_ = 0;
};

// Hands results on in input order, whatever order the videos finish in.
class InOrder {
 public:
  InOrder(const std::function<void(const VideoResult&)>& on_video, RunStats& stats)
      : on_video_(on_video), stats_(stats) {}
  void put(int video, VideoResult r) {
    ready_[video] = std::move(r);
    for (auto it = ready_.find(next_); it != ready_.end(); it = ready_.find(next_)) {
      it->second.ok() ? ++stats_.videos_ok : ++stats_.videos_failed;
      on_video_(it->second);
      ready_.erase(it);
      ++next_;
    }
  }

 private:
  const std::function<void(const VideoResult&)>& on_video_;
  RunStats& stats_;
  std::map<int, VideoResult> ready_;
  int next_ = 0;
};

// One classify run on the model thread: the messages of the decode stage in, batches through
// the model, votes out.
class ModelThread {
 public:
  ModelThread(Model& model, const ClassifyOptions& options, const std::vector<InputItem>& inputs,
              int threads, const std::function<void(const VideoResult&)>& on_video)
      : model_(model),
        options_(options),
        // At most `batch` videos have frames in the batch being filled, plus one being sent by
        // each decode thread.
        votes_(model.backend(), options.batch + threads + 2, model.spec().num_classes(),
               options.vote),
        book_(inputs, options.crop, votes_),
        batch_(options.batch),
        lanes_(model.backend(), options.stage_streams),
        times_(model.backend(), options.stage_times),
        results_(on_video, stats_) {}

  void take(Msg& m) {
    if (auto* fm = std::get_if<FrameMsg>(&m)) {
      if (std::optional<CropRect> crop = book_.admit(fm->video, fm->frame, fm->crop, fm->track)) {
        batch_.add(fm->video, std::move(fm->frame), *crop, fm->track);
        if (batch_.full()) run_batch();
      }
    } else if (auto* sm = std::get_if<StartMsg>(&m)) {
      book_.start(sm->video, sm->crop, sm->warning);
    } else {
      const auto& em = std::get<EndMsg>(m);
      if (book_.end(em.video, em.error, em.warning, em.stats)) finish({em.video});
    }
  }

  // After the last message: the last batch, every result.
  RunStats end() {
    run_batch();
    deliver();
    times_.read(stats_);
    stats_.staged = times_.on();
    return stats_;
  }

 private:
  // The batch's three stages (StageLanes orders them on their lanes), then its frame rows, then
  // the videos it completed.
  void run_batch() {
    if (batch_.empty()) return;
    const int n = batch_.size(), slot = lanes_.next_slot();
    lanes_.preprocess_begins(slot);
    times_.mark();
    model_.preprocess(batch_.frames(), batch_.crops(), slot);
    times_.mark();
    lanes_.preprocess_ends();
    lanes_.frame_stage_begins();
    times_.mark();
    model_.frame_stage(n, {}, slot);
    times_.mark();
    lanes_.frame_stage_ends(slot);
    lanes_.vote_begins(slot);
    const std::vector<Segment> segments = batch_.segments([&](int v) { return book_.slot(v); });
    times_.mark();
    votes_.accumulate(model_.probs().slice(0, n), model_.labels().slice(0, n), segments);
    times_.mark();
    lanes_.vote_ends();
    times_.batch_done(stats_);
    const std::vector<int> done = book_.ran(batch_.videos(), frame_rows());
    stats_.frames += n;
    batch_.clear();
    deliver();  // the videos finished before this batch, while its work runs on the device
    finish(done);
  }

  // The batch's per-frame rows, when kept (a wait for the frame stage).
  std::vector<FrameResult> frame_rows() {
    if (!options_.keep_frames) return {};
    Backend& be = model_.backend();
    const int n = batch_.size(), classes = model_.spec().num_classes();
    host_probs_.resize(size_t(n) * classes);
    host_labels_.resize(n);
    be.copy_to_host(host_probs_.data(), model_.probs().slice(0, n));
    be.copy_to_host(host_labels_.data(), model_.labels().slice(0, n));
    if (options_.keep_logits) {
      host_logits_.resize(size_t(n) * classes);
      be.copy_to_host(host_logits_.data(), model_.logits().slice(0, n));
    }
    std::vector<FrameResult> rows(n);
    for (int i = 0; i < n; ++i) {
      FrameResult& fr = rows[i];
      fr.frame_index = batch_.frames()[i].index;
      fr.time_s = batch_.frames()[i].time_s;
      fr.crop = batch_.crops()[i];
      fr.track = batch_.tracks()[i];
      fr.label = host_labels_[i];
      fr.probs.assign(host_probs_.begin() + i * classes, host_probs_.begin() + (i + 1) * classes);
      if (options_.keep_logits)
        fr.logits.assign(host_logits_.begin() + i * classes,
                         host_logits_.begin() + (i + 1) * classes);
    }
    return rows;
  }

  void finish(const std::vector<int>& videos) {
    const std::vector<Finished> closing = book_.close(videos);
    votes_.finalize(closing);
  }

  void deliver() {
    for (const VoteOutcome& v : votes_.collect())
      results_.put(v.video, book_.result(v, options_.vote));
  }

  Model& model_;
  const ClassifyOptions& options_;
  RunStats stats_;
  VoteTable votes_;
  VideoBook book_;
  Batch batch_;
  StageLanes lanes_;
  StageTimes times_;
  InOrder results_;
  std::vector<float> host_probs_, host_logits_;
  std::vector<int32_t> host_labels_;
};

}  // namespace

int Classifier::decode_threads() const {
  if (options_.decode_threads > 0) return options_.decode_threads;
  // The CPU backend: the network limits the rate, and decode threads would take its cores. A
  // GPU backend: decoding limits it, NVDEC or not (CPU decoders have slice threads only).
  return model_.backend().frame_sinks() ? kGpuDecodeThreads : 1;
}

Classifier::Classifier(Model& model, ClassifyOptions options) : model_(model), options_(options) {
  check_classify_options(options_, model.max_batch());
  decoder_ = choose_decoder(options_.decoder, model.backend().frame_sinks() != nullptr,
                            options_.crop.finds_faces(), &decoder_notice_);
}

RunStats Classifier::run(const std::vector<InputItem>& inputs,
                         const std::function<void(const VideoResult&)>& on_video,
                         std::stop_token stop) {
  const auto t0 = Clock::now();
  ModelThread model_thread(model_, options_, inputs, decode_threads(), on_video);
  DecodeStage stage(inputs, options_, decoder_, model_.backend(), decode_threads());
  RunStats stats;
  try {
    Msg m;
    while (stage.queue().pop(m)) {
      if (stop.stop_requested()) throw Cancelled("the run was stopped");
      model_thread.take(m);
    }
    stats = model_thread.end();
  } catch (...) {
    stage.stop();
    throw;
  }
  stage.finish(stats);
  stats.seconds = seconds_since(t0);
  stats.model_starved_s = stage.queue().pop_wait_s;
  stats.model_s = stats.seconds - stats.model_starved_s;
  return stats;
}

RunStats Classifier::decode_only(const std::vector<InputItem>& inputs) {
  const auto t0 = Clock::now();
  DecodeStage stage(inputs, options_, decoder_, model_.backend(), decode_threads());
  RunStats stats;
  Msg m;
  while (stage.queue().pop(m)) {
    if (std::holds_alternative<FrameMsg>(m)) ++stats.frames;
    if (auto* em = std::get_if<EndMsg>(&m))
      em->error.empty() ? ++stats.videos_ok : ++stats.videos_failed;
  }
  stage.finish(stats);
  stats.seconds = seconds_since(t0);
  stats.model_starved_s = stage.queue().pop_wait_s;
  return stats;
}

}  // namespace fervid
