#include "fervid/pipeline.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <exception>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <variant>

#include "fervid/error.h"
#include "fervid/face.h"

namespace fervid {

namespace {

// path,x,y,w,h rows -> canonical path -> box.
std::map<std::string, CropRect> read_boxes(const std::string& csv) {
  std::ifstream in(csv);
  if (!in) fail("--crop boxes=" + csv + ": cannot read the file");
  std::map<std::string, CropRect> boxes;
  std::string line;
  for (int lineno = 1; std::getline(in, line); ++lineno) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::optional<ListedRow> row = split_listed_row(csv, line, 4);
    if (row && lineno == 1 && row->path == "path") continue;  // header
    CropRect r;
    bool ok = bool(row);
    try {
      if (ok) {
        const auto& f = row->fields;
        r = {std::stoi(f[0]), std::stoi(f[1]), std::stoi(f[2]), std::stoi(f[3])};
        ok = r.x >= 0 && r.y >= 0 && r.width > 0 && r.height > 0;
      }
    } catch (const std::exception&) {
      ok = false;
    }
    if (!ok)
      fail("--crop boxes=" + csv + ":" + std::to_string(lineno) +
           ": expected path,x,y,w,h with x,y >= 0 and w,h > 0");
    boxes[row->key] = r;
  }
  return boxes;
}

std::string box_text(const CropRect& b) {
  return std::to_string(b.x) + "," + std::to_string(b.y) + "," + std::to_string(b.width) + "," +
         std::to_string(b.height);
}

}  // namespace

CropSpec CropSpec::parse(const std::string& text) {
  CropSpec c;
  if (text == "full") return c;
  if (text == "center") {
    c.mode = Mode::Center;
    return c;
  }
  if (text.rfind("box=", 0) == 0) {
    std::istringstream in(text.substr(4));
    char c1 = 0, c2 = 0, c3 = 0;
    in >> c.box.x >> c1 >> c.box.y >> c2 >> c.box.width >> c3 >> c.box.height;
    if (in.fail() || !in.eof() || c1 != ',' || c2 != ',' || c3 != ',' || c.box.x < 0 ||
        c.box.y < 0 || c.box.width <= 0 || c.box.height <= 0)
      fail("--crop " + text + ": expected box=x,y,w,h with x,y >= 0 and w,h > 0");
    c.mode = Mode::Box;
    return c;
  }
  if (text == "face") {
    c.mode = Mode::Face;
    return c;
  }
  if (text.rfind("boxes=", 0) == 0) {
    c.mode = Mode::Boxes;
    c.boxes_file = text.substr(6);
    c.boxes = std::make_shared<const std::map<std::string, CropRect>>(read_boxes(c.boxes_file));
    return c;
  }
  fail("--crop " + text + ": expected full, center, box=x,y,w,h, face or boxes=FILE");
}

CropRect CropSpec::rect_for(int width, int height) const {
  switch (mode) {
    case Mode::Full:
      return {0, 0, width, height};
    case Mode::Center: {
      int side = std::min(width, height);
      return {(width - side) / 2, (height - side) / 2, side, side};
    }
    case Mode::Box:
      if (box.x + box.width > width || box.y + box.height > height)
        fail("crop box " + box_text(box) + " lies outside the " + std::to_string(width) + "x" +
             std::to_string(height) + " frame");
      return box;
    case Mode::Face:
    case Mode::Boxes:
      fail("internal error: a per-video crop has no rectangle of its own");
  }
  return {0, 0, width, height};
}

CropRect square_inside(double cx, double cy, double side, int width, int height) {
  const int s = std::max(1, std::min({int(std::lround(side)), width, height}));
  const int x = std::clamp(int(std::lround(cx - s / 2.0)), 0, width - s);
  const int y = std::clamp(int(std::lround(cy - s / 2.0)), 0, height - s);
  return {x, y, s, s};
}

