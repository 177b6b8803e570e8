// The aligned face crop (aligned_face) against the frame's own pixels where the geometry makes the
// answer exact (a square at pixel centres, a quarter turn, a 2x2 mean, the frame's edge), and the
// votes per track and per video (vote_faces) on a case worked by hand, the detector's thread count.
// Part of face_detector_test.
#include <omp.h>

#include <cmath>
#include <numbers>
#include <random>

#include "backends/cpu/cpu_backend.h"
#include "cpu/ops.h"
#include "fervid/faces.h"
#include "random_yuv.h"
#include "test_util.h"

namespace fervid::test {
namespace {

// A w x h RGB frame of fresh random bytes (never zeros).
struct RandomFrame {
  int w, h;
  std::vector<uint8_t> rgb;
  RandomFrame(int width, int height, unsigned seed) : w(width), h(height) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> byte(1, 255);
    for (int i = 0; i < w * h * 3; ++i) rgb.push_back(uint8_t(byte(rng)));
  }
  ImageView view() const { return {rgb.data(), w, h, w * 3}; }
  int at(int x, int y, int c) const { return rgb[(size_t(y) * w + x) * 3 + c]; }
};

// A face whose aligned square (margin m) is side x side, its top-left corner at (x0, y0).
FaceRow face_square(double x0, double y0, double side, double margin, float angle) {
  FaceRow r;
  r.track = 1;
  r.w = r.h = float(side / (1 + 2 * margin));
  r.x = float(x0 + side / 2 - r.w / 2);
  r.y = float(y0 + side / 2 - r.h / 2);
  r.angle = angle;
  return r;
}

std::vector<uint8_t> crop(const RandomFrame& f, const FaceRow& r, double margin, int size) {
  std::vector<uint8_t> out(size_t(size) * size * 3, 7);  // poisoned: every byte is written
  aligned_face(f.view(), r, margin, size, out.data());
  return out;
}

TEST(FaceCrops, UnturnedSquareAtPixelCentresIsTheFramesPixels) {
  const RandomFrame f(40, 30, 11);
  const int size = 12;
  const auto out = crop(f, face_square(9, 5, size, 0.25, 0), 0.25, size);
  for (int v = 0; v < size; ++v)
    for (int u = 0; u < size; ++u)
      for (int c = 0; c < 3; ++c)
        ASSERT_EQ(out[(size_t(v) * size + u) * 3 + c], f.at(9 + u, 5 + v, c)) << u << "," << v;
}

TEST(FaceCrops, AQuarterTurnReadsTheSquareRotated) {
  const RandomFrame f(40, 30, 12);
  const int size = 10;
  const auto out = crop(f, face_square(14, 8, size, 0.5, float(std::numbers::pi / 2)), 0.5, size);
  // The crop's x axis runs down the frame and its y axis to the frame's left.
  for (int v = 0; v < size; ++v)
    for (int u = 0; u < size; ++u)
      for (int c = 0; c < 3; ++c)
        ASSERT_EQ(out[(size_t(v) * size + u) * 3 + c], f.at(14 + size - 1 - v, 8 + u, c))
            << u << "," << v;
}

TEST(FaceCrops, ASquareTwiceTheSizeIsTheMeanOfEach2x2Block) {
  const RandomFrame f(50, 40, 13);
  const int size = 8;
  const auto out = crop(f, face_square(6, 10, 2 * size, 0.5, 0), 0.5, size);
  for (int v = 0; v < size; ++v)
    for (int u = 0; u < size; ++u)
      for (int c = 0; c < 3; ++c) {
        const int x = 6 + 2 * u, y = 10 + 2 * v;
        const double mean =
            (f.at(x, y, c) + f.at(x + 1, y, c) + f.at(x, y + 1, c) + f.at(x + 1, y + 1, c)) / 4.0;
        ASSERT_EQ(out[(size_t(v) * size + u) * 3 + c], int(std::lround(mean))) << u << "," << v;
      }
}

TEST(FaceCrops, OutsideTheFrameIsBlack) {
  const RandomFrame f(20, 16, 14);
  const int size = 10;
  const auto out = crop(f, face_square(-4, -3, size, 0.5, 0), 0.5, size);
  for (int v = 0; v < size; ++v)
    for (int u = 0; u < size; ++u)
      for (int c = 0; c < 3; ++c) {
        const int x = u - 4, y = v - 3;
        const int want = x < 0 || y < 0 ? 0 : f.at(x, y, c);
        ASSERT_EQ(out[(size_t(v) * size + u) * 3 + c], want) << u << "," << v;
      }
}

// ---- The face ops on YUV frames (fervid/face_sample.h) against the RGB references --------------

const ColorSpec kColours[] = {{false, false}, {true, false}, {true, true}, {false, true}};

TEST(FaceFrameOps, LetterboxOfYuvIsTheRgbLetterboxOfItsPixels) {
  // Wide, tall, odd-sized, smaller and larger than the input; planar and NV12.
  const int sizes[][2] = {{37, 23}, {23, 37}, {64, 64}, {301, 180}, {9, 14}};
  const int size = 32;
  unsigned seed = 100;
  for (const auto& wh : sizes)
    for (bool nv12 : {false, true}) {
      const ColorSpec cs = kColours[seed % 4];
      RandomYuv f(wh[0], wh[1], nv12, seed++);
      f.convert(cs);
      std::vector<float> want(size_t(size) * size * 3);
      letterbox_frame(f.rgb_view(), size, want.data());
      OwnedTensor got = host_tensor({1, size, size, 3}, DType::F32, Layout::NHWC);
      std::fill_n(got.tensor.ptr<float>(), want.size(), std::nanf(""));  // poisoned
      const YuvView views[] = {f.view};
      cpu::letterbox_yuv420(views, cs, got.tensor);
      SCOPED_TRACE(std::to_string(wh[0]) + "x" + std::to_string(wh[1]) + (nv12 ? " nv12" : ""));
      for (size_t i = 0; i < want.size(); ++i)
        ASSERT_EQ(got.tensor.ptr<float>()[i], want[i]) << "value " << i;
    }
}

TEST(FaceFrameOps, FaceCropsOfYuvAreTheAlignedFacesOfItsPixelsNormalised) {
  // Faces of every kind on two frames: small (one sample a pixel) and large (k x k), turned
  // either way, partly outside the frame; a window inside the square (the input's resize step).
  RandomYuv a(120, 90, false, 7), b(75, 101, true, 8);
  const ColorSpec cs{true, false};
  a.convert(cs);
  b.convert(cs);
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  std::vector<FaceRow> rows;
  std::vector<FaceSquare> squares;
  const double margin = 0.25;
  for (int i = 0; i < 12; ++i) {
    const RandomYuv& f = i % 2 ? b : a;
    FaceRow r;
    r.track = 1;
    r.w = 8 + 70 * unit(rng);
    r.h = r.w * (0.8f + 0.4f * unit(rng));
    r.x = -10 + (f.w - r.w + 20) * unit(rng);
    r.y = -10 + (f.h - r.h + 20) * unit(rng);
    r.angle = -0.7f + 1.4f * unit(rng);
    rows.push_back(r);
    squares.push_back(fervid::face_square(r, margin, i % 2));
  }
  Preprocess pp;
  pp.bgr = true;
  pp.scale = 1.0f / 255.0f;
  pp.mean = {0.485f, 0.456f, 0.406f};
  pp.std = {0.229f, 0.224f, 0.225f};
  pp.resize = 20;
  const int crop = 20, size = 16;  // the centred 16 x 16 of a 20-pixel square
  OwnedTensor got = host_tensor({int64_t(rows.size()), size, size, 3}, DType::F32, Layout::NHWC);
  std::fill_n(got.tensor.ptr<float>(), got.tensor.numel(), std::nanf(""));  // poisoned
  const YuvView views[] = {a.view, b.view};
  cpu::face_crops_yuv420(views, squares, crop, cs, pp, got.tensor);
  for (size_t i = 0; i < rows.size(); ++i) {
    const RandomYuv& f = i % 2 ? b : a;
    std::vector<uint8_t> want(size_t(crop) * crop * 3);
    aligned_face(f.rgb_view(), rows[i], margin, crop, want.data());
    for (int v = 0; v < size; ++v)
      for (int u = 0; u < size; ++u)
        for (int c = 0; c < 3; ++c) {
          const float px = want[(size_t(v + 2) * crop + u + 2) * 3 + (2 - c)];
          const float norm = px * (pp.scale / pp.std[c]) - pp.mean[c] / pp.std[c];
          ASSERT_EQ(got.tensor.ptr<float>()[((i * size + v) * size + u) * 3 + c], norm)
              << "face " << i << " at " << u << "," << v;
        }
  }
  // A square the input's resize step would resize is refused, naming the op.
  pp.resize = 24;
  try {
    cpu::face_crops_yuv420(views, squares, crop, cs, pp, got.tensor);
    ADD_FAILURE() << "a 20-pixel square for a resize step to 24 was taken";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("face_crops_yuv420"), std::string::npos) << e.what();
  }
}

