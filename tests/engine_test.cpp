// The public API (fervid/fervid.h) as a program uses it: an Engine made once, runs over paths and
// over frames in memory, results in input order with the progress, notices through the sink, and
// in-memory frames classified one by one giving what the same frames give as a video's rows.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "backends/cpu/conv_policy.h"
#include "backends/cpu/cpu_backend.h"
#include "backends/cuda/conv_policy.h"
#include "backends/cuda/cuda_probe.h"
#include "cpu/ops.h"
#include "fervid/fervid.h"
#include "model.h"
#include "network_compare.h"
#include "test_util.h"

namespace fervid::test {
namespace {

namespace fs = std::filesystem;

ModelSpec engine_spec() {
  ModelSpec s = tiny_spec({"a", "b", "c"});
  s.vote = VoteMode::Majority;
  s.crop = "center";
  return s;
}

std::string tiny_weights() {
  const std::string path = (temp_dir("engine") / "tiny.safetensors").string();
  if (!fs::exists(path)) make_weights(engine_spec(), seed(), StDType::F32, path);
  return path;
}

// `n` random RGB frames of w x h in one buffer; the views point into it.
struct Frames {
  std::shared_ptr<std::vector<uint8_t>> pixels;
  std::vector<ImageView> views;
};
Frames random_frames(int n, int w, int h) {
  Frames f;
  f.pixels = std::make_shared<std::vector<uint8_t>>(size_t(n) * w * h * 3);
  for (auto& v : *f.pixels) v = uint8_t(rng()() & 0xff);
  for (int i = 0; i < n; ++i)
    f.views.push_back({f.pixels->data() + size_t(i) * w * h * 3, w, h, w * 3});
  return f;
}

EngineOptions cpu_options(int batch) {
  EngineOptions o;
  o.backend.device = DeviceChoice::Cpu;
  o.max_batch = batch;
  o.notify = [](const std::string& line) { ADD_FAILURE() << "unexpected notice: " << line; };
  return o;
}

TEST(Engine, FramesInMemoryAsAVideoAndOneByOneAgree) {
  SeedTrace trace;
  Engine engine(load_weights(tiny_weights()), cpu_options(4));
  EXPECT_EQ(engine.backend_name(), "cpu");
  EXPECT_EQ(engine.precision(), Precision::Fp32);
  ClassifyOptions opt = engine.default_options();
  EXPECT_EQ(opt.vote, VoteMode::Majority);  // the card's
  EXPECT_EQ(opt.crop.mode, CropSpec::Mode::Center);
  EXPECT_EQ(opt.batch, 4);
  opt.keep_frames = true;
  opt.keep_logits = true;
  const Frames frames = random_frames(9, 40, 30);
  const std::vector<InputItem> inputs = {
      frames_input("clip", {frames.views, frames.pixels}),
      {std::string(FERVID_DATA_DIR) + "/faces/astronaut.png", InputKind::Image},
      {"/no/such.mp4", InputKind::Invalid, "no such file or directory"}};
  std::vector<VideoResult> results;
  std::vector<Progress> progress;
  const RunStats stats = engine.classify(inputs, opt, [&](const VideoResult& r, const Progress& p) {
    results.push_back(r);
    progress.push_back(p);
  });
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(stats.frames, 10);
  EXPECT_EQ(stats.videos_failed, 1);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(progress[i].videos_done, i + 1);
    EXPECT_EQ(progress[i].videos_total, 3u);
  }
  EXPECT_EQ(progress[2].frames, 10);
  const VideoResult& clip = results[0];
  ASSERT_TRUE(clip.ok()) << clip.error;
  EXPECT_EQ(clip.path, "clip");
  EXPECT_EQ(clip.frames, 9);
  EXPECT_FALSE(results[2].ok());

