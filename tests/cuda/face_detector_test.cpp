// The face detector on the GPU (docs/faces.md) against the CPU's on real frames: DetectorNet's
// raw box and score tensors on the CUDA backend (fp32, fervid's direct kernels) against the CPU
// backend's on the same letterboxed frames, then `fervid faces`' tracking (FaceTracking) with the
// detector on the GPU against the CPU: the same rows, tracks and boxes. The detector's weights are
// $FERVID_DETECTOR, else the file tools/setup.sh writes (the GPU bundle carries it); without them,
// or without a device, each test skips and says why.
#include "face_detector.h"

#include <filesystem>

#include "backends/cpu/cpu_backend.h"
#include "cuda_test_util.h"
#include "fervid/crop.h"
#include "fervid/faces.h"
#include "fervid/inputs.h"
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

}  // namespace
}  // namespace fervid::test