namespace {

// Stage times are read back (a wait for the device) once per this many batches.
constexpr int kStageReadBatches = 32;

struct FrameMsg {
  int video;
  Frame frame;
};
// Before the frames of a video whose crop is chosen per video (face, boxes=FILE).
struct StartMsg {
  int video;
  CropRect crop;
  std::string warning;
};
struct EndMsg {
  int video;
  std::string error, warning;
};
using Msg = std::variant<FrameMsg, StartMsg, EndMsg>;

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

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

// With --crop boxes=FILE: each input's box, looked up once per run (nullopt: FILE has none).
using InputBoxes = std::vector<std::optional<CropRect>>;

InputBoxes boxes_of(const std::vector<InputItem>& inputs, const CropSpec& crop) {
  InputBoxes boxes(inputs.size());
  if (crop.mode != CropSpec::Mode::Boxes) return boxes;
  for (size_t v = 0; v < inputs.size(); ++v) {
    auto it = crop.boxes->find(canonical_path(inputs[v].path));
    if (it != crop.boxes->end()) boxes[v] = it->second;
  }
  return boxes;
}

// What one decode thread sends for a video: its start when the crop comes with the video (face,
// boxes=FILE), its frames, its end. With --crop face the first frames are held back until their
// face box is known.
class VideoSender {
 public:
  VideoSender(const std::vector<InputItem>& inputs, const CropSpec& crop, const InputBoxes& boxes,
              FaceFinder* faces, Queue& q)
      : inputs_(inputs), crop_(crop), boxes_(boxes), faces_(faces), q_(q) {}

  // False once the queue is closed (the run stops).
  bool frame(int v, Frame f) {
    if (!begin(v)) return false;
    if (!error_.empty()) return true;
    if (holding_) {
      head_.push_back(std::move(f));
      return int(head_.size()) < CropSpec::kFaceProbeFrames || release_head();
    }
    return q_.push(FrameMsg{v, std::move(f)});
  }

  bool end(int v, std::string error, const std::string& warning) {
    if (!begin(v)) return false;
    if (holding_ && !release_head()) return false;
    if (error.empty()) error = error_;
    video_ = -1;
    return q_.push(EndMsg{v, error, warning});
  }

 private:
  bool begin(int v) {
    if (v == video_) return true;
    video_ = v;
    error_.clear();
    head_.clear();
    holding_ = crop_.mode == CropSpec::Mode::Face;
    if (crop_.mode != CropSpec::Mode::Boxes) return true;
    if (!boxes_[v]) {
      error_ = inputs_[v].path + ": no crop box for this video in " + crop_.boxes_file;
      return true;
    }
    return q_.push(StartMsg{v, *boxes_[v], ""});
  }

  bool release_head() {
    holding_ = false;
    if (head_.empty()) return true;
    std::vector<ImageView> probe;
    for (size_t i = 0; i < head_.size(); i += CropSpec::kFaceProbeStep)
      probe.push_back(head_[i].view());
    StartMsg start{video_, {}, ""};
    if (auto box = faces_->video_box(probe, crop_.margin)) {
      start.crop = *box;
    } else {
      const Frame& f = head_[0];
      start.crop = square_inside(f.width / 2.0, f.height / 2.0, std::min(f.width, f.height),
                                 f.width, f.height);
      start.warning =
          "no face found in " + std::to_string(probe.size()) + " frames; centre crop used";
    }
    if (!q_.push(std::move(start))) return false;
    for (Frame& h : head_)
      if (!q_.push(FrameMsg{video_, std::move(h)})) return false;
    head_.clear();
    return true;
  }

