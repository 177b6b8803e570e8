// FaceTracking (fervid/faces.h): a video's sampled frames, letterboxed, through the detector in
// batches on the CPU backend, each frame's detections (in frame pixels) through the tracker.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>

#include "backend_factory.h"
#include "backends/cpu/cpu_backend.h"
#include "backends/cuda/cuda_probe.h"
#include "face_detector.h"
#include "face_follower.h"
#include "face_tracker.h"
#include "fervid/crop.h"
#include "fervid/error.h"
#include "fervid/faces.h"
#include "fervid/fervid.h"
#include "video.h"
#include "video_decode.h"

namespace fervid {

Letterbox Letterbox::of(int width, int height, int size) {
  Letterbox l;
  l.scale = float(size) / float(std::max(width, height));
  l.pad_x = (float(size) - float(width) * l.scale) / 2;
  l.pad_y = (float(size) - float(height) * l.scale) / 2;
  return l;
}

namespace {

// How much of source pixel i each output pixel covers along one axis: output pixel o spans
// [(o - pad) / scale, (o + 1 - pad) / scale) in source pixels.
struct Taps {
  std::vector<int> first, count;
  std::vector<float> weight;  // count[o] weights from offset[o]
  std::vector<size_t> offset;
};

Taps area_taps(int src, int out, float scale, float pad) {
  Taps t;
  for (int o = 0; o < out; ++o) {
    const double a = std::max(0.0, (o - pad) / double(scale));
    const double b = std::min(double(src), (o + 1 - pad) / double(scale));
    t.offset.push_back(t.weight.size());
    t.first.push_back(int(std::floor(a)));
    int n = 0;
    for (int i = int(std::floor(a)); b > a && i < src && i < b; ++i, ++n)
      t.weight.push_back(float(std::min(b, i + 1.0) - std::max(a, double(i))));
    t.count.push_back(n);
  }
  return t;
}

}  // namespace

void letterbox_frame(const ImageView& frame, int size, float* out) {
  const Letterbox l = Letterbox::of(frame.width, frame.height, size);
  const Taps cols = area_taps(frame.width, size, l.scale, l.pad_x);
  const Taps rows = area_taps(frame.height, size, l.scale, l.pad_y);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      float* px = out + (size_t(y) * size + x) * 3;
      double sum[3] = {0, 0, 0}, total = 0;
      for (int r = 0; r < rows.count[y]; ++r) {
        const float wr = rows.weight[rows.offset[y] + r];
        const uint8_t* line = frame.data + size_t(rows.first[y] + r) * frame.stride;
        for (int c = 0; c < cols.count[x]; ++c) {
          const float w = wr * cols.weight[cols.offset[x] + c];
          const uint8_t* p = line + size_t(cols.first[x] + c) * 3;
          for (int k = 0; k < 3; ++k) sum[k] += w * p[k];
          total += w;
        }
      }
      for (int k = 0; k < 3; ++k) px[k] = total > 0 ? float(sum[k] / total / 127.5 - 1.0) : -1.0f;
    }
}

namespace {

// The backend path's frames (FacesOptions::FramePath::Backend): a batch's YUV 4:2:0 frames, each
// uploaded once into the detector backend's memory (a frame already on the device, NVDEC's, is
// read where it is), as the views the backends' face ops read. The buffer is reused for the next
// batch: every read of it has been waited for by then (the detections and scores copied back).
class BackendFrames {
 public:
  explicit BackendFrames(Backend& backend) : backend_(backend) {}
  std::vector<YuvView> upload(std::span<const Frame> frames) {
    size_t bytes = 0;
    for (const Frame& f : frames)
      if (!f.on_device()) bytes += f.yuv.size();
    if (buffer_.bytes() < bytes) {
      backend_.synchronize();
      buffer_ = Buffer();
      buffer_ = backend_.allocate(bytes);
    }
    std::vector<YuvView> views;
    size_t at = 0;
    for (const Frame& f : frames) {
      YuvView v = f.yuv_view();
      if (!f.on_device()) {
        auto* base = static_cast<uint8_t*>(buffer_.data()) + at;
        const Tensor dst(base, {int64_t(f.yuv.size())}, DType::U8);
        backend_.copy_from_host(dst, f.yuv.data());
        v.y = base + (v.y - f.yuv.data());
        v.u = base + (v.u - f.yuv.data());
        v.v = base + (v.v - f.yuv.data());
        v.on_device = true;
        at += f.yuv.size();
      }
      views.push_back(v);
    }
    return views;
  }

