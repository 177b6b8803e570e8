// FaceTracking (fervid/faces.h): a video's sampled frames, letterboxed, through the detector in
// batches on the CPU backend, each frame's detections (in frame pixels) through the tracker.
#include <algorithm>
#include <cmath>

#include "backends/cpu/cpu_backend.h"
#include "face_detector.h"
#include "face_tracker.h"
#include "fervid/faces.h"
#include "video.h"

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

struct FaceTracking::Impl {
  FacesOptions options;
  DetectorWeights weights;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<DetectorNet> net;
};

FaceTracking::FaceTracking(const std::string& detector, const FacesOptions& options)
    : impl_(std::make_unique<Impl>()) {
  if (options.batch < 1) fail_option("faces: the batch must be at least 1");
  impl_->options = options;
  impl_->weights = load_detector(detector);
  impl_->backend = cpu::make_cpu_backend(options.threads, ConvImpl::Auto, Precision::Fp32);
  impl_->net = std::make_unique<DetectorNet>(impl_->weights, *impl_->backend, options.batch);
}

FaceTracking::~FaceTracking() = default;

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

void add_rows(const Frame& frame, const FrameDetections& dets,
              const std::vector<TrackedFace>& faces, VideoFaces& out) {
  if (faces.empty()) out.rows.push_back({frame.index, frame.time_s, 0, 0, 0, 0, 0, 0, {}});
  for (const TrackedFace& t : faces) {
    FaceRow r{
        frame.index, frame.time_s, t.track, t.box.cx - t.box.w / 2, t.box.cy - t.box.h / 2, t.box.w,
        t.box.h,     t.score,      {}};
    if (t.detection >= 0) r.keypoints = dets.keypoints[size_t(t.detection)];
    out.rows.push_back(std::move(r));
    out.tracks = std::max(out.tracks, t.track);
  }
}

// The gap in sampled frames that lasts `max_gap_s` at the rate the frames come: from the time
// between the first and the n-th frame (n >= 1), else SamplingOptions::fps over the stride.
int gap_frames(const FacesOptions& o, double first_s, double now_s, int64_t n) {
  double rate = o.sampling.fps / std::max(o.sampling.stride, 1);
  if (n >= 1 && now_s > first_s) rate = double(n) / (now_s - first_s);
  return std::max(1, int(std::lround(o.max_gap_s * rate)));
}

}  // namespace

VideoFaces FaceTracking::run(const InputItem& input) {
  VideoFaces out;
  out.path = input.path;
  const FacesOptions& o = impl_->options;
  DetectorNet& net = *impl_->net;
  const int size = net.card().input_size;
  try {
    if (input.kind == InputKind::Invalid) fail(input.path + ": " + input.error);
    std::unique_ptr<FrameSource> source = open_frames(input, o.sampling);
    TrackerOptions to;
    to.high = o.min_score;
    to.max_gap = gap_frames(o, 0, 0, 0);
    FaceTracker tracker(to);
    double first_s = 0;
    std::vector<Frame> batch(size_t(o.batch));
    for (bool more = true; more;) {
      int n = 0;
      while (n < o.batch && (more = source->next(batch[size_t(n)]))) {
        const Frame& f = batch[size_t(n)];
        letterbox_frame(f.view(), size, net.input().ptr<float>() + size_t(n) * size * size * 3);
        ++n;
      }
      if (n == 0) break;
      const std::vector<std::vector<Detection>> dets = net.detect(n, o.keep_score);
      for (int i = 0; i < n; ++i) {
        const Frame& f = batch[size_t(i)];
        out.width = f.width;
        out.height = f.height;
        const FrameDetections fd =
            in_frame(dets[size_t(i)], Letterbox::of(f.width, f.height, size), size);
        if (out.frames == 0) first_s = f.time_s;
        if (out.frames == 1) tracker.set_max_gap(gap_frames(o, first_s, f.time_s, 1));
        add_rows(f, fd, tracker.update(fd.boxes), out);
        ++out.frames;
      }
    }
  } catch (const Error& e) {
    out.error = e.what();
  }
  return out;
}

}  // namespace fervid