  const FrameScores one_by_one = engine.classify_frames(frames.views, opt.crop);
  ASSERT_EQ(one_by_one.frames, 9);
  ASSERT_EQ(one_by_one.classes, 3);
  ASSERT_EQ(clip.frame_rows.size(), 9u);
  // The same frames in other batches (the video's last frame shares one with the image): equal
  // to float rounding (the GEMM's blocking follows the batch size), the same label unless the
  // top two are closer than that.
  std::vector<int64_t> counts(3, 0);
  for (int f = 0; f < 9; ++f) {
    const FrameResult& row = clip.frame_rows[f];
    EXPECT_EQ(row.frame_index, f);
    ++counts[row.label];
    std::vector<float> p(row.probs);
    std::sort(p.rbegin(), p.rend());
    if (p[0] - p[1] > 1e-5) {
      EXPECT_EQ(row.label, one_by_one.labels[f]) << "frame " << f;
    }
    for (int c = 0; c < 3; ++c) {
      EXPECT_NEAR(row.probs[c], one_by_one.probs[f * 3 + c], 1e-6) << "frame " << f;
      EXPECT_NEAR(row.logits[c], one_by_one.logits[f * 3 + c], 1e-5 * (1 + std::abs(row.logits[c])))
          << "frame " << f;
    }
  }
  EXPECT_EQ(clip.counts, counts);
}

// The face stage's backend path (FacesOptions::FramePath::Backend) on the CPU backend, whose
// memory is the host's: a RAVDESS clip's frames kept in YUV 4:2:0, letterboxed and their faces
// cut by the backend's face ops (what the GPU runs), against the host path on swscale's RGB
// (within 3 levels of the YUV's own conversion): the same rows and tracks, boxes and angles
// within that rounding. And every classified face's scores are exactly classify_frames' for the
// aligned face cut on the host from the same frame's YUV pixels with the row's own box and
// angle: the right crop reached the right row.
TEST(Faces, TheBackendPathTracksAsTheHostPathAndClassifiesEachRowsOwnFace) {
  FERVID_NEED_RAVDESS();
  const std::string detector = CropSpec{}.detector_file();
  if (!fs::exists(detector))
    GTEST_SKIP() << "no face detector at " << detector << " (tools/setup.sh writes it)";
  Engine engine(load_weights(tiny_weights()), cpu_options(4));
  const InputItem clip =
      expand_inputs({test_data_dir() + "/ravdess/modified/01-01-08-02-01-01-19.mp4"}, nullptr)[0];
  FacesOptions o;
  o.sampling.max_frames = 8;
  o.batch = 3;  // batches of 3, 3 and 2 frames
  o.frame_path = FacesOptions::FramePath::Backend;
  FaceTracking there(detector, o);
  o.frame_path = FacesOptions::FramePath::Host;
  FaceTracking host(detector, o);
  EXPECT_TRUE(there.frames_on_backend(&engine));
  EXPECT_FALSE(host.frames_on_backend(&engine));
  const VideoFaces got = there.run(clip, &engine), want = host.run(clip, &engine);
  ASSERT_TRUE(got.ok() && want.ok()) << got.error << want.error;
  ASSERT_EQ(got.rows.size(), want.rows.size());
  for (size_t i = 0; i < got.rows.size(); ++i) {
    const FaceRow &g = got.rows[i], &w = want.rows[i];
    SCOPED_TRACE("row " + std::to_string(i));
    ASSERT_EQ(g.frame_index, w.frame_index);
    ASSERT_EQ(g.track, w.track);
    for (auto [a, b] : {std::pair{g.x, w.x}, {g.y, w.y}, {g.w, w.w}, {g.h, w.h}})
      EXPECT_NEAR(a, b, 2.0);
    EXPECT_NEAR(g.angle, w.angle, 0.03);
  }
  // The same frames in YUV, in RGB by the YUV ops' own conversion.
  SamplingOptions sampling = o.sampling;
  sampling.keep_yuv = true;
  std::unique_ptr<FrameSource> source = open_frames(clip, sampling);
  std::map<int64_t, std::vector<uint8_t>> rgb;
  int width = 0, height = 0;
  for (Frame f; source->next(f);) {
    ASSERT_TRUE(f.is_yuv) << "the clip's frames should come in YUV 4:2:0";
    width = f.width;
    height = f.height;
    const YuvView v = f.yuv_view();
    const YuvCoefficients k = yuv_coefficients(f.color);
    std::vector<uint8_t>& out = rgb[f.index];
    out.resize(size_t(width) * height * 3);
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x) {
        float px[3];
        cpu::yuv_pixel_rgb(v, k, x, y, px);
        for (int c = 0; c < 3; ++c) out[(size_t(y) * width + x) * 3 + c] = uint8_t(px[c]);
      }
  }
  const int side = engine.face_crop_size();
  std::vector<std::vector<uint8_t>> crops;
  std::vector<ImageView> views;
  std::vector<const FaceRow*> classified;
  for (const FaceRow& r : got.rows) {
    if (r.track == 0) continue;
    ASSERT_GE(r.label, 0) << "every tracked face is classified (FaceChoice::All)";
    crops.emplace_back(size_t(side) * side * 3);
    aligned_face({rgb.at(r.frame_index).data(), width, height, width * 3}, r, o.margin, side,
                 crops.back().data());
    classified.push_back(&r);
  }
  ASSERT_GE(classified.size(), 6u) << "the clip's frames should hold a face";
  for (const auto& c : crops) views.push_back({c.data(), side, side, side * 3});
  const FrameScores s = engine.classify_frames(views, CropSpec{});
  for (size_t i = 0; i < classified.size(); ++i) {
    EXPECT_EQ(classified[i]->label, s.labels[i]) << "face " << i;
    for (int c = 0; c < s.classes; ++c)
      EXPECT_NEAR(classified[i]->probs[size_t(c)], s.probs[i * s.classes + c], 1e-6)
          << "face " << i << " class " << c;
  }
  // NVDEC's frames stay on a GPU: asked for where the frames are cut on the host, refused.
  o.decoder = DecoderChoice::Nvdec;
  const VideoFaces refused = FaceTracking(detector, o).run(clip, &engine);
  EXPECT_NE(refused.error.find("nvdec"), std::string::npos) << refused.error;
  o.decoder = DecoderChoice::Auto;
  // Auto keeps the host path where the detector is not on the GPU.
  if (cuda_device_available(nullptr)) return;
  o.frame_path = FacesOptions::FramePath::Auto;
  EXPECT_FALSE(FaceTracking(detector, o).frames_on_backend(&engine))
      << "auto keeps the host path on the CPU";
}