 private:
  Backend& backend_;
  Buffer buffer_;
};

}  // namespace

struct FaceTracking::Impl {
  FacesOptions options;
  DetectorWeights weights;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<DetectorNet> net;
  std::vector<float> letterboxed;  // the batch's inputs on the host, then copied to the net's
  std::unique_ptr<BackendFrames> frames;  // the backend path's upload of each batch
  std::shared_ptr<DeviceFrameSink>
      sink;  // NVDEC's frames on the backend path, made when first used

  // The frames of `input`: NVDEC's in the backend's memory where the backend path can take
  // them (FacesOptions::decoder), else libavcodec's (YUV 4:2:0 kept on the backend path).
  std::unique_ptr<FrameSource> open(const InputItem& input, bool on_backend) {
    SamplingOptions sampling = options.sampling;
    sampling.keep_yuv = on_backend;
    FrameSinks* sinks = backend->frame_sinks();
    if (!on_backend || input.kind != InputKind::Video || !sinks ||
        choose_decoder(options.decoder, true, false, nullptr) != DecoderKind::Nvdec) {
      if (options.decoder == DecoderChoice::Nvdec && !(on_backend && sinks))
        fail_option("{{decoder}} nvdec: the faces' frames are cut on the host here");
      return open_frames(input, sampling);
    }
    // The frames a run holds at once: a batch, the one held for the next, the decoder's own.
    if (!sink) sink = sinks->make_frame_sink(options.batch + 4);
    DecodeOptions nvdec;
    nvdec.kind = DecoderKind::Nvdec;
    nvdec.sink = sink.get();
    return open_video(input.path, sampling, nvdec);
  }
};

namespace {

// The detector's backend: the CPU's (one thread is set around each run), or the GPU's in fp32
// where `device` asks for it and one is there (Auto falls back to the CPU without a word: the
// classifier's backend says why when it matters).
std::unique_ptr<Backend> detector_backend_for(DeviceChoice device) {
  std::string why;
  if (device == DeviceChoice::Cuda ||
      (device == DeviceChoice::Auto && cuda_device_available(&why))) {
    BackendOptions b;
    b.device = DeviceChoice::Cuda;
    b.precision = Precision::Fp32;
    b.cuda_graphs = false;
    return make_backend(b, nullptr);
  }
  return cpu::make_cpu_backend(0, ConvImpl::Auto, Precision::Fp32);
}

}  // namespace

FaceTracking::FaceTracking(const std::string& detector, const FacesOptions& options)
    : impl_(std::make_unique<Impl>()) {
  if (options.batch < 1) fail_option("faces: the batch must be at least 1");
  impl_->options = options;
  CropSpec crop;
  crop.detector = detector;
  impl_->weights = load_crop_detector(crop, "faces");
  impl_->backend = detector_backend_for(options.detector_device);
  impl_->net = std::make_unique<DetectorNet>(impl_->weights, *impl_->backend, options.batch);
}

FaceTracking::~FaceTracking() = default;

std::string FaceTracking::detector_backend() const { return impl_->backend->name(); }