FaceRow classified(int64_t frame, int track, float w, int label, std::vector<float> probs) {
  FaceRow r;
  r.frame_index = frame;
  r.time_s = frame * 0.5;
  r.track = track;
  r.w = r.h = w;
  r.label = label;
  r.probs = std::move(probs);
  return r;
}

// Track 1 on frames 0-3, classified 3 times (b, b, a); track 2 on frames 1-2, both a; frame 4 has
// no face. Majority: track 1 is b (2 of 3), track 2 is a; the main track is 1 (3 faces).
VideoFaces worked_case() {
  VideoFaces v;
  v.rows = {classified(0, 1, 50, 1, {0.2f, 0.7f, 0.1f}),
            classified(1, 1, 50, 1, {0.1f, 0.6f, 0.3f}),
            classified(1, 2, 80, 0, {0.9f, 0.05f, 0.05f}),
            classified(2, 1, 50, 0, {0.5f, 0.4f, 0.1f}),
            classified(2, 2, 80, 0, {0.8f, 0.1f, 0.1f}),
            classified(3, 1, 50, -1, {}),
            FaceRow{}};
  v.rows.back().frame_index = 4;
  return v;
}

TEST(FaceVotes, PerTrackAndTheMainTracksForTheVideo) {
  VideoFaces v = worked_case();
  vote_faces(v, 3, VoteMode::Majority, FaceChoice::All);
  ASSERT_EQ(v.track_votes.size(), 2u);
  const TrackVote& t1 = v.track_votes[0];
  EXPECT_EQ(t1.track, 1);
  EXPECT_EQ(t1.first_frame, 0);
  EXPECT_EQ(t1.last_frame, 3);
  EXPECT_DOUBLE_EQ(t1.last_s, 1.5);
  EXPECT_EQ(t1.frames, 4);
  EXPECT_EQ(t1.classified, 3);
  EXPECT_EQ(t1.counts, (std::vector<int32_t>{1, 2, 0}));
  EXPECT_EQ(t1.label, 1);
  EXPECT_NEAR(t1.mean_probs[0], (0.2 + 0.1 + 0.5) / 3, 1e-6);
  const TrackVote& t2 = v.track_votes[1];
  EXPECT_EQ(t2.track, 2);
  EXPECT_EQ(t2.frames, 2);
  EXPECT_EQ(t2.label, 0);
  EXPECT_EQ(v.video.track, 1);
  EXPECT_EQ(v.video.label, 1);
  EXPECT_EQ(v.video.counts, t1.counts);
  // Confidence: track 1's summed probabilities are a 0.8, b 1.7: still b.
  vote_faces(v, 3, VoteMode::Confidence, FaceChoice::All);
  EXPECT_EQ(v.track_votes[0].label, 1);
}