TEST(Engine, BadFramesAndBadOptionsFailInOneLine) {
  SeedTrace trace;
  EngineOptions zero = cpu_options(0);
  EXPECT_THROW(Engine(load_weights(tiny_weights()), zero), Error);
  Engine engine(load_weights(tiny_weights()), cpu_options(2));
  const ImageView empty{};
  try {
    engine.classify_frames({&empty, 1}, CropSpec::parse("full"));
    ADD_FAILURE() << "an empty frame was classified";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "frame 0: not an 8-bit RGB image (0x0, stride 0)");
  }
  // A frame list with a bad frame is an error row, and the run goes on.
  Frames ok = random_frames(2, 8, 8);
  std::vector<ImageView> views = ok.views;
  views.insert(views.begin() + 1, empty);
  ClassifyOptions opt = engine.default_options();
  opt.batch = 3;
  EXPECT_THROW(engine.classify({}, opt, [](const VideoResult&, const Progress&) {}), Error);
  opt.batch = 2;
  std::vector<VideoResult> rows;
  engine.classify(
      {frames_input("bad", {views, ok.pixels}), frames_input("good", {ok.views, ok.pixels})}, opt,
      [&](const VideoResult& r, const Progress&) { rows.push_back(r); });
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].error, "bad: frame 1: not an 8-bit RGB image (0x0, stride 0)");
  EXPECT_TRUE(rows[1].ok()) << rows[1].error;
}

TEST(Engine, AutoTellsTheSinkWhyItTookTheCpu) {
  EngineOptions o;
  o.max_batch = 1;
  std::vector<std::string> notices;
  o.notify = [&](const std::string& line) { notices.push_back(line); };
  if (cuda_device_available(nullptr)) GTEST_SKIP() << "a GPU is present: auto takes it";
  Engine engine(load_weights(tiny_weights()), o);
  EXPECT_EQ(engine.backend_name(), "cpu");
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_NE(notices[0].find("using the CPU backend"), std::string::npos) << notices[0];
  // A GPU's --conv-impl is noticed, and the CPU backend takes its own.
  notices.clear();
  o.backend.conv_impl = ConvImpl::Cudnn;
  Engine cudnn(load_weights(tiny_weights()), o);
  EXPECT_EQ(cudnn.backend_name(), "cpu");
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_NE(notices[0].find("--conv-impl cudnn is for GPUs"), std::string::npos) << notices[0];
}

// Options are named by key in the engine's messages and worded by each front end; the engine's
// notices come in the wording its options ask for.
TEST(Wording, KeysBecomeFlagsOrKeywords) {
  EXPECT_EQ(in_words("{{max_frames}} -1: must be 0 or more", Wording::Cli),
            "--max-frames -1: must be 0 or more");
  EXPECT_EQ(in_words("{{max_frames}} -1: must be 0 or more", Wording::Python),
            "max_frames=-1: must be 0 or more");
  EXPECT_EQ(in_words("use {{conv_impl}} cudnn or {{precision}} fp16", Wording::Python),
            "use conv_impl=cudnn or precision=fp16");
  EXPECT_EQ(in_words("needs {{explain}}", Wording::Python), "needs Engine(..., explain=True)");
  // Not a key, or not closed: left as it is; a file's text keeps its braces.
  EXPECT_EQ(in_words("{{nope}} {x} {{batch", Wording::Cli), "{{nope}} {x} {{batch");
  EXPECT_EQ(in_words("a smaller {{batch}}", Wording::Python), "a smaller batch=");
  // Every key has both words, and no two keys share a flag.
  std::set<std::string> flags;
  for (size_t k = 0; k < kOptionWordCount; ++k) {
    const OptionWords& w = kOptionWords[k];
    EXPECT_TRUE(flags.insert(w.cli).second) << w.cli;
    EXPECT_EQ(in_words(std::string("{{") + w.key + "}}", Wording::Cli), w.cli);
    EXPECT_EQ(in_words(std::string("{{") + w.key + "}}", Wording::Python), w.python);
  }
  const OptionError e("{{stride}} 0: must be at least 1");
  EXPECT_STREQ(e.what(), "--stride 0: must be at least 1");
  EXPECT_EQ(e.words(Wording::Python), "stride=0: must be at least 1");
  // A prefix added on the way up keeps the keys.
  try {
    fail_within("layer conv1: ", e);
  } catch (const OptionError& up) {
    EXPECT_EQ(up.words(Wording::Python), "layer conv1: stride=0: must be at least 1");
  }
}

