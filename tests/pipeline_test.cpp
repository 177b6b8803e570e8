// The classifier pipeline on the CPU backend: videos packed into shared batches and spanning
// several batches give the same per-video votes as frame-by-frame runs voted by hand; a bad
// input becomes an error result in its place and the run goes on.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include "backends/cpu/cpu_backend.h"
#include "classifier.h"
#include "cpu/ops.h"
#include "forwarding_backend.h"
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

// The CPU backend's ops on three simulated lanes (Lane): each lane is a queue that runs only when
// the host needs it (a copy back, a fence waited for, synchronize) and as far as it needs; a
// lane waits for another only where wait_for() says. With `ahead`, every time the host waits,
// that lane first runs to its end. Each order is one a device with three streams could take, so
// a fence the pipeline forgot makes a stage read a buffer before it is written or after the
// next batch overwrote it, and the votes differ from the in-order run.
class LaneSim final : public ForwardingBackend, Lanes {
 public:
  explicit LaneSim(std::optional<Lane> ahead)
      : ForwardingBackend(cpu::make_cpu_backend(0)), ahead_(ahead) {}

  std::string name() const override { return "lane-sim"; }
  bool prefers_yuv_frames() const override { return false; }
  std::string device_name() const override { return "three simulated lanes"; }
  void copy_from_host(const Tensor& dst, const void* src) override {
    host_waits(lane_, queue_[idx(lane_)].size());
    inner().copy_from_host(dst, src);
  }
  void copy_to_host(void* dst, const Tensor& src) override {
    copy_to_host_async(dst, src);
    host_waits(lane_, queue_[idx(lane_)].size());
  }
  Buffer allocate_host(size_t bytes) override { return Buffer::host(bytes); }
  void copy_to_host_async(void* dst, const Tensor& src) override {
    enqueue([=, this] { inner().copy_to_host(dst, src); });
  }
  void synchronize() override {
    for (Lane l : {Lane::Frames, Lane::Network, Lane::Vote}) host_waits(l, queue_[idx(l)].size());
  }
  // A layer runs when its lane gets to it.
  std::unique_ptr<PreparedLayer> prepare(const LayerDesc& layer,
                                         const LayerWeights& weights) override {
    return std::make_unique<WrappedLayer>(inner().prepare(layer, weights), [this](const auto& run) {
      on_network();
      enqueue(run);
    });
  }

  Lanes* lanes() override { return this; }
  GraphReplay* graph_replay() override { return nullptr; }
  FrameSinks* frame_sinks() override { return nullptr; }
  DeviceGradcam* device_gradcam() override { return nullptr; }
  void use_lane(Lane lane) override { lane_ = lane; }
  std::unique_ptr<Fence> make_fence() override { return std::make_unique<SimFence>(*this); }
  void wait_for(const Fence& fence) override {
    const auto& f = dynamic_cast<const SimFence&>(fence);
    if (f.recorded) queue_[idx(lane_)].push_back({{}, f.lane, f.pos});
  }

  // The frames are read now (the host's staging copy); the result lands in `out` on the lane.
  void preprocess(std::span<const ImageView> frames, std::span<const CropRect> crops,
                  const Preprocess& pp, const Tensor& out) override {
    auto staged = stage(out);
    inner().preprocess(frames, crops, pp, staged->tensor);
    land(staged, out);
  }
  void preprocess_yuv420(std::span<const YuvView> frames, std::span<const CropRect> crops,
                         const ColorSpec& cs, const Preprocess& pp, const Tensor& out) override {
    auto staged = stage(out);
    inner().preprocess_yuv420(frames, crops, cs, pp, staged->tensor);
    land(staged, out);
  }
  void softmax_argmax(const Tensor& logits, const Tensor& probs, const Tensor& labels) override {
    on_network();
    enqueue([=, this] { inner().softmax_argmax(logits, probs, labels); });
  }
  void vote_accumulate(const Tensor& probs, const Tensor& labels, std::span<const Segment> segments,
                       const Tensor& counts, const Tensor& sums) override {
    enqueue([=, this, segs = std::vector<Segment>(segments.begin(), segments.end())] {
      inner().vote_accumulate(probs, labels, segs, counts, sums);
    });
  }
  void vote_finalize(const Tensor& counts, const Tensor& sums, std::span<const int> slots,
                     VoteMode mode, const Tensor& winners, const Tensor& out_counts,
                     const Tensor& out_sums) override {
    enqueue([=, this, ss = std::vector<int>(slots.begin(), slots.end())] {
      inner().vote_finalize(counts, sums, ss, mode, winners, out_counts, out_sums);
    });
  }

  int64_t host_waits_seen = 0, cross_lane_waits_run = 0;

 private:
  struct Entry {
    std::function<void()> op;  // empty: wait until lane `lane` has run `pos` entries
    Lane lane = Lane::Network;
    size_t pos = 0;
  };
  struct SimFence final : Fence {
    explicit SimFence(LaneSim& sim) : sim(sim) {}
    void record() override {
      lane = sim.lane_;
      pos = sim.queue_[idx(lane)].size();
      recorded = true;
    }
    void wait() override {
      if (recorded) sim.host_waits(lane, pos);
    }
    LaneSim& sim;
    Lane lane = Lane::Network;
    size_t pos = 0;
    bool recorded = false;
  };

