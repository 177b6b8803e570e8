#include "decode_stage.h"

#include "fervid/error.h"

namespace fervid {

namespace {

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

// What one decode thread sends for a video: its start when the crop comes with the video (haar,
// boxes=FILE), its frames, its end. With --crop haar the first frames are held back until their
// face box is known; with --crop face each frame goes with the crop of its largest face.
class VideoSender {
 public:
  VideoSender(const std::vector<InputItem>& inputs, const CropSpec& crop, const InputBoxes& boxes,
              FaceTools* faces, Queue& q)
      : inputs_(inputs), crop_(crop), boxes_(boxes), faces_(faces), q_(q) {}

  // False once the queue is closed (the run stops).
  bool frame(int v, Frame f) {
    if (!begin(v)) return false;
    if (!error_.empty()) return true;
    if (holding_) {
      head_.push_back(std::move(f));
      return int(head_.size()) < CropSpec::kFaceProbeFrames || release_head();
    }
    if (crop_.mode == CropSpec::Mode::Face) return followed(v, std::move(f));
    return q_.push(FrameMsg{v, std::move(f)});
  }

  bool end(int v, std::string error, std::string warning, const SourceStats& stats) {
    if (!begin(v)) return false;
    if (holding_ && !release_head()) return false;
    if (error.empty()) error = error_;
    if (no_face_ > 0)
      warning += (warning.empty() ? "" : "; ") + std::string("no face on ") +
                 std::to_string(no_face_) + " of " + std::to_string(followed_) +
                 " frames; the centre crop used there";
    video_ = -1;
    return q_.push(EndMsg{v, error, warning, stats});
  }

 private:
  bool begin(int v) {
    if (v == video_) return true;
    video_ = v;
    error_.clear();
    head_.clear();
    no_face_ = followed_ = 0;
    if (crop_.mode == CropSpec::Mode::Face) faces_->follower->restart();
    holding_ = crop_.mode == CropSpec::Mode::Haar;
    if (crop_.mode != CropSpec::Mode::Boxes) return true;
    if (!boxes_[v]) {
      error_ = inputs_[v].path + ": no crop box for this video in " + crop_.boxes_file;
      return true;
    }
    return q_.push(StartMsg{v, *boxes_[v], ""});
  }

  // --crop face: the frame's faces tracked, the largest one's square as its crop.
  bool followed(int v, Frame f) {
    const std::vector<FaceRow> rows = faces_->follower->next(f.view(), f.index, f.time_s);
    const std::optional<FaceCrop> face = largest_face_crop(rows, crop_.margin, f.width, f.height);
    ++followed_;
    if (!face) ++no_face_;
    const CropRect crop = face ? face->rect : centre_square(f.width, f.height);
    return q_.push(FrameMsg{v, std::move(f), crop, face ? face->track : 0});
  }