TEST(Plan, OptionsByKeyBecomeTheEnginesAndTheRunsOptions) {
  OptionValues v;
  v.device = "cpu";
  v.precision = "bf16";
  v.conv_impl = "onednn";
  v.cuda_graphs = false;
  v.batch = 4;
  v.stride = 3;
  v.max_frames = 7;
  v.fps = 2.5;
  v.crop = "full";
  v.vote = "majority";
  v.decoder = "cpu";
  v.decode_threads = 2;
  v.keep_logits = true;
  const Plan p = plan_of(v);
  EngineOptions e;
  p.fill(e);
  EXPECT_EQ(e.backend.device, DeviceChoice::Cpu);
  EXPECT_EQ(e.backend.precision, Precision::Bf16);
  EXPECT_EQ(e.backend.conv_impl, ConvImpl::Onednn);
  EXPECT_FALSE(e.backend.cuda_graphs);
  EXPECT_EQ(e.max_batch, 4);
  ModelSpec card = engine_spec();
  const ClassifyOptions r = p.for_card(card);
  EXPECT_EQ(r.batch, 4);
  EXPECT_EQ(r.sampling.stride, 3);
  EXPECT_EQ(r.sampling.max_frames, 7);
  EXPECT_EQ(r.sampling.fps, 2.5);
  EXPECT_EQ(r.crop.mode, CropSpec::Mode::Full);
  EXPECT_EQ(r.vote, VoteMode::Majority);
  EXPECT_EQ(r.decoder, DecoderChoice::Cpu);
  EXPECT_EQ(r.decode_threads, 2);
  EXPECT_TRUE(r.keep_frames && r.keep_logits);
  // Crop and vote not given: the card's.
  card.vote = VoteMode::Confidence;
  const ClassifyOptions d = plan_of({}).for_card(card);
  EXPECT_EQ(d.crop.mode, CropSpec::parse(card.crop).mode);
  EXPECT_EQ(d.vote, VoteMode::Confidence);
  EXPECT_EQ(plan_of({}).crop_text(card), card.crop);
  // Each bad value: one error naming its option by key.
  const std::pair<void (*)(OptionValues&), std::string> bad[] = {
      {[](OptionValues& o) { o.batch = 0; }, "{{batch}} 0: must be at least 1"},
      {[](OptionValues& o) { o.stride = 0; }, "{{stride}} 0: must be at least 1"},
      {[](OptionValues& o) { o.max_frames = -1; }, "{{max_frames}} -1"},
      {[](OptionValues& o) { o.decode_threads = 65; }, "{{decode_threads}} 65"},
      {[](OptionValues& o) { o.device = "tpu"; }, "{{device}} tpu"},
      {[](OptionValues& o) { o.precision = "fp8"; }, "{{precision}} fp8"},
      {[](OptionValues& o) { o.conv_impl = "fft"; }, "{{conv_impl}} fft"},
      {[](OptionValues& o) { o.decoder = "gpu"; }, "{{decoder}} gpu"},
      {[](OptionValues& o) { o.crop = "middle"; }, "{{crop}} middle"},
      {[](OptionValues& o) { o.vote = "loudest"; }, "unknown vote 'loudest'"},
  };
  for (const auto& [make_bad, start] : bad) {
    OptionValues o;
    make_bad(o);
    try {
      plan_of(o);
      ADD_FAILURE() << "accepted: " << start;
    } catch (const OptionError& e) {
      EXPECT_EQ(e.keyed().rfind(start, 0), 0u) << e.keyed();
    }
  }
}

TEST(Engine, NoticesInTheWordingAsked) {
  if (cuda_device_available(nullptr)) GTEST_SKIP() << "a GPU is present: no notice to word";
  EngineOptions o;
  o.max_batch = 1;
  o.backend.conv_impl = ConvImpl::Cudnn;
  o.wording = Wording::Python;
  std::vector<std::string> notices;
  o.notify = [&](const std::string& line) { notices.push_back(line); };
  Engine engine(load_weights(tiny_weights()), o);
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_NE(notices[0].find("conv_impl=cudnn is for GPUs"), std::string::npos) << notices[0];
  for (const Engine::LayerInfo& l : engine.layers())
    EXPECT_EQ(l.why.find("{{"), std::string::npos) << l.why;
}