namespace {

// One frame's detections in its pixels, for the tracker and for the rows' key points.
struct FrameDetections {
  std::vector<TrackInput> boxes;
  std::vector<std::vector<float>> keypoints;
};

FrameDetections in_frame(const std::vector<Detection>& dets, const Letterbox& l, int size) {
  FrameDetections f;
  for (const Detection& d : dets) {
    const float x0 = l.frame_x(d.xmin * size), y0 = l.frame_y(d.ymin * size);
    const float w = d.width * size / l.scale, h = d.height * size / l.scale;
    f.boxes.push_back({{x0 + w / 2, y0 + h / 2, w, h}, d.score});
    std::vector<float> kp;
    for (size_t k = 0; k + 1 < d.keypoints.size(); k += 2) {
      kp.push_back(l.frame_x(d.keypoints[k] * size));
      kp.push_back(l.frame_y(d.keypoints[k + 1] * size));
    }
    f.keypoints.push_back(std::move(kp));
  }
  return f;
}

void add_rows(int64_t frame_index, double time_s, const FrameDetections& dets,
              const std::vector<TrackedFace>& faces, VideoFaces& out) {
  FaceRow none;
  none.frame_index = frame_index;
  none.time_s = time_s;
  if (faces.empty()) out.rows.push_back(none);
  for (const TrackedFace& t : faces) {
    FaceRow r = none;
    r.track = t.track;
    r.x = t.box.cx - t.box.w / 2;
    r.y = t.box.cy - t.box.h / 2;
    r.w = t.box.w;
    r.h = t.box.h;
    r.score = t.score;
    if (t.detection >= 0) r.keypoints = dets.keypoints[size_t(t.detection)];
    out.rows.push_back(std::move(r));
    out.tracks = std::max(out.tracks, t.track);
  }
}

// The eye line's slope from a detection's key points (right eye, then left eye: the subject's,
// so the right eye is the one on the picture's left).
float eye_angle(const std::vector<float>& kp) {
  return kp.size() >= 4 ? float(std::atan2(kp[3] - kp[1], kp[2] - kp[0])) : 0.0f;
}

// The second look at a turned face: BlazeFace's eye points follow a turned head only part of the
// way (a 30 degree turn reads as about 20), so the face is cut out turned by the first reading
// (aligned_face, the face half of the square) and detected again; the eye line found there is
// what the first reading left, and the two add up. Only where the first reading is at least
// kSecondLookFrom: a nearly level face reads right the first time. The net's first input slot is
// used (after the frame's own detection).
constexpr float kSecondLookFrom = 0.08f;  // radians, about 4.6 degrees

// The second reading of a face cut out turned by `angle`: the face is the one at the square's
// centre (the best-scoring detection holding it); `angle` where none does.
float looked_again(float angle, const std::vector<Detection>& found) {
  for (const Detection& d : found)
    if (d.xmin < 0.5f && d.ymin < 0.5f && d.xmin + d.width > 0.5f && d.ymin + d.height > 0.5f)
      return angle + eye_angle(d.keypoints);
  return angle;
}

float second_look(const ImageView& frame, const FaceRow& r, float angle, DetectorNet& net,
                  float keep_score) {
  if (std::fabs(angle) < kSecondLookFrom) return angle;
  const int size = net.card().input_size;
  FaceRow turned = r;
  turned.angle = angle;
  std::vector<uint8_t> crop(size_t(size) * size * 3);
  aligned_face(frame, turned, 0.5, size, crop.data());
  std::vector<float> input(crop.size());
  // As the backend's ops normalise (DetectorNet::load_squares): bytes * (1 / 127.5) - 1.
  for (size_t i = 0; i < crop.size(); ++i) input[i] = float(crop[i]) * (1.0f / 127.5f) - 1.0f;
  net.load_input(1, input.data());
  return looked_again(angle, net.detect(1, keep_score).front());
}

// Each track's eye-line angle: from its detection's key points in `frame` (with a second look by
// `net` where the face is turned), the last one kept while the track coasts without a detection.
class EyeAngles {
 public:
  void set(FaceRow& r, const ImageView& frame, DetectorNet& net, float keep_score) {
    if (r.track == 0) return;
    std::optional<float> reading;
    if (!r.keypoints.empty())
      reading = second_look(frame, r, eye_angle(r.keypoints), net, keep_score);
    keep(r, reading);
  }
  // Sets r.angle: `reading` where the face was detected, else the track's last one.
  void keep(FaceRow& r, std::optional<float> reading) {
    if (r.track == 0) return;
    if (reading) last_[r.track] = *reading;
    r.angle = last_[r.track];
  }

