// The CUDA preprocess ops (RGB and YUV 4:2:0, host and device frames) through the backend against
// the CPU reference on fresh random inputs, outputs poisoned first. Without a device every test
// skips and says why.
#include "backends/cpu/cpu_backend.h"
#include "cpu/ops.h"
#include "cuda_test_util.h"

namespace fervid::test {
namespace {

TEST(CudaBackend, PreprocessMatchesCpu) {
  REQUIRE_CUDA_DEVICE();
  SeedTrace trace;
  auto cpu_be = cpu::make_cpu_backend(0);
  // Frames of different sizes and strides in one batch; crops not multiples of anything.
  struct Case {
    int w, h, stride;
    CropRect crop;
  };
  const std::vector<Case> cases = {{1280, 720, 1280 * 3 + 64, {280, 0, 720, 720}},
                                   {37, 23, 37 * 3, {0, 0, 37, 23}},
                                   {640, 480, 640 * 3, {13, 7, 301, 411}},
                                   {224, 224, 224 * 3 + 8, {0, 0, 224, 224}},
                                   {5, 4, 16, {1, 1, 3, 2}}};
  std::vector<std::vector<uint8_t>> pixels;
  std::vector<ImageView> views;
  std::vector<CropRect> crops;
  for (const Case& c : cases) {
    pixels.emplace_back(size_t(c.stride) * c.h);
    for (auto& v : pixels.back()) v = uint8_t(rng()() & 0xff);
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    views.push_back({pixels[i].data(), cases[i].w, cases[i].h, cases[i].stride});
    crops.push_back(cases[i].crop);
  }
  // The last: torchvision's Resize(256) + CenterCrop(224) (Preprocess::resize).
  const Preprocess study{},
      imagenet{false, 1.0f / 255.0f, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}, 0},
      caffe{true, 1.0f, {103.939f, 116.779f, 123.68f}, {1.0f, 1.0f, 1.0f}, 0},
      resized{false, 1.0f / 255.0f, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}, 256};
  for (const Preprocess& pp : {study, imagenet, caffe, resized}) {
    for (int n : {1, int(views.size())}) {
      const int S = 224;
      auto ref = host_tensor({n, S, S, 3}, DType::F32, Layout::NHWC);
      cpu_be->preprocess(std::span(views).first(n), std::span(crops).first(n), pp, ref.tensor);
      for (const char* precision : {"fp32", "fp16", "bf16"}) {
        auto gpu = make_cuda_backend(gpu_options(precision));
        auto out = to_device(*gpu, ref.tensor, gpu->compute_dtype(), true);
        gpu->preprocess(std::span(views).first(n), std::span(crops).first(n), pp, out.tensor);
        std::vector<float> got = to_host(*gpu, out.tensor);
        const std::vector<double> want = rounded_like(precision, as_f64(ref.tensor));
        // The same f32 formula, the same rounding: equal after rounding to the output type.
        expect_close(got.data(), want, {0, 0, 0},
                     std::string("cuda preprocess ") + precision + " n=" + std::to_string(n));
      }
    }
  }
}

// Turned crops (--crop face's eye line) beside unturned ones in one batch, against the CPU
// reference: the staged region around each turned crop holds every pixel it samples. The sample
// points are f32 on both sides (the CPU's may be contracted into FMAs), so the bound is the
// coordinate error times a pixel step of up to 255, plus the output type's rounding.
TEST(CudaBackend, TurnedCropsMatchCpu) {
  REQUIRE_CUDA_DEVICE();
  SeedTrace trace;
  auto cpu_be = cpu::make_cpu_backend(0);
  std::uniform_real_distribution<float> angle(-1.5f, 1.5f);
  const int n = 6, S = 64;
  std::vector<std::vector<uint8_t>> pixels(n);
  std::vector<ImageView> views;
  std::vector<CropRect> crops;
  for (int i = 0; i < n; ++i) {
    const int w = 90 + 37 * i, h = 70 + 23 * i, side = 40 + 7 * i;
    pixels[i].resize(size_t(w) * h * 3);
    for (auto& v : pixels[i]) v = uint8_t(rng()() & 0xff);
    views.push_back({pixels[i].data(), w, h, w * 3});
    // At the frame's corner, in its middle, and one not turned.
    const int x = i % 3 == 0 ? 0 : (w - side) / 2, y = i % 3 == 0 ? h - side : (h - side) / 2;
    crops.push_back({x, y, side, side, i == 2 ? 0.0f : angle(rng())});
  }
  const Preprocess imagenet{
      false, 1.0f / 255.0f, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}, 0};
  auto ref = host_tensor({n, S, S, 3}, DType::F32, Layout::NHWC);
  cpu_be->preprocess(views, crops, imagenet, ref.tensor);
  const double atol = 1e-5 + 3e-5 * 255.0 / 255.0 / 0.224;
  for (const char* precision : {"fp32", "fp16", "bf16"}) {
    auto gpu = make_cuda_backend(gpu_options(precision));
    auto out = to_device(*gpu, ref.tensor, gpu->compute_dtype(), true);
    gpu->preprocess(views, crops, imagenet, out.tensor);
    std::vector<float> got = to_host(*gpu, out.tensor);
    const double rtol = std::string(precision) == "fp32"   ? 0
                        : std::string(precision) == "fp16" ? 1.0 / 1024
                                                           : 1.0 / 128;
    expect_close(got.data(), as_f64(ref.tensor), {atol, rtol, 1e-2},
                 std::string("cuda turned preprocess ") + precision);
  }
}