// The rule of the whole-network tests (tests/network_compare.h) on made-up logits: a flip counts
// against a precision only where the reference's margin is wider than its bound can close.
TEST(TopOneAgreement, JudgesOnlyMarginsTheBoundCannotClose) {
  // Frame 0: margin 4 of norm 5.1, judged at fp16's 2e-2 (it needs > 0.29). Frame 1: margin
  // 0.01 of norm 1.4, not judged (it needs > 0.08).
  const std::vector<float> want = {5, 1, 0, 1.0f, 0.99f, 0};
  const double bound = network_bound("fp16");
  const std::vector<float> same = {4.9f, 1.1f, 0, 0.999f, 0.995f, 0};
  const std::vector<float> loose = {4.9f, 1.1f, 0, 0.98f, 0.995f, 0};
  const std::vector<float> judged = {1, 5, 0, 1.0f, 0.99f, 0};
  const std::vector<float> nan = {std::nanf(""), 1, 0, 1.0f, 0.99f, 0};
  Agreement a = top1_agreement(same, want, 3, bound);
  EXPECT_EQ(a.frames, 2);
  EXPECT_EQ(a.judged, 1);
  EXPECT_EQ(a.judged_flips + a.loose_flips, 0);
  a = top1_agreement(loose, want, 3, bound);
  EXPECT_EQ(a.judged_flips, 0);
  EXPECT_EQ(a.loose_flips, 1);
  EXPECT_EQ(top1_agreement(judged, want, 3, bound).judged_flips, 1);
  EXPECT_EQ(top1_agreement(nan, want, 3, bound).judged_flips, 1);
  // In fp32 (1e-5) frame 1 is judged too.
  EXPECT_EQ(top1_agreement(loose, want, 3, network_bound("fp32")).judged_flips, 1);
}

// The same rule on the CPU's bf16 against its fp32 (oneDNN direct): bf16 operands with f32 sums,
// the GPU's bf16 error model, on real frames and this run's random weights of both cards. Here
// frames do flip (untrained networks have narrow margins: one in 41 for two of six seeds when
// every flip counted; 0 to 2 of 20 per seed here), but never where the rule judges, and the
// logits stay within bf16's bound.
TEST(TopOneAgreement, CpuBf16FlipsOnlyWhereTheMarginAllows) {
  if (const std::string no = cpu::cpu_bf16_unavailable(); !no.empty()) GTEST_SKIP() << no;
  SeedTrace trace;
  std::string why;
  const std::vector<Frame> frames = real_frames(&why, 12);
  if (frames.empty()) GTEST_SKIP() << why;
  for (const char* card : {"ravdess-vgg16", "torchvision-vgg16"}) {
    const ModelSpec spec = resolve_card(card).first;
    const std::string path = (temp_dir("engine") / (std::string(card) + ".safetensors")).string();
    make_weights(spec, seed(), StDType::F32, path);
    const Weights weights = Weights::load(path);
    auto fp32 = cpu::make_cpu_backend(0, ConvImpl::Onednn);
    auto bf16 = cpu::make_cpu_backend(0, ConvImpl::Auto, Precision::Bf16);
    Model ref_model(weights, *fp32, 10), bf16_model(weights, *bf16, 10);
    const std::vector<float> want = logits_of(ref_model, frames),
                             got = logits_of(bf16_model, frames);
    const double rel = relative_l2(got, want), bound = network_bound("bf16");
    const Agreement top1 = top1_agreement(got, want, spec.num_classes(), bound);
    std::printf("[ bf16 cpu ] %s (%s): relative L2 of logits %.2e (bound %.0e), %s\n", card,
                bf16->device_name().c_str(), rel, bound, top1.describe().c_str());
    EXPECT_LE(rel, bound) << card;
    EXPECT_EQ(top1.judged_flips, 0) << card << ": " << top1.describe();
  }
}

// int8 against fp32 on real frames: each card's random weights calibrated (Engine::calibrate_int8)
// on every 9th frame of the shared videos, then both networks run on real_frames (other frames of
// the same videos). The logits stay within the bound measured for int8 here, and no frame flips
// where that bound cannot close the margin. Calibrated activations are u8 between the int8
// layers (docs/int8.md), so this covers the whole chain, pools included.
TEST(TopOneAgreement, CpuInt8FlipsOnlyWhereTheMarginAllows) {
  if (const std::string no = cpu::cpu_int8_unavailable(); !no.empty()) GTEST_SKIP() << no;
  SeedTrace trace;
  std::string why;
  const std::vector<Frame> frames = real_frames(&why, 12);
  if (frames.empty()) GTEST_SKIP() << why;
  std::vector<InputItem> calibration;
  for (const char* clip : {"/video/astronaut-720p.mp4", "/video/vtest.avi"})
    calibration.push_back({test_data_dir() + clip, InputKind::Video, ""});
  // int8's bound: the worst relative L2 seen over twelve seeds was 6.1e-2 (torchvision-vgg16's
  // random weights; 0.9e-2 to 3.2e-2 for the study's): about 1.6x that (docs/int8.md).
  constexpr double kInt8Bound = 1e-1;
  for (const char* card : {"ravdess-vgg16", "torchvision-vgg16"}) {
    const ModelSpec spec = resolve_card(card).first;
    const std::string path = (temp_dir("engine") / (std::string(card) + ".safetensors")).string();
    make_weights(spec, seed(), StDType::F32, path);
    EngineOptions eo;
    eo.backend.device = DeviceChoice::Cpu;
    eo.max_batch = 4;
    Engine fp32_engine(Weights::load(path), eo);
    CropSpec full;
    const Engine::Int8Calibration cal = fp32_engine.calibrate_int8(calibration, {9, 0}, full, 16);
    ASSERT_EQ(cal.frames, 16) << card;
    // Every conv layer but the first, and the first too where the image stays >= 0.
    const bool image_int8 = spec.preprocess.mean[0] <= 0;
    ASSERT_EQ(cal.scales.size(), spec.conv_layers().size() - (image_int8 ? 0 : 1)) << card;
    if (image_int8) {
      EXPECT_FLOAT_EQ(cal.scales.at("conv1_1"), 1.0f / 255) << card;
    }
    Weights weights = Weights::load(path);
    weights.spec.int8_scales = cal.scales;
    auto fp32 = cpu::make_cpu_backend(0, ConvImpl::Onednn);
    auto int8 = cpu::make_cpu_backend(0, ConvImpl::Auto, Precision::Int8);
    Model ref_model(weights, *fp32, 10), int8_model(weights, *int8, 10);
    const std::vector<float> want = logits_of(ref_model, frames),
                             got = logits_of(int8_model, frames);
    const double rel = relative_l2(got, want);
    const Agreement top1 = top1_agreement(got, want, spec.num_classes(), kInt8Bound);
    std::printf("[ int8 cpu ] %s (%s): relative L2 of logits %.2e (bound %.0e), %s\n", card,
                int8->device_name().c_str(), rel, kInt8Bound, top1.describe().c_str());
    EXPECT_LE(rel, kInt8Bound) << card;
    EXPECT_EQ(top1.judged_flips, 0) << card << ": " << top1.describe();
  }
}