 private:
  std::map<int, float> last_;
};

// The second looks of rows [first, rows.size()) (the faces of views[frame]) on the detector's
// backend: the turned faces' squares cut there, detected in batches, then each row's angle set.
void second_looks_on_backend(std::span<const YuvView> views, const ColorSpec& cs, int frame,
                             std::vector<FaceRow>& rows, size_t first, DetectorNet& net,
                             float keep_score, EyeAngles& angles) {
  std::vector<std::optional<float>> reading(rows.size() - first);
  std::vector<size_t> looked;
  std::vector<FaceSquare> squares;
  for (size_t i = first; i < rows.size(); ++i) {
    const FaceRow& r = rows[i];
    if (r.track == 0 || r.keypoints.empty()) continue;
    const float a = eye_angle(r.keypoints);
    reading[i - first] = a;
    if (std::fabs(a) < kSecondLookFrom) continue;
    FaceRow turned = r;
    turned.angle = a;
    squares.push_back(face_square(turned, 0.5, frame));
    looked.push_back(i - first);
  }
  for (size_t at = 0; at < squares.size(); at += size_t(net.max_batch())) {
    const size_t m = std::min(squares.size() - at, size_t(net.max_batch()));
    net.load_squares(views, std::span<const FaceSquare>(squares).subspan(at, m), cs);
    const std::vector<std::vector<Detection>> found = net.detect(int(m), keep_score);
    for (size_t j = 0; j < m; ++j) {
      std::optional<float>& a = reading[looked[at + j]];
      a = looked_again(*a, found[j]);
    }
  }
  for (size_t i = first; i < rows.size(); ++i) angles.keep(rows[i], reading[i - first]);
}

// The rows of one frame's faces (rows [first, rows.size()) of `out`) that the options classify.
std::vector<size_t> chosen_faces(const VideoFaces& out, size_t first, FaceChoice choice) {
  std::vector<size_t> chosen;
  size_t largest = out.rows.size();
  for (size_t i = first; i < out.rows.size(); ++i) {
    const FaceRow& r = out.rows[i];
    if (r.track == 0) continue;
    if (choice == FaceChoice::All) chosen.push_back(i);
    if (largest == out.rows.size() || r.w * r.h > out.rows[largest].w * out.rows[largest].h)
      largest = i;
  }
  if (choice == FaceChoice::Largest && largest < out.rows.size()) chosen.push_back(largest);
  return chosen;
}

// Scores of classified faces into their rows.
void fill_scores(const FrameScores& s, std::span<const size_t> rows, VideoFaces& out) {
  for (size_t i = 0; i < rows.size(); ++i) {
    FaceRow& r = out.rows[rows[i]];
    r.label = s.labels[i];
    r.probs.assign(s.probs.begin() + i * s.classes, s.probs.begin() + (i + 1) * s.classes);
  }
}

// Classifies the faces of a video as they come: each chosen face's aligned crop is kept until a
// batch of the engine's is full, then the batch is classified and its rows filled in.
class FaceClassifying {
 public:
  FaceClassifying(Engine& engine, const FacesOptions& o)
      : engine_(engine), o_(o), size_(engine.face_crop_size()) {}
  // The faces of `frame`, rows [first, rows.size()) of `out` (their angles set): the chosen
  // ones' crops.
  void add(const Frame& frame, size_t first, VideoFaces& out) {
    for (size_t i : chosen_faces(out, first, o_.choice)) take(frame, i, out);
  }
  void flush(VideoFaces& out) {
    if (pending_.empty()) return;
    std::vector<ImageView> views;
    for (size_t i = 0; i < pending_.size(); ++i)
      views.push_back({crops_.data() + i * crop_bytes(), size_, size_, size_ * 3});
    fill_scores(engine_.classify_frames(views, CropSpec{}), pending_, out);
    pending_.clear();
    crops_.clear();
  }

