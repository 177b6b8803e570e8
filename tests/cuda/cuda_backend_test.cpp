// The CUDA backend as a whole against the CPU backend: the whole network on real frames in every
// precision and conv choice, the frame stage replayed as CUDA graphs, the classify job on three
// streams. Without a device those skip and say why; the host-side rules of planning and capture
// (PlanRules, CaptureGuard) and the refusal without a device run everywhere.
#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "backends/cpu/cpu_backend.h"
#include "backends/cuda/capture_guard.h"
#include "classifier.h"
#include "cpu/ops.h"
#include "cuda/plan_rules.h"
#include "cuda_test_util.h"
#include "fervid/fervid.h"
#include "model.h"
#include "network_compare.h"
#include "video.h"

namespace fervid::test {
namespace {

namespace fs = std::filesystem;

TEST(CudaBackend, DeviceCudaWithoutDeviceFailsInOneLine) {
  std::string why;
  if (cuda_device_available(&why)) GTEST_SKIP() << "a device is present";
  try {
    make_cuda_backend(gpu_options("fp16"));
    ADD_FAILURE() << "make_cuda_backend succeeded without a device";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("--device cuda"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

// The host-side rules of the CUDA planning (kernels/cuda/plan_rules.h); no device needed.
TEST(PlanRules, CudnnNotSupportedSubcodesTryTheNextAlgorithm) {
  using cuda::FusedTrial;
  EXPECT_EQ(cuda::fused_trial(CUDNN_STATUS_SUCCESS), FusedTrial::Take);
  // cuDNN 9: CUDNN_STATUS_NOT_SUPPORTED (3000) and its sub-codes 3001-3014 (..._SHAPE,
  // ..._LAYOUT, ..._ARCH_MISMATCH, ...): the fused call refused this algorithm, try the next.
  for (int s = 3000; s <= 3014; ++s)
    EXPECT_EQ(cuda::fused_trial(cudnnStatus_t(s)), FusedTrial::Next) << s;
  EXPECT_EQ(cuda::fused_trial(CUDNN_STATUS_NOT_SUPPORTED_SHAPE), FusedTrial::Next);
  for (cudnnStatus_t s :
       {CUDNN_STATUS_BAD_PARAM, CUDNN_STATUS_BAD_PARAM_NULL_POINTER, CUDNN_STATUS_INTERNAL_ERROR,
        CUDNN_STATUS_EXECUTION_FAILED, CUDNN_STATUS_NOT_INITIALIZED,
        CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED})
    EXPECT_EQ(cuda::fused_trial(s), FusedTrial::Fail) << cudnnGetErrorString(s);
}

TEST(PlanRules, APlanServesSmallerBatchesAndALargerBatchPlansAgain) {
  using V = std::vector<int64_t>;
  auto from = [](V planned, int64_t batch) { return cuda::plan_batch_for(planned, batch); };
  EXPECT_EQ(from({}, 8), std::nullopt);
  EXPECT_EQ(from({1}, 256), std::nullopt);  // the bench's batch 1 must not choose for 256
  EXPECT_EQ(from({256}, 7), 256);           // a run's last, partial batch
  EXPECT_EQ(from({1, 256, 64}, 7), 64);     // the nearest larger plan
  EXPECT_EQ(from({1, 64, 256}, 64), 64);
  EXPECT_EQ(from({1, 64, 256}, 1), 1);
  EXPECT_EQ(from({1, 64, 256}, 300), std::nullopt);
}

// The capture of the frame stage (capture_guarded, engine/backends/cuda/capture_guard.h) always
// ends: after a fervid::Error (the reason is returned, the caller runs op by op), after any other
// exception (ended, then rethrown) and when the end itself fails.
TEST(CaptureGuard, TheCaptureAlwaysEnds) {
  int begun = 0, ended = 0;
  auto begin = [&] { ++begun; };
  auto end_ok = [&] { return ++ended, std::string(); };
  EXPECT_EQ(capture_guarded(
                begin, [] {}, end_ok),
            "");
  EXPECT_EQ(std::pair(begun, ended), std::pair(1, 1));
  EXPECT_EQ(capture_guarded(
                begin, [] { fail("cudaMalloc in a capture"); }, end_ok),
            "cudaMalloc in a capture");
  EXPECT_EQ(std::pair(begun, ended), std::pair(2, 2));
  EXPECT_THROW(capture_guarded(
                   begin, [] { throw std::bad_alloc(); }, end_ok),
               std::bad_alloc);
  EXPECT_EQ(std::pair(begun, ended), std::pair(3, 3));
  EXPECT_THROW(capture_guarded(
                   begin, [] { throw 7; }, end_ok),
               int);
  EXPECT_EQ(std::pair(begun, ended), std::pair(4, 4));
  auto end_fails = [&] { return ++ended, std::string("cudaStreamEndCapture: invalidated"); };
  EXPECT_EQ(capture_guarded(
                begin, [] {}, end_fails),
            "cudaStreamEndCapture: invalidated");
  // The work's own reason wins over the end's.
  EXPECT_EQ(capture_guarded(
                begin, [] { fail("first"); }, end_fails),
            "first");
  EXPECT_EQ(std::pair(begun, ended), std::pair(6, 6));
}

// Random weights (this run's seed) for a built-in card, written in `dir`: the card and the file.
std::pair<ModelSpec, std::string> card_weights(const fs::path& dir, const std::string& card) {
  ModelSpec spec = resolve_card(card).first;  // built in: the bundle carries no card files
  const std::string path = (dir / (card + ".safetensors")).string();
  make_weights(spec, seed(), StDType::F32, path);
  return {spec, path};
}

TEST(CudaBackend, WholeNetworkMatchesCpuOnRealFrames) {
  REQUIRE_CUDA_DEVICE();
  SeedTrace trace;
  std::string why;
  const std::vector<Frame> frames = real_frames(&why);
  if (frames.empty()) GTEST_SKIP() << why;
  const fs::path dir = temp_dir("cuda-whole-network");
  for (const char* card : {"ravdess-vgg16", "torchvision-vgg16"}) {
    const auto [spec, path] = card_weights(dir, card);
    const Weights weights = Weights::load(path);
    // The reference: oneDNN's direct convolution (auto's Winograd rounds a little differently).
    auto cpu_be = cpu::make_cpu_backend(0, ConvImpl::Onednn);
    Model cpu_model(weights, *cpu_be, 16);
    const std::vector<float> want = logits_of(cpu_model, frames);
    const int classes = spec.num_classes();
    // Every precision with the default conv choice, and fp16/bf16 with each implementation.
    const std::pair<const char*, const char*> configs[] = {
        {"fp32", "auto"},   {"tf32", "auto"},  {"fp16", "auto"},  {"fp16", "cudnn"},
        {"fp16", "fervid"}, {"bf16", "cudnn"}, {"bf16", "fervid"}};
    for (auto [precision, impl] : configs) {
      auto gpu = make_cuda_backend(gpu_options(precision, impl));
      Model gpu_model(weights, *gpu, 7);  // 7: batches of several sizes, the last one partial
      const std::vector<float> got = logits_of(gpu_model, frames);
      const double rel = relative_l2(got, want), bound = network_bound(precision);
      const Agreement top1 = top1_agreement(got, want, classes, bound);
      std::printf(
          "[ network  ] %s %s conv %s: %zu frames, relative L2 of logits %.2e (bound %.0e), %s\n",
          card, precision, impl, frames.size(), rel, bound, top1.describe().c_str());
      EXPECT_LE(rel, bound) << card << " " << precision << " " << impl;
      EXPECT_EQ(top1.judged_flips, 0)
          << card << " " << precision << " " << impl << ": " << top1.describe();
    }
  }
}

// Noise frames of a few sizes, so that each batch's input differs from the last.
std::vector<Frame> noise_frames(int n) {
  std::vector<Frame> frames(n);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int i = 0; i < n; ++i) {
    Frame& f = frames[i];
    f.width = 40 + 8 * (i % 3);
    f.height = 36;
    f.stride = f.width * 3;
    f.rgb.resize(size_t(f.stride) * f.height);
    for (auto& v : f.rgb) v = uint8_t(byte(rng()));
  }
  return frames;
}

// Random weights (this run's seed) for the study's card, ravdess-vgg16, in a new test folder.
Weights random_study_weights(const std::string& folder) {
  return Weights::load(card_weights(temp_dir(folder), "ravdess-vgg16").second);
}

// The frame stage replayed as CUDA graphs computes exactly what the same backend computes op by
// op (a layer hook runs it that way), batch after batch with new inputs; a larger batch that
// moves the workspaces makes the graphs of smaller ones be captured again; a model's graphs go
// with it.
TEST(CudaBackend, FrameStageGraphsEqualOpByOp) {
  REQUIRE_CUDA_DEVICE();
  SeedTrace trace;
  const Weights weights = random_study_weights("cuda-graphs");
  const int classes = weights.spec.num_classes();
  for (const char* precision : {"fp16", "fp32"}) {
    SCOPED_TRACE(precision);
    auto gpu = make_cuda_backend(gpu_options(precision));
    for (int model_round = 0; model_round < 2; ++model_round) {
      Model model(weights, *gpu, 16);
      const ReplayStats before = gpu->graph_replay()->replay_stats();
      int step = 0;
      for (int n : {5, 5, 5, 16, 5, 5, 16, 16, 9, 9, 9}) {
        SCOPED_TRACE("step " + std::to_string(step++) + ", batch " + std::to_string(n));
        const std::vector<Frame> frames = noise_frames(n);
        std::vector<CropRect> crops;
        for (const Frame& f : frames) crops.push_back(centre_square(f));
        model.preprocess(frames, crops);
        std::vector<float> poison(size_t(n) * classes, std::nanf(""));
        std::vector<float> replayed(poison.size()), op_by_op(poison.size());
        const Tensor logits = model.logits().slice(0, n);
        gpu->copy_from_host(logits, poison.data());
        model.frame_stage(n);
        gpu->copy_to_host(replayed.data(), logits);
        gpu->copy_from_host(logits, poison.data());
        model.frame_stage(n, [](const std::string&) {});
        gpu->copy_to_host(op_by_op.data(), logits);
        for (float v : op_by_op) ASSERT_TRUE(std::isfinite(v));
        EXPECT_EQ(0, std::memcmp(replayed.data(), op_by_op.data(), replayed.size() * 4));
      }
      const ReplayStats after = gpu->graph_replay()->replay_stats();
      EXPECT_TRUE(after.enabled) << after.failure;
      EXPECT_EQ(after.failure, "");
      // Batches 5, 16 and 9 each have a graph, and most batches were replays of one.
      EXPECT_EQ(after.graphs, before.graphs + 3);
      EXPECT_GE(after.replays - before.replays, 6);
    }
    // Both models' graphs went with them.
    EXPECT_EQ(gpu->graph_replay()->replay_stats().graphs, 0);
  }
  // Switched off, nothing is captured.
  auto plain = make_cuda_backend(gpu_options("fp16", "auto", false));
  Model model(weights, *plain, 4);
  for (int i = 0; i < 3; ++i) model.frame_stage(4);
  plain->synchronize();
  EXPECT_FALSE(plain->graph_replay()->replay_stats().enabled);
  EXPECT_EQ(plain->graph_replay()->replay_stats().graphs, 0);
}

// The whole classify job with its stages on three streams (preprocess, frame stage, vote, with
// fences and two input slots; finished videos read back a batch later) gives the votes of the
// same job run in order on one stream, on CPU-decoded frames and on NVDEC frames; with per-frame
// rows, each video's counts and mean probabilities are those of its rows.
TEST(CudaBackend, ClassifyOnStageStreamsEqualsInOrder) {
  REQUIRE_CUDA_DEVICE();
  FERVID_NEED_RAVDESS();
  SeedTrace trace;
  const Weights weights = random_study_weights("cuda-stage-streams");
  const std::string data = test_data_dir();
  std::vector<std::string> paths;
  for (int r = 0; r < 3; ++r)
    for (const char* clip :
         {"/ravdess/modified/01-01-07-02-02-01-01_1.mp4", "/video/astronaut-720p.mp4",
          "/missing.mp4", "/ravdess/modified/01-01-08-02-01-01-19.mp4"})
      paths.push_back(data + clip);
  const std::vector<InputItem> items = expand_inputs(paths);
  auto gpu = make_cuda_backend(gpu_options("fp16", "auto"));
  Model model(weights, *gpu, 16);
  std::vector<DecoderKind> decoders = {DecoderKind::Cpu};
  std::string notice;
  if (choose_decoder(DecoderChoice::Auto, true, false, &notice) == DecoderKind::Nvdec)
    decoders.push_back(DecoderKind::Nvdec);
  else
    std::printf("[ streams  ] NVDEC not tried: %s\n", notice.c_str());
  for (DecoderKind decoder : decoders) {
    SCOPED_TRACE(decoder == DecoderKind::Nvdec ? "nvdec" : "cpu decode");
    auto classify = [&](bool streams, bool rows) {
      ClassifyOptions opt;
      opt.batch = 16;
      opt.sampling = {3, 25};
      opt.crop = CropSpec::parse("center");
      opt.decoder = decoder == DecoderKind::Nvdec ? DecoderChoice::Nvdec : DecoderChoice::Cpu;
      opt.decode_threads = 1;  // the same batches in every run
      opt.stage_streams = streams;
      opt.keep_frames = rows;
      std::vector<VideoResult> results;
      Classifier(model, opt).run(items, [&](const VideoResult& r) { results.push_back(r); });
      return results;
    };
    const std::vector<VideoResult> in_order = classify(false, false),
                                   streams = classify(true, false), rows = classify(true, true);
    ASSERT_EQ(in_order.size(), paths.size());
    ASSERT_EQ(streams.size(), paths.size());
    ASSERT_EQ(rows.size(), paths.size());
    for (size_t v = 0; v < paths.size(); ++v) {
      SCOPED_TRACE(paths[v]);
      const VideoResult &a = in_order[v], &b = streams[v], &c = rows[v];
      EXPECT_EQ(a.ok(), paths[v].find("missing") == std::string::npos) << a.error;
      EXPECT_EQ(b.error, a.error);
      EXPECT_EQ(b.frames, a.frames);
      EXPECT_EQ(b.counts, a.counts);
      EXPECT_EQ(b.label, a.label);
      for (size_t k = 0; k < a.mean_probs.size(); ++k)
        EXPECT_NEAR(b.mean_probs[k], a.mean_probs[k], 1e-6);
      if (!c.ok()) continue;
      ASSERT_EQ(int64_t(c.frame_rows.size()), c.frames);
      std::vector<int64_t> tally(c.counts.size(), 0);
      std::vector<double> sums(c.counts.size(), 0.0);
      for (const FrameResult& f : c.frame_rows) {
        ++tally[f.label];
        for (size_t k = 0; k < sums.size(); ++k) sums[k] += f.probs[k];
      }
      EXPECT_EQ(c.counts, tally);
      for (size_t k = 0; k < sums.size(); ++k)
        EXPECT_NEAR(c.mean_probs[k], sums[k] / double(c.frames), 1e-6);
    }
  }
}

// Grad-CAM on an engine with the CUDA backend (Engine::explain_frames: the frame stage on the
// device up to conv5_3, the head and the map from its activations) against the CPU engine's, on
// real frames, both heads, every precision, explaining the CPU's top class on both. Bounds on the
// relative L2 of the maps: fp32 1e-4 (the PyTorch test's), tf32 2e-2, fp16/bf16 5e-2 (first
// guesses, to be read off the printed figures on a device).
TEST(CudaBackend, GradcamMatchesCpuOnRealFrames) {
  REQUIRE_CUDA_DEVICE();
  SeedTrace trace;
  std::string why;
  std::vector<Frame> frames = real_frames(&why);
  if (frames.empty()) GTEST_SKIP() << why;
  if (frames.size() > 12) frames.resize(12);
  std::vector<ImageView> views;
  std::vector<CropRect> crops;
  for (const Frame& f : frames) {
    views.push_back(f.view());
    crops.push_back(centre_square(f));
  }
  const fs::path dir = temp_dir("cuda-gradcam");
  for (const char* card : {"ravdess-vgg16", "torchvision-vgg16"}) {
    const std::string path = card_weights(dir, card).second;
    EngineOptions cpu_opts;
    cpu_opts.backend.device = DeviceChoice::Cpu;
    cpu_opts.backend.conv_impl = ConvImpl::Onednn;  // direct, as the whole-network test
    cpu_opts.explain = true;
    cpu_opts.max_batch = 5;
    Engine cpu_engine(Weights::load(path), cpu_opts);
    const std::vector<int> top(frames.size(), -1);
    const std::vector<FrameExplanation> want = cpu_engine.explain_frames(views, crops, top);
    std::vector<int> classes;
    for (const FrameExplanation& e : want) classes.push_back(e.cls);
    for (const char* precision : kPrecisions) {
      EngineOptions gpu_opts;
      gpu_opts.backend = gpu_options(precision);
      gpu_opts.explain = true;
      gpu_opts.max_batch = 7;  // batches of another size than the CPU's
      Engine gpu_engine(Weights::load(path), gpu_opts);
      const std::vector<FrameExplanation> got = gpu_engine.explain_frames(views, crops, classes);
      ASSERT_EQ(got.size(), want.size());
      double err2 = 0, ref2 = 0;
      for (size_t f = 0; f < want.size(); ++f) {
        ASSERT_EQ(got[f].cls, classes[f]);
        ASSERT_EQ(got[f].map.size(), want[f].map.size());
        for (size_t i = 0; i < want[f].map.size(); ++i) {
          ASSERT_TRUE(std::isfinite(got[f].map[i])) << "frame " << f << " pixel " << i;
          err2 += std::pow(double(got[f].map[i]) - want[f].map[i], 2);
          ref2 += std::pow(double(want[f].map[i]), 2);
        }
      }
      const double rel = std::sqrt(err2 / std::max(ref2, 1e-30));
      const double bound = std::string(precision) == "fp32"   ? 1e-4
                           : std::string(precision) == "tf32" ? 2e-2
                                                              : 5e-2;
      std::printf("[ gradcam  ] %s %s: %zu frames, relative L2 of the maps %.2e (bound %.0e)\n",
                  card, precision, want.size(), rel, bound);
      EXPECT_LE(rel, bound) << card << " " << precision;
    }
  }
}

}  // namespace
}  // namespace fervid::test