// A card without calibration is refused under int8 in one line naming fervid calibrate.
TEST(Int8, WeightsWithoutScalesAreRefusedInOneLine) {
  if (const std::string no = cpu::cpu_int8_unavailable(); !no.empty()) GTEST_SKIP() << no;
  const ModelSpec spec = resolve_card("ravdess-vgg16").first;
  const std::string path = (temp_dir("engine") / "uncalibrated.safetensors").string();
  make_weights(spec, 1, StDType::F32, path);
  EngineOptions eo;
  eo.backend.device = DeviceChoice::Cpu;
  eo.backend.precision = Precision::Int8;
  try {
    Engine engine(Weights::load(path), eo);
    ADD_FAILURE() << "int8 without scales was accepted";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("conv1_2"), std::string::npos) << m;
    EXPECT_NE(m.find("fervid calibrate"), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
}

// The card's int8 block: read back as written, and refused where it names no conv layer or a
// scale that is no positive number.
TEST(Int8, CardScalesRoundTripAndBadOnesAreRefused) {
  ModelSpec spec = resolve_card("ravdess-vgg16").first;
  spec.int8_scales = {{"conv1_2", 0.0125f}, {"conv5_3", 0.5f}};
  spec.int8_frames = 64;
  const ModelSpec back = ModelSpec::from_json(spec.to_json(), "card");
  EXPECT_EQ(back.int8_scales, spec.int8_scales);
  EXPECT_EQ(back.int8_frames, 64);
  nlohmann::json j = spec.to_json();
  j["int8"]["input_scales"]["fc1"] = 0.1;
  EXPECT_THROW(ModelSpec::from_json(j, "card"), Error);
  j = spec.to_json();
  j["int8"]["input_scales"]["conv2_1"] = -1;
  EXPECT_THROW(ModelSpec::from_json(j, "card"), Error);
  j = spec.to_json();
  j["int8"] = "yes";
  EXPECT_THROW(ModelSpec::from_json(j, "card"), Error);
}

// The CPU backend's conv choice as a table (engine/backends/cpu/conv_policy.h): what each
// --conv-impl and --precision gives on CPUs with and without oneDNN, bf16 and Winograd, or the
// one-line refusal; and each layer's math by its input channels.
TEST(ConvPolicy, CpuTable) {
  cpu::CpuFeatures full{true, "", "", "", ""},
      no_avx512{true, "no AVX512_BF16", "needs AVX-512", "", "no VNNI"},
      slow_bf16{true, "", "", "VDPBF16PS at half the FMA rate", ""},
      no_onednn{false, "x", "y", "", "z"};
  using M = cpu::CpuConvMath;
  struct Row {
    ConvImpl impl;
    Precision precision;
    const cpu::CpuFeatures* cpu;
    std::string refusal;  // a part of the message; "" for accepted
    M small, large;       // the math of a 3-channel and a 256-channel layer
  };
  const Row rows[] = {
      {ConvImpl::Auto, Precision::Fp32, &full, "", M::Fp32, M::Winograd},
      {ConvImpl::Auto, Precision::Fp32, &no_avx512, "", M::Fp32, M::Fp32},
      {ConvImpl::Auto, Precision::Fp32, &no_onednn, "", M::Blas, M::Blas},
      {ConvImpl::Auto, Precision::Bf16, &full, "", M::Fp32, M::Bf16},
      {ConvImpl::Auto, Precision::Bf16, &slow_bf16, "", M::Fp32, M::Bf16OnFma},
      {ConvImpl::Onednn, Precision::Bf16, &slow_bf16, "", M::Fp32, M::Bf16},
      {ConvImpl::Onednn, Precision::Fp32, &full, "", M::Fp32, M::Fp32},
      {ConvImpl::Winograd, Precision::Fp32, &full, "", M::Fp32, M::Winograd},
      {ConvImpl::Blas, Precision::Default, &full, "", M::Blas, M::Blas},
      {ConvImpl::Winograd, Precision::Fp32, &no_avx512, "--conv-impl winograd: needs AVX-512",
       M::Blas, M::Blas},
      {ConvImpl::Onednn, Precision::Fp32, &no_onednn, "this build has no oneDNN", M::Blas, M::Blas},
      {ConvImpl::Auto, Precision::Bf16, &no_avx512, "--precision bf16 on the CPU: no AVX512_BF16",
       M::Blas, M::Blas},
      {ConvImpl::Blas, Precision::Bf16, &full, "not --conv-impl blas", M::Blas, M::Blas},
      {ConvImpl::Winograd, Precision::Bf16, &full, "oneDNN has no bf16 Winograd", M::Blas, M::Blas},
      {ConvImpl::Auto, Precision::Fp16, &full, "--precision fp16: the CPU backend computes in",
       M::Blas, M::Blas},
      {ConvImpl::Igemm, Precision::Default, &full, "--conv-impl fervid is the CUDA backend's",
       M::Blas, M::Blas},
      {ConvImpl::Cudnn, Precision::Fp32, &full, "--conv-impl cudnn is the CUDA backend's", M::Blas,
       M::Blas},
      {ConvImpl::Auto, Precision::Int8, &full, "", M::Fp32, M::Int8},
      {ConvImpl::Onednn, Precision::Int8, &slow_bf16, "", M::Fp32, M::Int8},
      {ConvImpl::Auto, Precision::Int8, &no_avx512, "--precision int8 on the CPU: no VNNI", M::Blas,
       M::Blas},
      {ConvImpl::Blas, Precision::Int8, &full, "int8 runs the convolutions on oneDNN", M::Blas,
       M::Blas},
      {ConvImpl::Winograd, Precision::Int8, &full, "winograd computes in fp32", M::Blas, M::Blas},
      {ConvImpl::Auto, Precision::Int8, &no_onednn, "--precision int8 on the CPU: z", M::Blas,
       M::Blas}};
  for (const Row& r : rows) {
    const std::string what = std::string(conv_impl_name(r.impl)) + " " +
                             precision_name(r.precision) + " (row " + std::to_string(&r - rows) +
                             ")";
    try {
      const cpu::CpuConvPolicy p = cpu::resolve_cpu_conv(r.impl, r.precision, *r.cpu);
      EXPECT_EQ(r.refusal, "") << what << " was accepted";
      EXPECT_EQ(p.for_layer(3).math, r.small) << what;
      EXPECT_EQ(p.for_layer(256).math, r.large) << what;
      EXPECT_FALSE(p.for_layer(256).why.empty()) << what;
    } catch (const Error& e) {
      EXPECT_NE(r.refusal, "") << what << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find(r.refusal), std::string::npos)
          << what << ": " << e.what();
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    }
  }
}