 private:
  size_t crop_bytes() const { return size_t(size_) * size_ * 3; }
  void take(const Frame& frame, size_t row, VideoFaces& out) {
    crops_.resize(crops_.size() + crop_bytes());
    aligned_face(frame.view(), out.rows[row], o_.margin, size_,
                 crops_.data() + crops_.size() - crop_bytes());
    pending_.push_back(row);
    if (int(pending_.size()) >= engine_.max_batch()) flush(out);
  }
  Engine& engine_;
  const FacesOptions& o_;
  int size_ = 0;
  std::vector<size_t> pending_;  // rows whose crops wait in crops_
  std::vector<uint8_t> crops_;
};

// `seconds` in sampled frames at the rate the frames come: from the time between the first and
// the n-th frame (n >= 1), else SamplingOptions::fps over the stride.
int gap_frames(const FacesOptions& o, double seconds, double first_s, double now_s, int64_t n) {
  double rate = o.sampling.fps / std::max(o.sampling.stride, 1);
  if (n >= 1 && now_s > first_s) rate = double(n) / (now_s - first_s);
  return std::max(1, int(std::lround(seconds * rate)));
}

// One video's tracker: each frame's detections (in the letterboxed input's units) into its rows,
// the gaps in frames set from the first two frames' time stamps. A coasting face whose
// predicted centre has left the frame is not reported.
class VideoTracker {
 public:
  explicit VideoTracker(const FacesOptions& o) : o_(o), tracker_(tracker_options(o)) {}
  void add(int64_t index, double time_s, int width, int height, int size,
           const std::vector<Detection>& dets, VideoFaces& out) {
    const FrameDetections fd = in_frame(dets, Letterbox::of(width, height, size), size);
    if (frames_ == 0) first_s_ = time_s;
    if (frames_ == 1)
      tracker_.set_gaps(gap_frames(o_, o_.max_gap_s, first_s_, time_s, 1),
                        gap_frames(o_, o_.report_gap_s, first_s_, time_s, 1));
    ++frames_;
    std::vector<TrackedFace> faces = tracker_.update(fd.boxes);
    std::erase_if(faces, [&](const TrackedFace& f) {
      return f.detection < 0 &&
             (f.box.cx < 0 || f.box.cy < 0 || f.box.cx >= width || f.box.cy >= height);
    });
    add_rows(index, time_s, fd, faces, out);
  }

 private:
  static TrackerOptions tracker_options(const FacesOptions& o) {
    TrackerOptions to;
    to.high = o.min_score;
    to.max_gap = gap_frames(o, o.max_gap_s, 0, 0, 0);
    to.report_gap = gap_frames(o, o.report_gap_s, 0, 0, 0);
    return to;
  }
  const FacesOptions& o_;
  FaceTracker tracker_;
  int64_t frames_ = 0;
  double first_s_ = 0;
};

}  // namespace

namespace {

// Classifies the chosen faces of a batch of frames on the backend path: their squares cut where
// the frames are (Engine::classify_faces), once the batch's faces are all known.
class BackendFaceClassifying {
 public:
  BackendFaceClassifying(Engine& engine, const FacesOptions& o) : engine_(engine), o_(o) {}
  void add(int frame, size_t first, const VideoFaces& out) {
    for (size_t i : chosen_faces(out, first, o_.choice)) {
      squares_.push_back(face_square(out.rows[i], o_.margin, frame));
      rows_.push_back(i);
    }
  }
  void flush(std::span<const YuvView> frames, const ColorSpec& cs, VideoFaces& out) {
    if (rows_.empty()) return;
    fill_scores(engine_.classify_faces(frames, squares_, cs), rows_, out);
    rows_.clear();
    squares_.clear();
  }

