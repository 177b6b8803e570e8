#include "fervid/pipeline.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
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
  std::string error;
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

void decode_all(const std::vector<InputItem>& inputs, const SamplingOptions& sampling,
                const CropSpec& crop, FaceFinder* faces, Queue& q, double& busy_s) {
  // Busy = everything but waiting on the queue.
  const auto t0 = Clock::now();
  struct Tally {
    Clock::time_point t0;
    Queue& q;
    double& busy;
    ~Tally() { busy = seconds_since(t0) - q.push_wait_s; }
  } tally{t0, q, busy_s};
  for (int v = 0; v < int(inputs.size()); ++v) {
    std::string error;
    try {
      auto source = open_frames(inputs[v], sampling);
      Frame f;
      std::vector<Frame> head;
      if (crop.mode == CropSpec::Mode::Face) {
        // The first frames are held back until their face box is known.
        while (int(head.size()) < CropSpec::kFaceProbeFrames && source->next(f))
          head.push_back(std::move(f));
        if (!head.empty()) {
          std::vector<ImageView> probe;
          for (size_t i = 0; i < head.size(); i += CropSpec::kFaceProbeStep)
            probe.push_back(head[i].view());
          StartMsg start{v, {}, ""};
          if (auto box = faces->video_box(probe, crop.margin)) {
            start.crop = *box;
          } else {
            start.crop = square_inside(head[0].width / 2.0, head[0].height / 2.0,
                                       std::min(head[0].width, head[0].height), head[0].width,
                                       head[0].height);
            start.warning =
                "no face found in " + std::to_string(probe.size()) + " frames; centre crop used";
          }
          if (!q.push(std::move(start))) return;
        }
      } else if (crop.mode == CropSpec::Mode::Boxes) {
        auto it = crop.boxes->find(canonical_path(inputs[v].path));
        if (it == crop.boxes->end())
          fail(inputs[v].path + ": no crop box for this video in " + crop.boxes_file);
        if (!q.push(StartMsg{v, it->second, ""})) return;
      }
      for (Frame& h : head)
        if (!q.push(FrameMsg{v, std::move(h)})) return;
      while (source->next(f))
        if (!q.push(FrameMsg{v, std::move(f)})) return;
    } catch (const std::exception& e) {
      error = e.what();
    }
    if (!q.push(EndMsg{v, error})) return;
  }
  q.close();
}

}  // namespace

Classifier::Classifier(Model& model, ClassifyOptions options) : model_(model), options_(options) {
  if (options_.batch < 1 || options_.batch > model.max_batch())
    fail("batch size " + std::to_string(options_.batch) + " outside 1.." +
         std::to_string(model.max_batch()));
}

RunStats Classifier::run(const std::vector<InputItem>& inputs,
                         const std::function<void(const VideoResult&)>& on_video) {
  Backend& be = model_.backend();
  const int classes = model_.spec().num_classes();
  const int batch = options_.batch;
  // At most `batch` videos have frames in the batch being filled, plus the one still decoding.
  const int slots = batch + 2;
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
  // Finalize results for up to `slots` videos at once, planned once per run.
  Buffer winners_buf = be.allocate(size_t(slots) * 4);
  Buffer out_counts_buf = be.allocate(size_t(slots) * classes * 4);
  Buffer out_sums_buf = be.allocate(size_t(slots) * classes * 8);
  Tensor winners_all = Tensor::view(winners_buf, {slots}, DType::I32);
  Tensor out_counts_all = Tensor::view(out_counts_buf, {slots, classes}, DType::I32);
  Tensor out_sums_all = Tensor::view(out_sums_buf, {slots, classes}, DType::F64);
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
  std::map<int, VideoResult> ready;
  int next_emit = 0;
  RunStats stats;
  const auto t0 = std::chrono::steady_clock::now();

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

  auto finalize = [&](const std::vector<int>& videos) {
    if (videos.empty()) return;
    std::vector<int> slot_list;
    for (int v : videos) slot_list.push_back(open[v].slot);
    const int n = int(videos.size());
    // Views of the first n rows of the per-run result buffer (no allocation per video).
    Tensor winners = winners_all.slice(0, n), out_counts = out_counts_all.slice(0, n),
           out_sums = out_sums_all.slice(0, n);
    be.vote_finalize(counts, sums, slot_list, options_.vote, winners, out_counts, out_sums);
    std::vector<int32_t> w(n), c(size_t(n) * classes);
    std::vector<double> s(size_t(n) * classes);
    be.copy_to_host(w.data(), winners);
    be.copy_to_host(c.data(), out_counts);
    be.copy_to_host(s.data(), out_sums);
    for (int i = 0; i < n; ++i) {
      Open& o = open[videos[i]];
      VideoResult r;
      r.path = inputs[videos[i]].path;
      r.vote = options_.vote;
      r.frames = o.frames;
      r.error = o.error;
      r.warning = o.warning;
      r.crop = o.first_crop;
      if (r.ok()) {
        r.label = w[i];
        for (int j = 0; j < classes; ++j) {
          r.counts.push_back(c[size_t(i) * classes + j]);
          r.mean_probs.push_back(s[size_t(i) * classes + j] / double(o.frames));
        }
        r.frame_rows = std::move(o.rows);
      } else {
        r.frames = 0;
      }
      free_slots.push_back(o.slot);
      ready[videos[i]] = std::move(r);
      open.erase(videos[i]);
    }
    emit_ready();
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

  auto run_batch = [&] {
    if (frames.empty()) return;
    const int n = int(frames.size());
    model_.forward(std::span<const Frame>(frames), crops);
    std::vector<Segment> segments;
    for (int i = 0; i < n; ++i) {
      if (i > 0 && owner[i] == owner[i - 1]) {
        ++segments.back().count;
      } else {
        segments.push_back({i, 1, open[owner[i]].slot});
      }
    }
    be.vote_accumulate(model_.probs().slice(0, n), model_.labels().slice(0, n), segments, counts,
                       sums);
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
    finalize(done);
  };

  Queue q(size_t(options_.queue_frames > 0 ? options_.queue_frames : 2 * batch));
  std::unique_ptr<FaceFinder> faces;
  if (options_.crop.mode == CropSpec::Mode::Face) faces = std::make_unique<FaceFinder>();
  SamplingOptions sampling = options_.sampling;
  // On the GPU, 4:2:0 video goes up as YUV and is converted there (half the bytes, no swscale on
  // the CPU); the CPU backend keeps swscale's RGB, the reference path, unless asked. The face
  // detector reads RGB frames.
  if (be.device() == Device::Cuda) sampling.keep_yuv = true;
  if (options_.crop.mode == CropSpec::Mode::Face) sampling.keep_yuv = false;
  double decode_busy_s = 0;
  std::thread decoder(
      [&] { decode_all(inputs, sampling, options_.crop, faces.get(), q, decode_busy_s); });
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
        if (o.error.empty()) o.error = em.error;
        if (o.error.empty() && o.frames + o.pending == 0)
          o.error = inputs[em.video].path + ": no frames";
        if (o.pending == 0) finalize({em.video});
      }
    }
    run_batch();
  } catch (...) {
    q.close();
    decoder.join();
    throw;
  }
  decoder.join();
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  stats.decode_s = decode_busy_s;
  stats.decode_blocked_s = q.push_wait_s;
  stats.model_starved_s = q.pop_wait_s;
  stats.model_s = stats.seconds - q.pop_wait_s;
  return stats;
}

}  // namespace fervid