// int8 on a layer of few channels: only where the card has its scale (an image kept >= 0).
TEST(ConvPolicy, Int8TakesTheImageLayerOnlyWithItsScale) {
  const cpu::CpuFeatures full{true, "", "", "", ""};
  const cpu::CpuConvPolicy p = cpu::resolve_cpu_conv(ConvImpl::Auto, Precision::Int8, full);
  EXPECT_EQ(p.for_layer(3, true).math, cpu::CpuConvMath::Int8);
  const cpu::CpuLayerConv plain = p.for_layer(3, false);
  EXPECT_EQ(plain.math, cpu::CpuConvMath::Fp32);
  EXPECT_NE(plain.why.find("unless the card has its scale"), std::string::npos) << plain.why;
  EXPECT_EQ(p.for_layer(64, false).math, cpu::CpuConvMath::Int8);  // refused when prepared
}

// The CUDA backend's (engine/backends/cuda/conv_policy.h), needing no device.
TEST(ConvPolicy, CudaTable) {
  struct Row {
    ConvImpl impl;
    Precision precision;
    std::string refusal;
    CudaConvMode mode;
  };
  const Row rows[] = {
      {ConvImpl::Auto, Precision::Default, "", CudaConvMode::Timed},
      {ConvImpl::Auto, Precision::Bf16, "", CudaConvMode::Timed},
      {ConvImpl::Auto, Precision::Fp32, "", CudaConvMode::Cudnn},
      {ConvImpl::Auto, Precision::Tf32, "", CudaConvMode::Cudnn},
      {ConvImpl::Cudnn, Precision::Fp16, "", CudaConvMode::Cudnn},
      {ConvImpl::Igemm, Precision::Bf16, "", CudaConvMode::Igemm},
      {ConvImpl::Igemm, Precision::Fp32, "computes in fp16 or bf16, not fp32", CudaConvMode::Cudnn},
      {ConvImpl::Igemm, Precision::Tf32, "computes in fp16 or bf16, not tf32", CudaConvMode::Cudnn},
      {ConvImpl::Winograd, Precision::Fp16, "is the CPU backend's", CudaConvMode::Cudnn},
      {ConvImpl::Blas, Precision::Fp32, "is the CPU backend's", CudaConvMode::Cudnn},
      {ConvImpl::Auto, Precision::Int8, "int8 runs on the CPU backend", CudaConvMode::Cudnn}};
  for (const Row& r : rows) {
    const std::string what =
        std::string(conv_impl_name(r.impl)) + " " + precision_name(r.precision);
    try {
      const CudaConvPolicy p = resolve_cuda_conv(r.impl, r.precision);
      EXPECT_EQ(r.refusal, "") << what << " was accepted";
      EXPECT_EQ(p.mode, r.mode) << what;
    } catch (const Error& e) {
      EXPECT_NE(r.refusal, "") << what << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find(r.refusal), std::string::npos) << e.what();
    }
  }
}