 private:
  Engine& engine_;
  const FacesOptions& o_;
  std::vector<size_t> rows_;
  std::vector<FaceSquare> squares_;
};

bool same_colour(const ColorSpec& a, const ColorSpec& b) {
  return a.bt709 == b.bt709 && a.full_range == b.full_range;
}

}  // namespace

bool FaceTracking::frames_on_backend(const Engine* classifier) const {
  using Path = FacesOptions::FramePath;
  const Path path = impl_->options.frame_path;
  if (path == Path::Host) return false;
  const std::string where = impl_->backend->name();
  std::string why;
  if (!impl_->net->reads_yuv_frames())
    why = "the detector's " + where + " backend cuts no frames";
  else if (classifier && !classifier->reads_yuv_faces())
    why = "the classifier's " + classifier->backend_name() + " backend cuts no faces";
  else if (classifier && classifier->backend_name() != where)  // the memory each reads
    why = "the detector runs on " + where + " and the classifier on " + classifier->backend_name();
  if (path == Path::Backend && !why.empty())
    fail_option("faces: frames cannot be cut on the backend: " + why);
  // Auto: where the backend would rather have YUV frames than swscale's RGB (the GPU's).
  return why.empty() && (path == Path::Backend || impl_->backend->prefers_yuv_frames());
}

VideoFaces FaceTracking::run(const InputItem& input, Engine* classifier) {
  VideoFaces out;
  out.path = input.path;
  const FacesOptions& o = impl_->options;
  DetectorNet& net = *impl_->net;
  const int size = net.card().input_size;
  try {
    if (input.kind == InputKind::Invalid) fail(input.path + ": " + input.error);
    const bool on_backend = frames_on_backend(classifier);
    std::unique_ptr<FrameSource> source = impl_->open(input, on_backend);
    VideoTracker tracker(o);
    EyeAngles angles;
    std::optional<FaceClassifying> classifying;
    std::optional<BackendFaceClassifying> classifying_there;
    if (classifier) classifying.emplace(*classifier, o);
    if (classifier && on_backend) classifying_there.emplace(*classifier, o);
    if (on_backend && !impl_->frames)
      impl_->frames = std::make_unique<BackendFrames>(*impl_->backend);
    std::vector<Frame> batch(size_t(o.batch));
    std::optional<Frame> held;  // a frame of the other kind: the first of the next batch
    const size_t per_frame = size_t(size) * size * 3;
    impl_->letterboxed.resize(per_frame * size_t(o.batch));
    for (bool ended = false;;) {
      // A batch of frames of one kind: YUV 4:2:0 of one colour space on the backend path, or
      // RGB for the host.
      int n = 0;
      bool there = false;
      while (n < o.batch) {
        Frame& f = batch[size_t(n)];
        if (held) {
          f = std::move(*held);
          held.reset();
        } else if (ended || !source->next(f)) {
          ended = true;
          break;
        }
        const bool yuv = on_backend && f.is_yuv;
        if (n > 0 && (yuv != there || (yuv && !same_colour(f.color, batch[0].color)))) {
          held = std::move(f);
          break;
        }
        there = yuv;
        ++n;
      }
      if (n == 0) break;
      const std::span<const Frame> frames(batch.data(), size_t(n));
      std::vector<YuvView> views;
      std::vector<std::vector<Detection>> dets;
      {
        const cpu::ScopedOmpThreads one(1);
        if (there) {
          views = impl_->frames->upload(frames);
          net.letterbox(views, batch[0].color);
        } else {
          for (int i = 0; i < n; ++i)
            letterbox_frame(batch[size_t(i)].view(), size,
                            impl_->letterboxed.data() + size_t(i) * per_frame);
          net.load_input(n, impl_->letterboxed.data());
        }
        dets = net.detect(n, o.keep_score);
      }
      for (int i = 0; i < n; ++i) {
        const Frame& f = batch[size_t(i)];
        out.width = f.width;
        out.height = f.height;
        const size_t first = out.rows.size();
        tracker.add(f.index, f.time_s, f.width, f.height, size, dets[size_t(i)], out);
        if (classifying) {
          // The crops are turned by the eye line, read with a second look where it is turned.
          const cpu::ScopedOmpThreads one(1);
          if (there) {
            second_looks_on_backend(views, f.color, i, out.rows, first, net, o.keep_score, angles);
            classifying_there->add(i, first, out);
          } else {
            for (size_t r = first; r < out.rows.size(); ++r)
              angles.set(out.rows[r], f.view(), net, o.keep_score);
            classifying->add(f, first, out);
          }
        }
        ++out.frames;
      }
      if (there && classifying_there) classifying_there->flush(views, batch[0].color, out);
    }
    if (classifying) {
      classifying->flush(out);
      vote_faces(out, classifier->spec().num_classes(), o.vote, o.choice);
    }
  } catch (const Error& e) {
    out.error = e.what();
  }
  return out;
}

