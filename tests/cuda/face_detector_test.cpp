// The face detector on the GPU (docs/faces.md) against the CPU's on real frames: DetectorNet's
// raw box and score tensors on the CUDA backend (fp32, fervid's direct kernels) against the CPU
// backend's on the same letterboxed frames, then `fervid faces`' tracking (FaceTracking) with the
// detector on the GPU against the CPU: the same rows, tracks and boxes. The face ops on YUV frames
// in device memory (letterbox, aligned crops: kernels/cuda/face_frames.cu) against the CPU's on
// random frames, and the one-pass backend path (frames cut on the GPU, classified there) against
// the same path on the CPU. The detector's weights are
// $FERVID_DETECTOR, else the file tools/setup.sh writes (the GPU bundle carries it); without them,
// or without a device, each test skips and says why.
#include "face_detector.h"

#include <filesystem>

#include "backends/cpu/cpu_backend.h"
#include "cuda_test_util.h"
#include "fervid/crop.h"
#include "fervid/faces.h"
#include "fervid/fervid.h"
#include "fervid/inputs.h"
#include "random_yuv.h"
#include "video.h"

namespace fervid::test {
namespace {

#define REQUIRE_DETECTOR(path)                         \
  const std::string path = CropSpec{}.detector_file(); \
  if (!std::filesystem::exists(path))                  \
  GTEST_SKIP() << "no face detector at " << path       \
               << " (tools/setup.sh writes it; FERVID_DETECTOR names another)"

std::vector<InputItem> real_inputs() {
  const std::string d = test_data_dir();
  return expand_inputs({d + "/faces/astronaut.png", d + "/faces/messi5.jpg",
                        d + "/ravdess/modified/01-01-08-02-01-01-19.mp4"},
                       nullptr);
}

// A few frames of each input, letterboxed as FaceTracking does ([n, S, S, 3] f32).
std::vector<float> letterboxed(int size, int* frames) {
  SamplingOptions sampling;
  sampling.max_frames = 3;
  std::vector<float> out;
  *frames = 0;
  for (const InputItem& item : real_inputs()) {
    std::unique_ptr<FrameSource> source = open_frames(item, sampling);
    for (Frame f; source->next(f); ++*frames) {
      out.resize(out.size() + size_t(size) * size * 3);
      letterbox_frame(f.view(), size, out.data() + out.size() - size_t(size) * size * 3);
    }
  }
  return out;
}

TEST(CudaFaceDetector, RawOutputsMatchTheCpuOnRealFrames) {
  REQUIRE_CUDA_DEVICE();
  REQUIRE_DETECTOR(path);
  const DetectorWeights weights = load_detector(path);
  int n = 0;
  const std::vector<float> input = letterboxed(weights.card.input_size, &n);
  ASSERT_GT(n, 4);
  std::vector<float> cpu_boxes, cpu_scores, gpu_boxes, gpu_scores;
  {
    auto cpu = cpu::make_cpu_backend(1, ConvImpl::Auto, Precision::Fp32);
    DetectorNet net(weights, *cpu, n);
    net.load_input(n, input.data());
    net.run(n);
    net.raw_outputs(n, cpu_boxes, cpu_scores);
  }
  {
    auto gpu = make_cuda_backend(gpu_options("fp32", "auto", false));
    DetectorNet net(weights, *gpu, n);
    net.load_input(n, input.data());
    net.run(n);
    net.raw_outputs(n, gpu_boxes, gpu_scores);
  }
  // f32 sums in another order: the bound detector_litert holds fervid's CPU to against LiteRT.
  auto compare = [](const std::vector<float>& want, const std::vector<float>& got,
                    const char* what) {
    ASSERT_EQ(want.size(), got.size()) << what;
    size_t bad = 0;
    for (size_t i = 0; i < want.size(); ++i)
      if (!(std::fabs(got[i] - want[i]) <= 2e-3 + 1e-4 * std::fabs(want[i])) && bad++ < 5)
        ADD_FAILURE() << what << "[" << i << "]: gpu " << got[i] << ", cpu " << want[i];
    EXPECT_EQ(bad, 0u) << what;
  };
  compare(cpu_boxes, gpu_boxes, "boxes");
  compare(cpu_scores, gpu_scores, "scores");
}

TEST(CudaFaceDetector, FacesTrackedOnTheGpuEqualTheCpus) {
  REQUIRE_CUDA_DEVICE();
  REQUIRE_DETECTOR(path);
  FacesOptions o;
  o.sampling.max_frames = 24;
  o.batch = 8;
  o.frame_path = FacesOptions::FramePath::Host;  // the same letterboxed frames on both
  FaceTracking cpu(path, o);
  o.detector_device = DeviceChoice::Cuda;
  FaceTracking gpu(path, o);
  ASSERT_EQ(cpu.detector_backend(), "cpu");
  ASSERT_EQ(gpu.detector_backend(), "cuda");
  size_t faces = 0;
  for (const InputItem& item : real_inputs()) {
    const VideoFaces want = cpu.run(item), got = gpu.run(item);
    ASSERT_TRUE(want.ok() && got.ok()) << want.error << got.error;
    ASSERT_EQ(want.rows.size(), got.rows.size()) << item.path;
    for (size_t i = 0; i < want.rows.size(); ++i) {
      const FaceRow &w = want.rows[i], &g = got.rows[i];
      SCOPED_TRACE(item.path + " row " + std::to_string(i));
      EXPECT_EQ(w.frame_index, g.frame_index);
      EXPECT_EQ(w.track, g.track);
      for (auto [a, b] : {std::pair{w.x, g.x}, {w.y, g.y}, {w.w, g.w}, {w.h, g.h}})
        EXPECT_NEAR(a, b, 0.5);
      EXPECT_NEAR(w.score, g.score, 1e-3);
      ASSERT_EQ(w.keypoints.size(), g.keypoints.size());
      for (size_t k = 0; k < w.keypoints.size(); ++k)
        EXPECT_NEAR(w.keypoints[k], g.keypoints[k], 0.5);
      faces += w.track > 0;
    }
  }
  EXPECT_GT(faces, 20u) << "the real frames should hold faces";
}

// A frame's planes copied into the backend's memory; the view reads them there.
struct FrameOnDevice {
  Buffer buffer;
  YuvView view;
  FrameOnDevice(Backend& be, const RandomYuv& f) {
    buffer = be.allocate(f.bytes.size());
    be.copy_from_host(Tensor::view(buffer, {int64_t(f.bytes.size())}, DType::U8), f.bytes.data());
    auto* base = static_cast<const uint8_t*>(buffer.data());
    view = f.view;
    view.y = base + (f.view.y - f.bytes.data());
    view.u = base + (f.view.u - f.bytes.data());
    view.v = base + (f.view.v - f.bytes.data());
    view.on_device = true;
  }
};

TEST(CudaFaceFrameOps, LetterboxAndFaceCropsEqualTheCpusOnRandomFrames) {
  REQUIRE_CUDA_DEVICE();
  auto gpu = make_cuda_backend(gpu_options("fp32", "auto", false));
  FaceFrameOps* ops = gpu->face_frame_ops();
  ASSERT_NE(ops, nullptr);
  RandomYuv a(301, 180, false, 21), b(97, 131, true, 22), c(640, 360, true, 23);
  const ColorSpec cs{true, false};
  std::vector<FrameOnDevice> on_device;
  on_device.reserve(3);
  for (const RandomYuv* f : {&a, &b, &c}) on_device.emplace_back(*gpu, *f);
  const std::vector<YuvView> host = {a.view, b.view, c.view};
  const std::vector<YuvView> dev = {on_device[0].view, on_device[1].view, on_device[2].view};

  // The letterbox: the same arithmetic on both sides (fervid/face_sample.h), so the same floats.
  const int size = 128;
  OwnedTensor want = host_tensor({3, size, size, 3}, DType::F32, Layout::NHWC);
  cpu::letterbox_yuv420(host, cs, want.tensor);
  OwnedTensor got = to_device(*gpu, want.tensor, DType::F32, /*poisoned=*/true);
  ops->letterbox_yuv420(dev, cs, got.tensor);
  const std::vector<float> lb = to_host(*gpu, got.tensor);
  size_t bad = 0;
  for (size_t i = 0; i < lb.size(); ++i)
    if (!(std::fabs(lb[i] - want.tensor.ptr<float>()[i]) <= 1e-6f) && bad++ < 5)
      ADD_FAILURE() << "letterbox[" << i << "]: gpu " << lb[i] << ", cpu "
                    << want.tensor.ptr<float>()[i];
  EXPECT_EQ(bad, 0u);

  // Faces of every kind (small and k x k, turned, partly outside), in each output dtype.
  std::mt19937 rng(24);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  std::vector<FaceSquare> faces;
  for (int i = 0; i < 20; ++i) {
    const RandomYuv& f = i % 3 == 0 ? a : i % 3 == 1 ? b : c;
    FaceRow r;
    r.w = 10 + 150 * unit(rng);
    r.h = r.w * (0.8f + 0.4f * unit(rng));
    r.x = -10 + (f.w - r.w + 20) * unit(rng);
    r.y = -10 + (f.h - r.h + 20) * unit(rng);
    r.angle = -0.7f + 1.4f * unit(rng);
    faces.push_back(face_square(r, 0.25, i % 3));
  }
  Preprocess pp;
  pp.mean = {0.485f, 0.456f, 0.406f};
  pp.std = {0.229f, 0.224f, 0.225f};
  pp.resize = 256;
  const int crop = 256, input = 224;
  OwnedTensor ref = host_tensor({int64_t(faces.size()), input, input, 3}, DType::F32, Layout::NHWC);
  cpu::face_crops_yuv420(host, faces, crop, cs, pp, ref.tensor);
  for (const char* precision : {"fp32", "fp16", "bf16"}) {
    SCOPED_TRACE(precision);
    OwnedTensor out = to_device(*gpu, ref.tensor, dtype_of(precision), /*poisoned=*/true);
    ops->face_crops_yuv420(dev, faces, crop, cs, pp, out.tensor);
    const std::vector<float> g = to_host(*gpu, out.tensor);
    const std::vector<double> w = rounded_like(precision, as_f64(ref.tensor));
    // The same arithmetic as the CPU's: the same bytes, then the dtype's rounding of the same
    // f32 value. One byte level (1 / 255 / std, about 0.018) is allowed in one value in a
    // thousand, should a double sum round the other way on the device.
    size_t off = 0, wrong = 0;
    for (size_t i = 0; i < g.size(); ++i) {
      const double d = std::fabs(g[i] - w[i]);
      if (d <= 1e-6 + 1e-6 * std::fabs(w[i])) continue;
      ++off;
      if (!(d <= 0.02 + 8e-3 * std::fabs(w[i])) && wrong++ < 5)
        ADD_FAILURE() << "crop value " << i << ": gpu " << g[i] << ", cpu " << w[i];
    }
    EXPECT_EQ(wrong, 0u);
    EXPECT_LE(off, g.size() / 1000) << "values a byte level off";
  }
}

// The one-pass path (FacesOptions::FramePath::Backend, Auto on the GPU): a clip's frames uploaded
// once as YUV, letterboxed, detected, their faces cut and classified on the GPU, only boxes and
// scores coming back; against the same path on the CPU backend (which engine_test holds to the
// host path): the same rows, boxes, angles and classes.
TEST(CudaFaceDetector, TheOnePassPathOnTheGpuEqualsTheCpus) {
  REQUIRE_CUDA_DEVICE();
  REQUIRE_DETECTOR(path);
  const std::string weights = (temp_dir("cuda_faces") / "tiny.safetensors").string();
  make_weights(tiny_spec(), seed(), StDType::F32, weights);
  EngineOptions eo;
  eo.max_batch = 4;
  eo.backend.device = DeviceChoice::Cpu;
  Engine cpu_engine(load_weights(weights), eo);
  eo.backend = gpu_options("fp32");
  Engine gpu_engine(load_weights(weights), eo);
  FacesOptions o;
  o.sampling.max_frames = 12;
  o.batch = 5;
  o.frame_path = FacesOptions::FramePath::Backend;
  FaceTracking cpu(path, o);
  o.detector_device = DeviceChoice::Cuda;
  o.frame_path = FacesOptions::FramePath::Auto;
  o.decoder = DecoderChoice::Cpu;  // the same decoder's frames on both sides (NVDEC: below)
  FaceTracking gpu(path, o);
  ASSERT_TRUE(gpu.frames_on_backend(&gpu_engine)) << "auto cuts frames on the GPU";
  FacesOptions forced = o;
  forced.frame_path = FacesOptions::FramePath::Backend;
  EXPECT_THROW(FaceTracking(path, forced).frames_on_backend(&cpu_engine), Error)
      << "a classifier on the CPU cannot read the GPU's frames";
  size_t classified = 0;
  for (const InputItem& item : real_inputs()) {
    const VideoFaces want = cpu.run(item, &cpu_engine), got = gpu.run(item, &gpu_engine);
    ASSERT_TRUE(want.ok() && got.ok()) << want.error << got.error;
    ASSERT_EQ(want.rows.size(), got.rows.size()) << item.path;
    for (size_t i = 0; i < want.rows.size(); ++i) {
      const FaceRow &w = want.rows[i], &g = got.rows[i];
      SCOPED_TRACE(item.path + " row " + std::to_string(i));
      EXPECT_EQ(w.track, g.track);
      for (auto [x, y] : {std::pair{w.x, g.x}, {w.y, g.y}, {w.w, g.w}, {w.h, g.h}})
        EXPECT_NEAR(x, y, 0.5);
      EXPECT_NEAR(w.angle, g.angle, 0.01);
      ASSERT_EQ(w.probs.size(), g.probs.size());
      for (size_t k = 0; k < w.probs.size(); ++k) EXPECT_NEAR(w.probs[k], g.probs[k], 1e-3);
      classified += g.label >= 0;
    }
  }
  EXPECT_GT(classified, 10u) << "the real frames should hold faces";
}

// The one-pass path with NVDEC's frames (decoded into the detector backend's frame sink, never on
// the host) against libavcodec's uploaded once: H.264 decodes to the same samples, so the same
// rows. Skips where the driver has no NVDEC.
TEST(CudaFaceDetector, NvdecFramesGiveTheRowsOfCpuDecodedOnes) {
  REQUIRE_CUDA_DEVICE();
  REQUIRE_DETECTOR(path);
  std::string why;
  if (choose_decoder(DecoderChoice::Auto, true, false, &why) != DecoderKind::Nvdec)
    GTEST_SKIP() << why;
  const std::string weights = (temp_dir("cuda_faces_nvdec") / "tiny.safetensors").string();
  make_weights(tiny_spec(), seed(), StDType::F32, weights);
  EngineOptions eo;
  eo.max_batch = 4;
  eo.backend = gpu_options("fp32");
  Engine engine(load_weights(weights), eo);
  FacesOptions o;
  o.sampling.max_frames = 16;
  o.batch = 6;
  o.detector_device = DeviceChoice::Cuda;
  o.decoder = DecoderChoice::Cpu;
  FaceTracking uploaded(path, o);
  o.decoder = DecoderChoice::Nvdec;
  FaceTracking nvdec(path, o);
  const InputItem clip = real_inputs().back();  // the RAVDESS clip
  const VideoFaces want = uploaded.run(clip, &engine), got = nvdec.run(clip, &engine);
  ASSERT_TRUE(want.ok() && got.ok()) << want.error << got.error;
  ASSERT_EQ(want.rows.size(), got.rows.size());
  for (size_t i = 0; i < want.rows.size(); ++i) {
    const FaceRow &w = want.rows[i], &g = got.rows[i];
    SCOPED_TRACE("row " + std::to_string(i));
    EXPECT_EQ(w.frame_index, g.frame_index);
    EXPECT_EQ(w.track, g.track);
    for (auto [x, y] : {std::pair{w.x, g.x}, {w.y, g.y}, {w.w, g.w}, {w.h, g.h}})
      EXPECT_NEAR(x, y, 1e-3);
    ASSERT_EQ(w.probs.size(), g.probs.size());
    for (size_t k = 0; k < w.probs.size(); ++k) EXPECT_NEAR(w.probs[k], g.probs[k], 1e-5);
  }
  EXPECT_GT(got.rows.size(), 10u);
}

}  // namespace
}  // namespace fervid::test