// The cards as layer lists (network_of): the model loop runs these and nothing else.
TEST(Network, CardsAsLayerLists) {
  const std::vector<LayerDesc> study = network_of(resolve_card("ravdess-vgg16").first);
  ASSERT_EQ(study.size(), 13u + 1 + 3);
  EXPECT_EQ(study[0].name, "conv1_1");
  EXPECT_EQ(study[0].in_channels, 3);
  EXPECT_EQ(study[0].height, 224);
  EXPECT_EQ(study[1].output_shape(2, Layout::NHWC), (std::vector<int64_t>{2, 112, 112, 64}));
  EXPECT_EQ(study[12].name, "conv5_3");
  EXPECT_TRUE(study[12].pool);
  EXPECT_EQ(study[13].kind, LayerKind::GlobalAvgPool);
  EXPECT_EQ(study[13].output_shape(4, Layout::NHWC), (std::vector<int64_t>{4, 512}));
  EXPECT_EQ(study[14].in_channels, 512);
  EXPECT_EQ(study[14].height * study[14].width, 1);
  EXPECT_TRUE(study.back().logits);
  EXPECT_EQ(study.back().out_channels, 8);
  const std::vector<LayerDesc> tv = network_of(resolve_card("torchvision-vgg16").first);
  ASSERT_EQ(tv.size(), 13u + 3);
  EXPECT_EQ(tv[13].name, "fc1");  // fed by the flattened 7 x 7 x 512 activation
  EXPECT_EQ(tv[13].in_channels * tv[13].height * tv[13].width, 25088);
  EXPECT_EQ(tv[13].unpooled_elements(), 4096);
  EXPECT_EQ(plan_arena(tv).buffers, 2);
}

// The arena of a layer list with branches (what a detector's residual blocks and two heads
// describe through LayerDesc::inputs): no layer writes a buffer one of its inputs is in, no
// buffer is shared by two outputs alive at once, and outputs of the network get none.
TEST(Network, ArenaOfBranchesKeepsLiveOutputsApart) {
  auto layer = [](std::vector<int> inputs, bool output = false) {
    LayerDesc d;
    d.inputs = std::move(inputs);
    d.logits = output;
    return d;
  };
  // 0 <- input; 1 <- 0; 2 <- 0 (a branch); 3 <- 1, 2 (an add); 4 <- 3; 5 <- 3 (two heads).
  const std::vector<LayerDesc> net = {layer({-1}),   layer({0}),       layer({0}),
                                      layer({1, 2}), layer({3}, true), layer({3}, true)};
  const ArenaPlan plan = plan_arena(net);
  EXPECT_EQ(plan.buffer_of[4], -1);
  EXPECT_EQ(plan.buffer_of[5], -1);
  EXPECT_EQ(plan.buffers, 3);
  // Alive: 0 during 1-2, 1 during 2-3, 2 during 3, 3 during 4-5.
  EXPECT_NE(plan.buffer_of[1], plan.buffer_of[0]);
  EXPECT_NE(plan.buffer_of[2], plan.buffer_of[0]);
  EXPECT_NE(plan.buffer_of[2], plan.buffer_of[1]);
  EXPECT_NE(plan.buffer_of[3], plan.buffer_of[1]);
  EXPECT_NE(plan.buffer_of[3], plan.buffer_of[2]);
  // A chain uses two.
  EXPECT_EQ(plan_arena(std::vector<LayerDesc>{layer({}), layer({}), layer({}), layer({})}).buffers,
            2);
}

}  // namespace
}  // namespace fervid::test