DetectorWeights load_crop_detector(const CropSpec& crop, const std::string& what) {
  const std::string path = crop.detector_file();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    fail_option(what + ": no face detector at " + path +
                (crop.detector.empty()
                     ? " (tools/setup.sh writes it there; or name one, or set FERVID_DETECTOR)"
                     : ""));
  try {
    return load_detector(path);
  } catch (const Error& e) {
    fail_option(what + ": " + std::string(e.what()));
  }
}

struct FaceFollower::Impl {
  FacesOptions options;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<DetectorNet> net;
  std::optional<VideoTracker> tracker;
  std::optional<EyeAngles> angles;
};

FaceFollower::FaceFollower(const DetectorWeights& weights, const FacesOptions& options)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  impl_->backend = cpu::make_cpu_backend(0, ConvImpl::Auto, Precision::Fp32);
  impl_->net = std::make_unique<DetectorNet>(weights, *impl_->backend, 1);
  restart();
}

FaceFollower::~FaceFollower() = default;

void FaceFollower::restart() {
  impl_->tracker.emplace(impl_->options);
  impl_->angles.emplace();
}

std::vector<FaceRow> FaceFollower::next(const ImageView& frame, int64_t index, double time_s) {
  const cpu::ScopedOmpThreads one(1);
  Impl& m = *impl_;
  const int size = m.net->card().input_size;
  letterbox_frame(frame, size, m.net->input().ptr<float>());
  VideoFaces out;
  m.tracker->add(index, time_s, frame.width, frame.height, size,
                 m.net->detect(1, m.options.keep_score).front(), out);
  for (FaceRow& r : out.rows) m.angles->set(r, frame, *m.net, m.options.keep_score);
  return std::move(out.rows);
}

std::optional<FaceCrop> largest_face_crop(std::span<const FaceRow> faces, double margin, int width,
                                          int height) {
  const FaceRow* best = nullptr;
  for (const FaceRow& f : faces)
    if (f.track > 0 && (!best || f.w * f.h > best->w * best->h)) best = &f;
  if (!best) return std::nullopt;
  CropRect rect = square_inside(best->x + best->w / 2.0, best->y + best->h / 2.0,
                                std::max(best->w, best->h) * (1 + 2 * margin), width, height);
  rect.angle = best->angle;  // turned so that the eyes lie level (0 without key points)
  return FaceCrop{rect, best->track};
}

}  // namespace fervid