// Batches of host frames preprocessed back to back with no synchronisation between them, RGB and
// YUV in turn, larger each time (the upload buffers grow on the way), the caller's pixels
// overwritten as soon as each call returns: every batch's rows equal the CPU reference, so no
// upload overwrote frames a kernel had not read yet.
TEST(CudaBackend, BackToBackBatchesKeepTheirOwnUploads) {
  REQUIRE_CUDA_DEVICE();
  SeedTrace trace;
  auto cpu_be = cpu::make_cpu_backend(0);
  auto gpu = make_cuda_backend(gpu_options("fp32"));
  const int S = 224, per = 3, batches = 8;
  const Preprocess pp{};
  auto ref = host_tensor({batches * per, S, S, 3}, DType::F32, Layout::NHWC);
  auto out = to_device(*gpu, ref.tensor, DType::F32, true);
  std::vector<uint8_t> pixels;
  for (int b = 0; b < batches; ++b) {
    const int w = 64 + 90 * b, h = 48 + 60 * b;
    const bool yuv = b % 2 == 1;
    const size_t frame_bytes =
        yuv ? size_t(w) * h + 2 * size_t((w + 1) / 2) * ((h + 1) / 2) : size_t(w) * h * 3;
    pixels.assign(frame_bytes * per, 0);
    for (auto& v : pixels) v = uint8_t(rng()() & 0xff);
    std::vector<CropRect> crops(per, CropRect{b, b / 2, w - 2 * b, h - b});
    const Tensor want = ref.tensor.slice(b * per, per), got = out.tensor.slice(b * per, per);
    if (yuv) {
      std::vector<YuvView> views;
      for (int i = 0; i < per; ++i) {
        const uint8_t* y = pixels.data() + i * frame_bytes;
        const uint8_t* u = y + size_t(w) * h;
        const int cw = (w + 1) / 2;
        views.push_back({y, u, u + size_t(cw) * ((h + 1) / 2), w, cw, 1, w, h});
      }
      cpu_be->preprocess_yuv420(views, crops, ColorSpec{}, pp, want);
      gpu->preprocess_yuv420(views, crops, ColorSpec{}, pp, got);
    } else {
      std::vector<ImageView> views;
      for (int i = 0; i < per; ++i) views.push_back({pixels.data() + i * frame_bytes, w, h, w * 3});
      cpu_be->preprocess(views, crops, pp, want);
      gpu->preprocess(views, crops, pp, got);
    }
    std::fill(pixels.begin(), pixels.end(), uint8_t(0x5a));  // the caller reuses its frames
  }
  std::vector<float> got = to_host(*gpu, out.tensor);
  expect_close(got.data(), as_f64(ref.tensor), {0, 0, 0}, "back-to-back preprocess");
}