  const std::vector<InputItem>& inputs_;
  const CropSpec& crop_;
  const InputBoxes& boxes_;
  FaceFinder* faces_;
  Queue& q_;
  int video_ = -1;
  bool holding_ = false;
  std::string error_;
  std::vector<Frame> head_;
};

// One decode thread: takes the next input by number until none is left. Videos go clip after
// clip through the thread's long-lived ClipDecoder; images and image folders are read directly.
void decode_inputs(const std::vector<InputItem>& inputs, std::atomic<int>& next_input,
                   const SamplingOptions& sampling, const DecodeOptions& decode,
                   const CropSpec& crop, const InputBoxes& boxes, FaceFinder* faces, Queue& q) {
  VideoSender send(inputs, crop, boxes, faces, q);
  std::unique_ptr<ClipDecoder> clips = ClipDecoder::create(sampling, decode);
  auto pump = [&] {
    ClipEvent ev;
    while (clips->next(ev)) {
      const bool open = ev.end ? send.end(ev.clip, std::move(ev.error), ev.warning)
                               : send.frame(ev.clip, std::move(ev.frame));
      if (!open) return false;
    }
    return true;
  };
  for (int v = next_input++; v < int(inputs.size()); v = next_input++) {
    if (inputs[v].kind == InputKind::Video) {
      if (crop.mode == CropSpec::Mode::Boxes && !boxes[v]) {
        if (!send.end(v, "", "")) return;  // its error row, without decoding it
        continue;
      }
      clips->add(v, inputs[v].path);
      if (!pump()) return;
      continue;
    }
    clips->flush();
    if (!pump()) return;
    std::string error;
    try {
      auto source = open_frames(inputs[v], sampling);
      Frame f;
      while (source->next(f))
        if (!send.frame(v, std::move(f))) return;
    } catch (const std::exception& e) {
      error = e.what();
    }
    if (!send.end(v, error, "")) return;
  }
  clips->flush();
  pump();
}

// The decode threads of a run and the queue they fill, with the NVDEC frame pool when NVDEC
// decodes. A thread that fails outside any one video (out of memory, a device error) stops the
// run: its video would never end; finish() rethrows its error.
class DecodeStage {
 public:
  static int queue_frames(const ClassifyOptions& o) {
    return o.queue_frames > 0 ? o.queue_frames : 2 * o.batch;
  }

  DecodeStage(const std::vector<InputItem>& inputs, const ClassifyOptions& options, Backend& be,
              int threads)
      : queue_(size_t(queue_frames(options))),
        boxes_(boxes_of(inputs, options.crop)),
        thread_s_(threads, 0.0),
        running_(threads) {
    DecodeOptions decode;
    decode.kind = options.decoder;
    if (decode.kind == DecoderKind::Nvdec) {
      // Frames in the queue, in the batch and in each decode thread's hands.
      sink_ = be.make_frame_sink(queue_frames(options) + options.batch + 2 * threads + 2);
      if (!sink_) fail("--decoder nvdec: the " + be.name() + " backend cannot read device frames");
      decode.sink = sink_.get();
    }
    // A detector per thread: one is not meant to be called from several threads at once.
    if (options.crop.mode == CropSpec::Mode::Face)
      for (int t = 0; t < threads; ++t) faces_.push_back(std::make_unique<FaceFinder>());
    SamplingOptions sampling = options.sampling;
    // On the GPU, 4:2:0 video goes up as YUV and is converted there (half the bytes, no swscale
    // on the CPU); the CPU backend keeps swscale's RGB, the reference path, unless asked. The
    // face detector reads RGB frames.
    if (be.device() == Device::Cuda) sampling.keep_yuv = true;
    if (options.crop.mode == CropSpec::Mode::Face) sampling.keep_yuv = false;
    for (int t = 0; t < threads; ++t)
      threads_.emplace_back([this, t, &inputs, sampling, decode, &crop = options.crop] {
        const auto t0 = Clock::now();
        try {
          decode_inputs(inputs, next_input_, sampling, decode, crop, boxes_,
                        faces_.empty() ? nullptr : faces_[t].get(), queue_);
        } catch (...) {
          std::lock_guard lock(failure_mu_);
          if (!failure_) failure_ = std::current_exception();
          queue_.close();
        }
        thread_s_[t] = seconds_since(t0);
        if (--running_ == 0) queue_.close();  // the last one to finish
      });
  }
  ~DecodeStage() { stop(); }

