// The classifier pipeline on the CPU backend: videos packed into shared batches and spanning
// several batches give the same per-video votes as frame-by-frame runs voted by hand; a bad
// input becomes an error result in its place and the run goes on.
#include "fervid/pipeline.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "cpu/ops.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace fervid::test {
namespace {

fs::path work_dir() {
  static const fs::path dir = temp_dir("pipe");
  return dir;
}

std::string clip(const std::string& name, int frames, const std::string& src) {
  fs::path p = work_dir() / name;
  std::string cmd = "ffmpeg -nostdin -v error -y -f lavfi -i " + src + " -frames:v " +
                    std::to_string(frames) + " -pix_fmt yuv420p " + p.string();
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  return p.string();
}

ModelSpec tiny_spec() {
  ModelSpec s;
  s.name = "tiny";
  s.config = {6, ModelSpec::kPool, 8, ModelSpec::kPool};
  s.input_size = 16;
  s.head = Head::Gap;
  s.dense = {10};
  s.classes = {"a", "b", "c", "d"};
  return s;
}

TEST(Pipeline, PackedBatchesVoteLikeFrameByFrame) {
  SeedTrace trace;
  const std::string weights = (work_dir() / "tiny.safetensors").string();
  make_weights(tiny_spec(), seed(), StDType::F32, weights);
  Weights w = Weights::load(weights);
  auto backend = cpu::make_cpu_backend(0);
  const std::vector<std::string> paths = {
      clip("v5.mp4", 5, "testsrc=size=48x32:rate=10"),
      clip("v1.mp4", 1, "mandelbrot=size=40x40:rate=10"),
      (work_dir() / "missing.mp4").string(),
      clip("v12.mp4", 12, "smptebars=size=64x36:rate=10"),
      clip("v3.mp4", 3, "rgbtestsrc=size=32x32:rate=10"),
      std::string(FERVID_DATA_DIR) + "/faces/astronaut.png",
      clip("v7.mp4", 7, "testsrc=size=48x32:rate=10"),
  };
  // Several decode threads interleave the videos' frames in the batches.
  for (auto [mode, threads] : {std::pair{VoteMode::Majority, 1},
                               {VoteMode::Confidence, 1},
                               {VoteMode::Majority, 3},
                               {VoteMode::Confidence, 3}}) {
    SCOPED_TRACE(std::to_string(threads) + " decode threads");
    Model model(w, *backend, 4);
    ClassifyOptions opt;
    opt.batch = 4;
    opt.vote = mode;
    opt.decode_threads = threads;
    opt.keep_frames = true;
    opt.keep_logits = true;
    opt.crop = CropSpec::parse("center");
    opt.stage_times = mode == VoteMode::Confidence;  // timing the stages changes no result
    Classifier classifier(model, opt);
    std::vector<VideoResult> results;
    auto items = expand_inputs(paths);
    RunStats stats = classifier.run(items, [&](const VideoResult& r) { results.push_back(r); });
    ASSERT_EQ(results.size(), paths.size());
    EXPECT_EQ(stats.videos_failed, 1);
    EXPECT_EQ(stats.frames, 29);
    EXPECT_EQ(stats.decode_threads, threads);
    EXPECT_EQ(stats.staged, opt.stage_times);
    if (stats.staged) {
      // Each stage ran in every batch, inside the model thread's busy time.
      EXPECT_GT(stats.preprocess_s, 0.0);
      EXPECT_GT(stats.frame_stage_s, 0.0);
      EXPECT_GT(stats.vote_s, 0.0);
      EXPECT_LE(stats.preprocess_s + stats.frame_stage_s + stats.vote_s, stats.model_s);
    } else {
      EXPECT_EQ(stats.preprocess_s + stats.frame_stage_s + stats.vote_s, 0.0);
    }
    Model single(w, *backend, 1);
    for (size_t v = 0; v < paths.size(); ++v) {
      const VideoResult& r = results[v];
      EXPECT_EQ(r.path, paths[v]);
      if (v == 2) {
        EXPECT_FALSE(r.ok());
        EXPECT_NE(r.error.find("no such file"), std::string::npos) << r.error;
        continue;
      }
      ASSERT_TRUE(r.ok()) << r.error;
      auto src = open_frames(items[v], {});
      Frame f;
      std::vector<int32_t> counts(4, 0);
      std::vector<double> sums(4, 0.0);
      int64_t n = 0;
      while (src->next(f)) {
        ImageView view = f.view();
        CropRect crop = opt.crop.rect_for(f.width, f.height);
        single.forward({&view, 1}, {&crop, 1});
        const float* p = single.probs().ptr<float>();
        const int label = single.labels().ptr<int32_t>()[0];
        ASSERT_LT(n, int64_t(r.frame_rows.size()));
        EXPECT_EQ(r.frame_rows[n].label, label) << paths[v] << " frame " << n;
        EXPECT_EQ(r.frame_rows[n].frame_index, n);
        for (int j = 0; j < 4; ++j) {
          EXPECT_NEAR(r.frame_rows[n].probs[j], p[j], 1e-5);
          EXPECT_NEAR(r.frame_rows[n].logits[j], single.logits().ptr<float>()[j], 1e-4);
        }
        ++counts[label];
        for (int j = 0; j < 4; ++j) sums[j] += p[j];
        ++n;
      }
      EXPECT_EQ(r.frames, n);
      for (int j = 0; j < 4; ++j) {
        EXPECT_EQ(r.counts[j], counts[j]) << paths[v];
        EXPECT_NEAR(r.mean_probs[j], sums[j] / n, 1e-5);
      }
      EXPECT_EQ(r.label, cpu::vote_winner(counts.data(), sums.data(), 4, mode)) << paths[v];
    }
  }
}

TEST(Pipeline, CropBoxOutsideTheFrameIsAnErrorRow) {
  const std::string weights = (work_dir() / "tiny2.safetensors").string();
  make_weights(tiny_spec(), 5, StDType::F32, weights);
  Weights w = Weights::load(weights);
  auto backend = cpu::make_cpu_backend(0);
  Model model(w, *backend, 2);
  ClassifyOptions opt;
  opt.batch = 2;
  opt.crop = CropSpec::parse("box=0,0,60,60");
  std::vector<VideoResult> results;
  Classifier(model, opt)
      .run(expand_inputs({clip("small.mp4", 3, "testsrc=size=48x32:rate=10"),
                          clip("big.mp4", 3, "testsrc=size=96x64:rate=10")}),
           [&](const VideoResult& r) { results.push_back(r); });
  ASSERT_EQ(results.size(), 2u);
  EXPECT_FALSE(results[0].ok());
  EXPECT_NE(results[0].error.find("lies outside the 48x32 frame"), std::string::npos)
      << results[0].error;
  EXPECT_TRUE(results[1].ok()) << results[1].error;
  EXPECT_EQ(results[1].frames, 3);
}

// SamplingOptions::keep_yuv: 4:2:0 video frames stay YUV and the backend converts them
// (preprocess_yuv420), in batches that also hold RGB frames (an image, a non-4:2:0 video).
// The inputs differ from swscale's RGB by at most 3/255, so the frames' probabilities stay close
// and, on real video, the votes agree.
TEST(Pipeline, YuvFramesMixWithRgbFramesInOneBatch) {
  SeedTrace trace;
  const std::string weights = (work_dir() / "tiny_yuv.safetensors").string();
  make_weights(tiny_spec(), seed(), StDType::F32, weights);
  Weights w = Weights::load(weights);
  auto backend = cpu::make_cpu_backend(0);
  const std::string data = FERVID_DATA_DIR;
  const fs::path rgb_clip = work_dir() / "rgb24.mkv";
  const std::string cmd =
      "ffmpeg -nostdin -v error -y -f lavfi -i testsrc=size=40x30:rate=10 "
      "-frames:v 3 -c:v ffv1 -pix_fmt bgr0 " +
      rgb_clip.string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const std::vector<InputItem> inputs = {{data + "/video/astronaut-720p.mp4", InputKind::Video, ""},
                                         {data + "/faces/astronaut.png", InputKind::Image, ""},
                                         {rgb_clip.string(), InputKind::Video, ""},
                                         {data + "/video/vtest.avi", InputKind::Video, ""}};
  std::vector<std::vector<VideoResult>> runs;
  for (bool yuv : {false, true}) {
    Model model(w, *backend, 5);
    ClassifyOptions opt;
    opt.batch = 5;  // batches mix the videos and the image
    opt.sampling = {7, 6, yuv};
    opt.keep_frames = true;
    opt.crop = CropSpec::parse("center");
    runs.emplace_back();
    Classifier(model, opt).run(inputs, [&](const VideoResult& r) { runs.back().push_back(r); });
  }
  ASSERT_EQ(runs[0].size(), 4u);
  ASSERT_EQ(runs[1].size(), 4u);
  for (size_t v = 0; v < 4; ++v) {
    const VideoResult &a = runs[0][v], &b = runs[1][v];
    ASSERT_TRUE(a.ok() && b.ok()) << a.error << b.error;
    ASSERT_EQ(a.frame_rows.size(), b.frame_rows.size());
    double worst = 0;
    for (size_t f = 0; f < a.frame_rows.size(); ++f)
      for (size_t c = 0; c < a.frame_rows[f].probs.size(); ++c)
        worst =
            std::max(worst, double(std::abs(a.frame_rows[f].probs[c] - b.frame_rows[f].probs[c])));
    // The image and the RGB video take the RGB path in both runs: identical.
    if (v == 1 || v == 2) {
      EXPECT_EQ(worst, 0.0) << a.path;
    } else {
      EXPECT_GT(worst, 0.0) << a.path << ": the YUV path was not taken";
      EXPECT_LT(worst, 0.02) << a.path;
    }
    // The vote agrees unless its winner was within the inputs' difference of the runner-up.
    std::vector<double> sorted = a.mean_probs;
    std::sort(sorted.rbegin(), sorted.rend());
    if (sorted[0] - sorted[1] > 2 * worst) {
      EXPECT_EQ(a.label, b.label) << a.path;
    }
  }
}

}  // namespace
}  // namespace fervid::test