  static int idx(Lane l) { return int(l); }
  void on_network() const { ASSERT_EQ(lane_, Lane::Network) << "a frame-stage op off its lane"; }
  void enqueue(std::function<void()> op) { queue_[idx(lane_)].push_back({std::move(op)}); }
  std::shared_ptr<OwnedTensor> stage(const Tensor& out) {
    return std::make_shared<OwnedTensor>(host_tensor(out.shape(), out.dtype(), out.layout()));
  }
  void land(const std::shared_ptr<OwnedTensor>& staged, const Tensor& out) {
    enqueue([staged, out] { std::memcpy(out.data(), staged->tensor.data(), out.bytes()); });
  }
  void host_waits(Lane lane, size_t pos) {
    ++host_waits_seen;
    if (ahead_) run(*ahead_, queue_[idx(*ahead_)].size());
    run(lane, pos);
  }
  // Runs `lane` until it has run `pos` entries, running other lanes where it waits for them.
  void run(Lane lane, size_t pos) {
    auto& q = queue_[idx(lane)];
    size_t& done = done_[idx(lane)];
    while (done < pos) {
      Entry e = q[done];
      if (e.op) {
        e.op();
      } else if (done_[idx(e.lane)] < e.pos) {
        ++cross_lane_waits_run;
        run(e.lane, e.pos);
      }
      ++done;
    }
  }

  std::optional<Lane> ahead_;
  Lane lane_ = Lane::Network;
  std::vector<Entry> queue_[3];
  size_t done_[3] = {0, 0, 0};
};

// The pipeline's lane protocol (fences between preprocess, frame stage and vote, two input
// slots, finished videos read back one batch later) on the simulated lanes, in every order the
// simulator can take: the same votes as the in-order run on the CPU backend. Videos span several
// batches and share them; a run of missing files finishes more videos between two batches than
// the result rows hold.
TEST(Pipeline, StagesOnLanesVoteLikeInOrder) {
  SeedTrace trace;
  const std::string weights = (work_dir() / "tiny_lanes.safetensors").string();
  make_weights(tiny_spec(), seed(), StDType::F32, weights);
  Weights w = Weights::load(weights);
  std::vector<std::string> paths = {clip("l17.mp4", 17, "testsrc=size=48x32:rate=10"),
                                    clip("l2.mp4", 2, "mandelbrot=size=40x40:rate=10"),
                                    clip("l9.mp4", 9, "smptebars=size=64x36:rate=10")};
  for (int i = 0; i < 9; ++i) paths.push_back((work_dir() / ("gone" + std::to_string(i))).string());
  paths.push_back(clip("l23.mp4", 23, "rgbtestsrc=size=32x32:rate=10"));
  paths.push_back(clip("l3.mp4", 3, "testsrc=size=48x32:rate=10"));
  const auto items = expand_inputs(paths);
  auto classify = [&](Backend& be) {
    Model model(w, be, 4);
    ClassifyOptions opt;
    opt.batch = 4;  // 7 vote slots and result rows: 4 + 1 decode thread + 2
    opt.decode_threads = 1;
    opt.crop = CropSpec::parse("center");
    std::vector<VideoResult> results;
    RunStats stats =
        Classifier(model, opt).run(items, [&](const VideoResult& r) { results.push_back(r); });
    EXPECT_EQ(stats.frames, 17 + 2 + 9 + 23 + 3);
    EXPECT_EQ(stats.videos_failed, 9);
    return results;
  };
  auto cpu_backend = cpu::make_cpu_backend(0);
  const std::vector<VideoResult> want = classify(*cpu_backend);
  ASSERT_EQ(want.size(), paths.size());
  for (std::optional<Lane> ahead : {std::optional<Lane>(), std::optional(Lane::Frames),
                                    std::optional(Lane::Network), std::optional(Lane::Vote)}) {
    SCOPED_TRACE(!ahead ? "each lane as late as it can"
                        : "lane " + std::to_string(int(*ahead)) + " first");
    LaneSim sim(ahead);
    const std::vector<VideoResult> got = classify(sim);
    EXPECT_GT(sim.cross_lane_waits_run, 0);  // the lanes did wait for each other
    ASSERT_EQ(got.size(), want.size());
    for (size_t v = 0; v < want.size(); ++v) {
      SCOPED_TRACE(want[v].path);
      EXPECT_EQ(got[v].path, want[v].path);
      EXPECT_EQ(got[v].error, want[v].error);
      EXPECT_EQ(got[v].frames, want[v].frames);
      EXPECT_EQ(got[v].label, want[v].label);
      EXPECT_EQ(got[v].counts, want[v].counts);
      ASSERT_EQ(got[v].mean_probs.size(), want[v].mean_probs.size());
      for (size_t c = 0; c < want[v].mean_probs.size(); ++c)
        EXPECT_NEAR(got[v].mean_probs[c], want[v].mean_probs[c], 1e-9);
    }
  }
}

}  // namespace
}  // namespace fervid::test