  Queue& queue() { return queue_; }
  void stop() {
    queue_.close();
    for (std::thread& t : threads_)
      if (t.joinable()) t.join();
  }
  // Joins the threads; the decode shares of `stats`, per thread on average.
  void finish(RunStats& stats) {
    stop();
    if (failure_) std::rethrow_exception(failure_);
    const int threads = int(thread_s_.size());
    double wall_s = 0;
    for (double t : thread_s_) wall_s += t;
    stats.decode_threads = threads;
    stats.decode_s = (wall_s - queue_.push_wait_s) / threads;
    stats.decode_blocked_s = queue_.push_wait_s / threads;
  }

 private:
  Queue queue_;
  const InputBoxes boxes_;
  std::shared_ptr<DeviceFrameSink> sink_;
  std::vector<std::unique_ptr<FaceFinder>> faces_;
  std::vector<double> thread_s_;
  std::atomic<int> next_input_{0}, running_;
  std::mutex failure_mu_;
  std::exception_ptr failure_;
  std::vector<std::thread> threads_;
};

}  // namespace

int Classifier::decode_threads() const {
  if (options_.decode_threads > 0) return options_.decode_threads;
  return options_.decoder == DecoderKind::Nvdec ? kNvdecThreads : 1;
}

Classifier::Classifier(Model& model, ClassifyOptions options) : model_(model), options_(options) {
  if (options_.decode_threads < 0 || options_.decode_threads > 64)
    fail("--decode-threads " + std::to_string(options_.decode_threads) + ": expected 0..64");
  if (options_.batch < 1 || options_.batch > model.max_batch())
    fail("batch size " + std::to_string(options_.batch) + " outside 1.." +
         std::to_string(model.max_batch()));
}