// YUV 4:2:0 frames (planar and NV12, odd sizes and odd crop origins) through the CUDA
// backend's staging and kernel against the CPU reference: bit-identical in f32.
TEST(CudaBackend, PreprocessYuv420MatchesCpu) {
  REQUIRE_CUDA_DEVICE();
  SeedTrace trace;
  auto cpu_be = cpu::make_cpu_backend(0);
  struct Case {
    int w, h;
    bool nv12;
    CropRect crop;
  };
  const std::vector<Case> cases = {{1280, 720, true, {280, 0, 720, 720}},
                                   {37, 23, false, {0, 0, 37, 23}},
                                   {641, 479, true, {13, 7, 301, 411}},
                                   {224, 224, false, {1, 1, 223, 223}},
                                   {5, 4, true, {1, 1, 3, 2}}};
  std::vector<std::vector<uint8_t>> planes;
  std::vector<YuvView> views;
  std::vector<CropRect> crops;
  for (const Case& c : cases) {
    const int cw = (c.w + 1) / 2, ch = (c.h + 1) / 2;
    const int ys = c.w + 3, uvs = (c.nv12 ? 2 * cw : cw) + 5;  // padded rows
    planes.emplace_back(size_t(ys) * c.h + size_t(uvs) * ch * 2);
    for (auto& v : planes.back()) v = uint8_t(rng()() & 0xff);
    const uint8_t* y = planes.back().data();
    const uint8_t* u = y + size_t(ys) * c.h;
    views.push_back(
        {y, u, c.nv12 ? u + 1 : u + size_t(uvs) * ch, ys, uvs, c.nv12 ? 2 : 1, c.w, c.h});
    crops.push_back(c.crop);
  }
  // Straight to 224x224, and torchvision's Resize(256) + CenterCrop(224) (Preprocess::resize).
  for (int resize : {0, 256})
    for (const ColorSpec cs : {ColorSpec{false, false}, ColorSpec{true, true}}) {
      const Preprocess imagenet{
          false, 1.0f / 255.0f, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}, resize};
      const int n = int(views.size()), S = 224;
      auto ref = host_tensor({n, S, S, 3}, DType::F32, Layout::NHWC);
      cpu_be->preprocess_yuv420(views, crops, cs, imagenet, ref.tensor);
      for (const char* precision : {"fp32", "fp16", "bf16"}) {
        auto gpu = make_cuda_backend(gpu_options(precision));
        auto out = to_device(*gpu, ref.tensor, gpu->compute_dtype(), true);
        gpu->preprocess_yuv420(views, crops, cs, imagenet, out.tensor);
        std::vector<float> got = to_host(*gpu, out.tensor);
        const std::vector<double> want = rounded_like(precision, as_f64(ref.tensor));
        expect_close(
            got.data(), want, {0, 0, 0},
            std::string("cuda preprocess_yuv420 ") + precision + (cs.bt709 ? " bt709" : ""));
        // The NV12 frames again as NVDEC leaves them: in device memory, copied by the backend's
        // frame sink into its pool and read there (YuvView::on_device), mixed with host frames.
        std::vector<Buffer> surfaces;
        std::vector<YuvView> on_device(views.size());
        for (size_t i = 0; i < cases.size(); ++i) {
          if (!cases[i].nv12) continue;
          const std::vector<uint8_t>& host = planes[i];
          surfaces.push_back(gpu->allocate(host.size()));
          gpu->copy_from_host(Tensor::view(surfaces.back(), {int64_t(host.size())}, DType::U8),
                              host.data());
          const auto* base = static_cast<const uint8_t*>(surfaces.back().data());
          on_device[i] = views[i];
          on_device[i].y = base;
          on_device[i].u = base + (views[i].u - host.data());
          on_device[i].v = on_device[i].u + 1;
          on_device[i].on_device = true;
        }
        // A pool of exactly the NV12 frames: the second round reuses every buffer.
        auto sink = gpu->frame_sinks()->make_frame_sink(3);
        ASSERT_TRUE(sink);
        for (int round = 0; round < 2; ++round) {
          std::vector<std::shared_ptr<const void>> held;
          std::vector<YuvView> mixed = views;
          for (size_t i = 0; i < cases.size(); ++i) {
            if (!cases[i].nv12) continue;
            held.push_back(sink->copy_nv12(on_device[i], mixed[i]));
            EXPECT_TRUE(mixed[i].on_device);
          }
          out = to_device(*gpu, ref.tensor, gpu->compute_dtype(), true);
          gpu->preprocess_yuv420(mixed, crops, cs, imagenet, out.tensor);
          got = to_host(*gpu, out.tensor);
          expect_close(got.data(), want, {0, 0, 0},
                       std::string("cuda preprocess_yuv420 from device NV12 ") + precision);
        }
      }
    }
}

}  // namespace
}  // namespace fervid::test