TEST(FaceVotes, LargestVotesOverEveryClassifiedFace) {
  VideoFaces v = worked_case();
  // As FaceTracking classifies with FaceChoice::Largest: track 2 (larger) on frames 1 and 2.
  v.rows[1].label = v.rows[3].label = -1;
  v.rows[1].probs.clear();
  v.rows[3].probs.clear();
  vote_faces(v, 3, VoteMode::Majority, FaceChoice::Largest);
  EXPECT_EQ(v.video.classified, 3);  // frame 0 (track 1), frames 1 and 2 (track 2)
  EXPECT_EQ(v.video.counts, (std::vector<int32_t>{2, 1, 0}));
  EXPECT_EQ(v.video.label, 0);
  EXPECT_EQ(v.video.track, 2);  // classified on 2 frames, track 1 on 1
}

TEST(FaceVotes, AVideoWithoutAFaceHasNoLabel) {
  VideoFaces v;
  v.rows = {FaceRow{}, FaceRow{}};
  vote_faces(v, 3, VoteMode::Majority, FaceChoice::All);
  EXPECT_TRUE(v.track_votes.empty());
  EXPECT_EQ(v.video.label, -1);
  EXPECT_EQ(v.video.track, 0);
}

// The detector's thread count is the calling thread's and comes back; a CPU backend made with 0
// threads (the detector's) leaves the count as it was. A detector backend that set it on the
// classifier's thread once slowed the classifier 1.6x (docs/faces.md).
TEST(DetectorThreads, TheScopedCountComesBackAndTheDetectorsBackendSetsNone) {
  const int before = omp_get_max_threads();
  {
    const cpu::ScopedOmpThreads one(1);
    EXPECT_EQ(omp_get_max_threads(), 1);
  }
  EXPECT_EQ(omp_get_max_threads(), before);
  const std::unique_ptr<Backend> detector_backend = cpu::make_cpu_backend(0);
  EXPECT_EQ(omp_get_max_threads(), before);
}

}  // namespace
}  // namespace fervid::test