RunStats Classifier::run(const std::vector<InputItem>& inputs,
                         const std::function<void(const VideoResult&)>& on_video) {
  Backend& be = model_.backend();
  const int classes = model_.spec().num_classes();
  const int batch = options_.batch;
  const int threads = decode_threads();
  // At most `batch` videos have frames in the batch being filled, plus one being sent by each
  // decode thread.
  const int slots = batch + threads + 2;
  Buffer counts_buf = be.allocate(size_t(slots) * classes * 4);
  Buffer sums_buf = be.allocate(size_t(slots) * classes * 8);
  Tensor counts = Tensor::view(counts_buf, {slots, classes}, DType::I32);
  Tensor sums = Tensor::view(sums_buf, {slots, classes}, DType::F64);
  {
    std::vector<int32_t> zc(size_t(slots) * classes, 0);
    std::vector<double> zs(size_t(slots) * classes, 0.0);
    be.copy_from_host(counts, zc.data());
    be.copy_from_host(sums, zs.data());
  }
  // The results of finished videos, `slots` rows on the device and in host memory the device
  // copies into, planned once per run; rows are handed out in turn until the finished videos
  // whose results are still on their way are collected (collect()).
  Buffer winners_buf = be.allocate(size_t(slots) * 4);
  Buffer out_counts_buf = be.allocate(size_t(slots) * classes * 4);
  Buffer out_sums_buf = be.allocate(size_t(slots) * classes * 8);
  Tensor winners_all = Tensor::view(winners_buf, {slots}, DType::I32);
  Tensor out_counts_all = Tensor::view(out_counts_buf, {slots, classes}, DType::I32);
  Tensor out_sums_all = Tensor::view(out_sums_buf, {slots, classes}, DType::F64);
  Buffer host_winners = be.allocate_host(size_t(slots) * 4);
  Buffer host_counts = be.allocate_host(size_t(slots) * classes * 4);
  Buffer host_sums = be.allocate_host(size_t(slots) * classes * 8);
  int rows_used = 0;
  std::vector<int> free_slots;
  for (int s = slots - 1; s >= 0; --s) free_slots.push_back(s);

  struct Open {
    int slot = -1;
    int64_t frames = 0;
    int pending = 0;  // frames in the batch not yet run
    bool ended = false;
    std::string error;
    CropRect crop{};
    int crop_w = -1, crop_h = -1;
    bool fixed = false;  // the crop came with the video (face, boxes=FILE)
    CropRect first_crop{};
    std::string warning;
    std::vector<FrameResult> rows;
  };
  std::map<int, Open> open;
  // Videos whose vote was finalized on the device, their results copied back behind `landed`.
  struct Finishing {
    std::vector<std::pair<int, Open>> videos;
    int row = 0;  // their first result row
    std::unique_ptr<Fence> landed;
  };
  std::deque<Finishing> finishing;
  std::map<int, VideoResult> ready;
  int next_emit = 0;
  RunStats stats;
  const auto t0 = Clock::now();

  std::vector<Frame> frames;
  std::vector<int> owner;
  std::vector<CropRect> crops;
  std::vector<float> host_probs, host_logits;
  std::vector<int32_t> host_labels;

  auto emit_ready = [&] {
    for (auto it = ready.find(next_emit); it != ready.end(); it = ready.find(next_emit)) {
      VideoResult& r = it->second;
      r.ok() ? ++stats.videos_ok : ++stats.videos_failed;
      on_video(r);
      ready.erase(it);
      ++next_emit;
    }
  };

  // Waits for the results of every finishing video and hands them on in input order.
  auto collect = [&] {
    for (Finishing& f : finishing) {
      f.landed->wait();
      const auto* w = static_cast<const int32_t*>(host_winners.data()) + f.row;
      const auto* c = static_cast<const int32_t*>(host_counts.data()) + size_t(f.row) * classes;
      const auto* s = static_cast<const double*>(host_sums.data()) + size_t(f.row) * classes;
      for (size_t i = 0; i < f.videos.size(); ++i) {
        auto& [video, o] = f.videos[i];
        VideoResult r;
        r.path = inputs[video].path;
        r.vote = options_.vote;
        r.frames = o.frames;
        r.error = o.error;
        r.warning = o.warning;
        r.crop = o.first_crop;
        if (r.ok()) {
          r.label = w[i];
          for (int j = 0; j < classes; ++j) {
            r.counts.push_back(c[i * classes + j]);
            r.mean_probs.push_back(s[i * classes + j] / double(o.frames));
          }
          r.frame_rows = std::move(o.rows);
        } else {
          r.frames = 0;
        }
        ready[video] = std::move(r);
      }
    }
    finishing.clear();
    rows_used = 0;
    emit_ready();
  };

  // Finalizes the videos' votes on the vote lane (which clears their slots there, so the slots
  // are free for the next videos at once) and copies the results back behind a fence; collect()
  // reads them once the device got there, normally after the next batch has been queued, so that
  // the host never waits for the batch it just queued.
  auto finalize = [&](const std::vector<int>& videos) {
    if (videos.empty()) return;
    const int n = int(videos.size());
    if (rows_used + n > slots) collect();
    std::vector<int> slot_list;
    for (int v : videos) slot_list.push_back(open[v].slot);
    Tensor winners = winners_all.slice(rows_used, n),
           out_counts = out_counts_all.slice(rows_used, n),
           out_sums = out_sums_all.slice(rows_used, n);
    be.vote_finalize(counts, sums, slot_list, options_.vote, winners, out_counts, out_sums);
    be.copy_to_host_async(static_cast<int32_t*>(host_winners.data()) + rows_used, winners);
    be.copy_to_host_async(static_cast<int32_t*>(host_counts.data()) + size_t(rows_used) * classes,
                          out_counts);
    be.copy_to_host_async(static_cast<double*>(host_sums.data()) + size_t(rows_used) * classes,
                          out_sums);
    Finishing f;
    f.row = rows_used;
    f.landed = be.make_fence();
    f.landed->record();
    rows_used += n;
    for (int v : videos) {
      auto it = open.find(v);
      free_slots.push_back(it->second.slot);
      f.videos.emplace_back(v, std::move(it->second));
      open.erase(it);
    }
    finishing.push_back(std::move(f));
  };

  auto open_video = [&](int v) -> Open& {
    auto it = open.find(v);
    if (it != open.end()) return it->second;
    if (free_slots.empty()) fail("internal error: no free vote slot");
    Open& o = open[v];
    o.slot = free_slots.back();
    free_slots.pop_back();
    return o;
  };

  // Stage times: a stamp before and after each stage of a batch (on the stage's lane), read
  // back every kStageReadBatches batches and at the end.
  std::unique_ptr<Timeline> timeline;
  if (options_.stage_times) timeline = be.make_timeline();
  int timed_batches = 0;
  auto mark = [&] {
    if (timeline) timeline->mark();
  };
  auto read_stage_times = [&] {
    if (!timeline || timed_batches == 0) return;
    const std::vector<double> ms = timeline->take_ms();
    // Per batch: preprocess, frame stage, vote, each followed by a gap (not counted).
    for (size_t i = 0; i + 4 < ms.size(); i += 6) {
      stats.preprocess_s += ms[i] / 1e3;
      stats.frame_stage_s += ms[i + 2] / 1e3;
      stats.vote_s += ms[i + 4] / 1e3;
    }
    timed_batches = 0;
  };

  // The stages on lanes of their own (a backend with lanes, and stage_streams): batch k is
  // preprocessed into input slot k % 2 once the frame stage that last read that slot is done;
  // its frame stage waits for that preprocess and for the last vote (which read the
  // probabilities the frame stage overwrites); its vote waits for its frame stage. Finalizing
  // and the copies back stay on the vote lane. Without lanes every stage runs in order.
  const bool lanes = options_.stage_streams && be.has_lanes();
  struct LaneGuard {
    Backend& be;
    ~LaneGuard() { be.use_lane(Lane::Network); }
  } lane_guard{be};
  std::unique_ptr<Fence> preprocessed = be.make_fence(), voted = be.make_fence();
  std::unique_ptr<Fence> slot_read[Model::kInputSlots];
  for (auto& f : slot_read) f = be.make_fence();
  int64_t batches = 0;
  auto use_lane = [&](Lane l) {
    if (lanes) be.use_lane(l);
  };
  auto record = [&](Fence& f) {
    if (lanes) f.record();
  };
  auto wait_for = [&](const Fence& f) {
    if (lanes) be.wait_for(f);
  };
  use_lane(Lane::Vote);

  auto run_batch = [&] {
    if (frames.empty()) return;
    const int n = int(frames.size());
    const int slot = lanes ? int(batches % Model::kInputSlots) : 0;
    ++batches;
    use_lane(Lane::Frames);
    wait_for(*slot_read[slot]);
    mark();
    model_.preprocess(std::span<const Frame>(frames), crops, slot);
    mark();
    record(*preprocessed);
    use_lane(Lane::Network);
    wait_for(*preprocessed);
    wait_for(*voted);
    mark();
    model_.forward_preprocessed(n, {}, slot);
    mark();
    record(*slot_read[slot]);
    use_lane(Lane::Vote);
    wait_for(*slot_read[slot]);
    std::vector<Segment> segments;
    for (int i = 0; i < n; ++i) {
      if (i > 0 && owner[i] == owner[i - 1]) {
        ++segments.back().count;
      } else {
        segments.push_back({i, 1, open[owner[i]].slot});
      }
    }
    mark();
    be.vote_accumulate(model_.probs().slice(0, n), model_.labels().slice(0, n), segments, counts,
                       sums);
    mark();
    record(*voted);
    if (timeline && ++timed_batches == kStageReadBatches) read_stage_times();
    if (options_.keep_frames) {
      host_probs.resize(size_t(n) * classes);
      host_labels.resize(n);
      be.copy_to_host(host_probs.data(), model_.probs().slice(0, n));
      be.copy_to_host(host_labels.data(), model_.labels().slice(0, n));
      if (options_.keep_logits) {
        host_logits.resize(size_t(n) * classes);
        be.copy_to_host(host_logits.data(), model_.logits().slice(0, n));
      }
      for (int i = 0; i < n; ++i) {
        FrameResult fr;
        fr.frame_index = frames[i].index;
        fr.label = host_labels[i];
        fr.probs.assign(host_probs.begin() + i * classes, host_probs.begin() + (i + 1) * classes);
        if (options_.keep_logits)
          fr.logits.assign(host_logits.begin() + i * classes,
                           host_logits.begin() + (i + 1) * classes);
        open[owner[i]].rows.push_back(std::move(fr));
      }
    }
    std::vector<int> done;
    for (int i = 0; i < n; ++i) {
      Open& o = open[owner[i]];
      ++o.frames;
      if (--o.pending == 0 && o.ended) done.push_back(owner[i]);
    }
    stats.frames += n;
    frames.clear();
    owner.clear();
    crops.clear();
    collect();  // the videos finished before this batch, while its work runs on the device
    finalize(done);
  };

  DecodeStage stage(inputs, options_, be, threads);
  Queue& q = stage.queue();
  try {
    Msg m;
    while (q.pop(m)) {
      if (auto* fm = std::get_if<FrameMsg>(&m)) {
        Open& o = open_video(fm->video);
        if (!o.error.empty()) continue;
        if (fm->frame.width != o.crop_w || fm->frame.height != o.crop_h) {
          try {
            if (!o.fixed) {
              o.crop = options_.crop.rect_for(fm->frame.width, fm->frame.height);
            } else if (o.crop.x + o.crop.width > fm->frame.width ||
                       o.crop.y + o.crop.height > fm->frame.height) {
              fail("crop box " + box_text(o.crop) + " lies outside the " +
                   std::to_string(fm->frame.width) + "x" + std::to_string(fm->frame.height) +
                   " frame");
            }
            o.crop_w = fm->frame.width;
            o.crop_h = fm->frame.height;
          } catch (const Error& e) {
            o.error = inputs[fm->video].path + ": " + e.what();
            continue;
          }
        }
        if (o.frames + o.pending == 0) o.first_crop = o.crop;
        ++o.pending;
        crops.push_back(o.crop);
        owner.push_back(fm->video);
        frames.push_back(std::move(fm->frame));
        if (int(frames.size()) == batch) run_batch();
      } else if (auto* sm = std::get_if<StartMsg>(&m)) {
        Open& o = open_video(sm->video);
        o.crop = sm->crop;
        o.fixed = true;
        o.warning = sm->warning;
      } else {
        auto& em = std::get<EndMsg>(m);
        Open& o = open_video(em.video);
        o.ended = true;
        if (!em.warning.empty()) o.warning += (o.warning.empty() ? "" : "; ") + em.warning;
        if (o.error.empty()) o.error = em.error;
        if (o.error.empty() && o.frames + o.pending == 0)
          o.error = inputs[em.video].path + ": no frames";
        if (o.pending == 0) finalize({em.video});
      }
    }
    run_batch();
    collect();
    read_stage_times();
  } catch (...) {
    stage.stop();
    throw;
  }
  stage.finish(stats);
  stats.staged = bool(timeline);
  stats.seconds = seconds_since(t0);
  stats.model_starved_s = q.pop_wait_s;
  stats.model_s = stats.seconds - q.pop_wait_s;
  return stats;
}

RunStats Classifier::decode_only(const std::vector<InputItem>& inputs) {
  const auto t0 = Clock::now();
  DecodeStage stage(inputs, options_, model_.backend(), decode_threads());
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