  bool release_head() {
    holding_ = false;
    if (head_.empty()) return true;
    std::vector<ImageView> probe;
    for (size_t i = 0; i < head_.size(); i += CropSpec::kFaceProbeStep)
      probe.push_back(head_[i].view());
    StartMsg start{video_, {}, ""};
    if (auto box = faces_->haar->video_box(probe, crop_.margin)) {
      start.crop = *box;
    } else {
      const Frame& f = head_[0];
      start.crop = centre_square(f.width, f.height);
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
  FaceTools* faces_;
  Queue& q_;
  int video_ = -1;
  int64_t no_face_ = 0, followed_ = 0;  // --crop face: this video's frames without a face, all
  bool holding_ = false;
  std::string error_;
  std::vector<Frame> head_;
};

// One decode thread: takes the next input by number until none is left. Videos go clip after
// clip through the thread's long-lived ClipDecoder; images and image folders are read directly.
void decode_inputs(const std::vector<InputItem>& inputs, std::atomic<int>& next_input,
                   const SamplingOptions& sampling, const DecodeOptions& decode,
                   const CropSpec& crop, const InputBoxes& boxes, FaceTools* faces, Queue& q) {
  VideoSender send(inputs, crop, boxes, faces, q);
  std::unique_ptr<ClipDecoder> clips = ClipDecoder::create(sampling, decode);
  auto pump = [&] {
    ClipEvent ev;
    while (clips->next(ev)) {
      const bool open = ev.end ? send.end(ev.clip, std::move(ev.error), ev.warning, ev.stats)
                               : send.frame(ev.clip, std::move(ev.frame));
      if (!open) return false;
    }
    return true;
  };
  for (int v = next_input++; v < int(inputs.size()); v = next_input++) {
    if (inputs[v].kind == InputKind::Video) {
      if (crop.mode == CropSpec::Mode::Boxes && !boxes[v]) {
        if (!send.end(v, "", "", {})) return;  // its error row, without decoding it
        continue;
      }
      clips->add(v, inputs[v].path);
      if (!pump()) return;
      continue;
    }
    clips->flush();
    if (!pump()) return;
    std::string error, warning;
    SourceStats stats;
    try {
      auto source = open_frames(inputs[v], sampling);
      Frame f;
      while (source->next(f))
        if (!send.frame(v, std::move(f))) return;
      stats = source->stats();
      warning = source->warning();
    } catch (const std::exception& e) {
      error = e.what();
    }
    if (!send.end(v, error, warning, stats)) return;
  }
  clips->flush();
  pump();
}

// The decode threads of a run and the queue they fill, with the NVDEC frame pool when NVDEC
// decodes. A thread that fails outside any one video (out of memory, a device error) stops the
// run: its video would never end; finish() rethrows its error.

}  // namespace

int DecodeStage::queue_frames(const ClassifyOptions& o) {
  return o.queue_frames > 0 ? o.queue_frames : 2 * o.batch;
}

DecodeStage::DecodeStage(const std::vector<InputItem>& inputs, const ClassifyOptions& options,
                         DecoderKind decoder, Backend& be, int threads)
    : queue_(size_t(queue_frames(options))),
      boxes_(boxes_of(inputs, options.crop)),
      thread_s_(threads, 0.0),
      running_(threads) {
  DecodeOptions decode;
  decode.kind = decoder;
  if (decode.kind == DecoderKind::Nvdec) {
    FrameSinks* sinks = be.frame_sinks();
    if (!sinks)
      fail_option("{{decoder}} nvdec: the " + be.name() + " backend cannot read device frames");
    // Frames in the queue, in the batch and in each decode thread's hands.
    sink_ = sinks->make_frame_sink(queue_frames(options) + options.batch + 2 * threads + 2);
    decode.sink = sink_.get();
  }
  // A detector per thread: one is not meant to be called from several threads at once.
  if (options.crop.mode == CropSpec::Mode::Face) detector_ = load_crop_detector(options.crop);
  FacesOptions follow;
  follow.sampling = options.sampling;
  for (int t = 0; options.crop.finds_faces() && t < threads; ++t) {
    FaceTools tools;
    if (options.crop.mode == CropSpec::Mode::Haar) tools.haar = std::make_unique<FaceFinder>();
    if (detector_) tools.follower = std::make_unique<FaceFollower>(*detector_, follow);
    faces_.push_back(std::move(tools));
  }
  SamplingOptions sampling = options.sampling;
  // A backend that converts 4:2:0 video itself (the GPU) gets it as YUV (half the bytes, no
  // swscale on the CPU); the CPU backend keeps swscale's RGB, the reference path, unless asked.
  // The face detector reads RGB frames.
  if (be.prefers_yuv_frames()) sampling.keep_yuv = true;
  if (options.crop.finds_faces()) sampling.keep_yuv = false;
  for (int t = 0; t < threads; ++t)
    threads_.emplace_back([this, t, &inputs, sampling, decode, &crop = options.crop] {
      const auto t0 = Clock::now();
      try {
        decode_inputs(inputs, next_input_, sampling, decode, crop, boxes_,
                      faces_.empty() ? nullptr : &faces_[t], queue_);
      } catch (...) {
        std::lock_guard lock(failure_mu_);
        if (!failure_) failure_ = std::current_exception();
        queue_.close();
      }
      thread_s_[t] = seconds_since(t0);
      if (--running_ == 0) queue_.close();  // the last one to finish
    });
}

DecodeStage::~DecodeStage() { stop(); }

void DecodeStage::stop() {
  queue_.close();
  for (std::thread& t : threads_)
    if (t.joinable()) t.join();
}

void DecodeStage::finish(RunStats& stats) {
  stop();
  if (failure_) std::rethrow_exception(failure_);
  const int threads = int(thread_s_.size());
  double wall_s = 0;
  for (double t : thread_s_) wall_s += t;
  stats.decode_threads = threads;
  stats.decode_s = (wall_s - queue_.push_wait_s) / threads;
  stats.decode_blocked_s = queue_.push_wait_s / threads;
}

}  // namespace fervid
