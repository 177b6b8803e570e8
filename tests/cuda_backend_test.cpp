// The CUDA backend against the CPU backend, op by op through the Backend interface (so the
// staging, weight conversion and library plans are tested with the kernels) and then the whole
// network on real frames in every precision. Inputs of f16/bf16 runs are rounded to that type
// first and the CPU reference is computed from the rounded values. Device outputs are poisoned
// (NaN) before each run. Without a device every test skips and says why.
#include "fervid/cuda_backend.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "check.h"
#include "cpu/ops.h"
#include "cuda/library_ops.h"
#include "fervid/cuda_probe.h"
#include "fervid/model.h"
#include "fervid/pipeline.h"
#include "fervid/video.h"
#include "test_util.h"

namespace fervid::test {
namespace {

namespace fs = std::filesystem;

#define REQUIRE_CUDA_DEVICE()                              \
  do {                                                     \
    std::string why;                                       \
    if (!cuda_device_available(&why)) GTEST_SKIP() << why; \
  } while (0)

const char* kPrecisions[] = {"fp32", "tf32", "fp16", "bf16"};

DType dtype_of(const std::string& precision) {
  return precision == "fp16" ? DType::F16 : precision == "bf16" ? DType::BF16 : DType::F32;
}

// Per-op bounds (DESIGN.md's relative L2 per precision); the element-wise atol is relative to
// the reference's RMS so that it means the same at every magnitude.
Tolerance op_tolerance(const std::string& precision, double rms) {
  if (precision == "fp32") return {1e-5 * rms, 1e-4, 1e-5};
  if (precision == "tf32") return {5e-3 * rms, 5e-3, 5e-3};
  if (precision == "fp16") return {4e-3 * rms, 4e-3, 2e-2};
  return {3e-2 * rms, 3e-2, 2e-2};  // bf16: 8 mantissa bits
}

double rms(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return v.empty() ? 0 : std::sqrt(s / double(v.size()));
}

// Rounds host f32 values to what `dtype` can hold (the reference then sees the same inputs).
void round_to(const Tensor& t, DType dtype) {
  float* p = t.ptr<float>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (dtype == DType::F16) p[i] = half_to_float(float_to_half(p[i]));
    if (dtype == DType::BF16) p[i] = bf16_to_float(float_to_bf16(p[i]));
  }
}

// A device tensor of `dtype` holding the host f32 values (NaN everywhere when `poisoned`).
OwnedTensor to_device(Backend& be, const Tensor& host, DType dtype, bool poisoned = false) {
  OwnedTensor t;
  t.buffer = be.allocate(size_t(host.numel()) * dtype_size(dtype));
  t.tensor = Tensor::view(t.buffer, host.shape(), dtype, host.layout());
  std::vector<uint8_t> bytes(t.tensor.bytes());
  for (int64_t i = 0; i < host.numel(); ++i) {
    const float v = poisoned ? std::nanf("") : host.ptr<const float>()[i];
    if (dtype == DType::F32) std::memcpy(bytes.data() + 4 * i, &v, 4);
    if (dtype == DType::F16) reinterpret_cast<uint16_t*>(bytes.data())[i] = float_to_half(v);
    if (dtype == DType::BF16) reinterpret_cast<uint16_t*>(bytes.data())[i] = float_to_bf16(v);
  }
  be.copy_from_host(t.tensor, bytes.data());
  return t;
}

std::vector<float> to_host(Backend& be, const Tensor& dev) {
  std::vector<uint8_t> bytes(dev.bytes());
  be.copy_to_host(bytes.data(), dev);
  std::vector<float> out(size_t(dev.numel()));
  for (size_t i = 0; i < out.size(); ++i) {
    if (dev.dtype() == DType::F32) std::memcpy(&out[i], bytes.data() + 4 * i, 4);
    if (dev.dtype() == DType::F16)
      out[i] = half_to_float(reinterpret_cast<uint16_t*>(bytes.data())[i]);
    if (dev.dtype() == DType::BF16)
      out[i] = bf16_to_float(reinterpret_cast<uint16_t*>(bytes.data())[i]);
  }
  return out;
}

std::vector<double> as_f64(const Tensor& t) {
  return std::vector<double>(t.ptr<const float>(), t.ptr<const float>() + t.numel());
}

// f32 reference values as the device stores them in `precision`'s compute type.
std::vector<double> rounded_like(const std::string& precision, std::vector<double> v) {
  if (precision == "fp16")
    for (double& x : v) x = half_to_float(float_to_half(float(x)));
  if (precision == "bf16")
    for (double& x : v) x = bf16_to_float(float_to_bf16(float(x)));
  return v;
}

TEST(CudaBackend, DeviceCudaWithoutDeviceFailsInOneLine) {
  std::string why;
  if (cuda_device_available(&why)) GTEST_SKIP() << "a device is present";
  try {
    make_cuda_backend({"cuda", "fp16", 0});
    ADD_FAILURE() << "make_cuda_backend succeeded without a device";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("--device cuda"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

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
  const Preprocess study{},
      imagenet{false, 1.0f / 255.0f, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}},
      caffe{true, 1.0f, {103.939f, 116.779f, 123.68f}, {1.0f, 1.0f, 1.0f}};
  for (const Preprocess& pp : {study, imagenet, caffe}) {
    for (int n : {1, int(views.size())}) {
      const int S = 224;
      auto ref = host_tensor({n, S, S, 3}, DType::F32, Layout::NHWC);
      cpu_be->preprocess(std::span(views).first(n), std::span(crops).first(n), pp, ref.tensor);
      for (const char* precision : {"fp32", "fp16", "bf16"}) {
        auto gpu = make_cuda_backend({"cuda", precision, 0});
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

// Batches of host frames preprocessed back to back with no synchronisation between them, RGB and
// YUV in turn, larger each time (the upload buffers grow on the way), the caller's pixels
// overwritten as soon as each call returns: every batch's rows equal the CPU reference, so no
// upload overwrote frames a kernel had not read yet.
TEST(CudaBackend, BackToBackBatchesKeepTheirOwnUploads) {
  REQUIRE_CUDA_DEVICE();
  SeedTrace trace;
  auto cpu_be = cpu::make_cpu_backend(0);
  auto gpu = make_cuda_backend({"cuda", "fp32", 0});
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
  const Preprocess imagenet{
      false, 1.0f / 255.0f, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
  for (const ColorSpec cs : {ColorSpec{false, false}, ColorSpec{true, true}}) {
    const int n = int(views.size()), S = 224;
    auto ref = host_tensor({n, S, S, 3}, DType::F32, Layout::NHWC);
    cpu_be->preprocess_yuv420(views, crops, cs, imagenet, ref.tensor);
    for (const char* precision : {"fp32", "fp16", "bf16"}) {
      auto gpu = make_cuda_backend({"cuda", precision, 0});
      auto out = to_device(*gpu, ref.tensor, gpu->compute_dtype(), true);
      gpu->preprocess_yuv420(views, crops, cs, imagenet, out.tensor);
      std::vector<float> got = to_host(*gpu, out.tensor);
      const std::vector<double> want = rounded_like(precision, as_f64(ref.tensor));
      expect_close(got.data(), want, {0, 0, 0},
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
      auto sink = gpu->make_frame_sink(3);
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

// NVDEC through ClipDecoder: H.264 decoding is exact, so the NV12 frames NVDEC leaves on the
// device equal libavcodec's yuv420p planes on the CPU byte for byte, clip after clip in one
// continuous stream; a codec NVDEC does not take (MS-MPEG4) falls back to the CPU with a remark.
TEST(CudaBackend, NvdecFramesEqualCpuDecode) {
  REQUIRE_CUDA_DEVICE();
  auto gpu = make_cuda_backend({"cuda", "fp16", 0});
  std::string notice;
  if (choose_decoder("auto", Device::Cuda, false, &notice) != DecoderKind::Nvdec)
    GTEST_SKIP() << notice;
  const std::string data = FERVID_DATA_DIR;
  const std::vector<std::string> clips = {
      data + "/ravdess/modified/01-01-07-02-02-01-01_1.mp4", data + "/video/astronaut-720p.mp4",
      data + "/ravdess/modified/01-01-07-02-02-01-01_1.mp4", data + "/video/vtest.avi"};
  const SamplingOptions sampling{5, 12, true};
  auto sink = gpu->make_frame_sink(64);
  auto decode = [&](DecoderKind kind) {
    auto d = ClipDecoder::create(sampling, {kind, sink.get()});
    for (size_t i = 0; i < clips.size(); ++i) d->add(int(i), clips[i]);
    d->flush();
    std::vector<ClipEvent> events;
    ClipEvent ev;
    while (d->next(ev)) events.push_back(std::move(ev));
    return events;
  };
  const std::vector<ClipEvent> cpu = decode(DecoderKind::Cpu), nv = decode(DecoderKind::Nvdec);
  ASSERT_EQ(cpu.size(), nv.size());
  for (size_t e = 0; e < cpu.size(); ++e) {
    const ClipEvent &a = cpu[e], &b = nv[e];
    ASSERT_EQ(a.end, b.end);
    ASSERT_EQ(a.clip, b.clip);
    SCOPED_TRACE(clips[a.clip]);
    if (a.end) {
      EXPECT_EQ(a.error, b.error);
      if (a.clip == 3) {
        EXPECT_NE(b.warning.find("NVDEC does not take"), std::string::npos) << b.warning;
      }
      continue;
    }
    ASSERT_EQ(a.frame.index, b.frame.index);
    ASSERT_TRUE(a.frame.is_yuv && b.frame.is_yuv);
    if (a.clip == 3) {  // decoded on the CPU
      EXPECT_FALSE(b.frame.on_device());
      continue;
    }
    ASSERT_TRUE(b.frame.on_device());
    const YuvView d = b.frame.device;
    ASSERT_EQ(d.width, a.frame.width);
    ASSERT_EQ(d.height, a.frame.height);
    const int w = d.width, h = d.height, cw = (w + 1) / 2, ch = (h + 1) / 2;
    const size_t bytes = size_t(d.y_stride) * h + size_t(d.uv_stride) * ch;
    std::vector<uint8_t> host(bytes);
    Buffer view(const_cast<uint8_t*>(d.y), bytes, Device::Cuda, [](void*) {});
    gpu->copy_to_host(host.data(), Tensor::view(view, {int64_t(bytes)}, DType::U8));
    const YuvView want = a.frame.yuv_view();
    int64_t diff = 0;
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) diff += host[size_t(y) * d.y_stride + x] != want.y[y * w + x];
    const uint8_t* uv = host.data() + (d.u - d.y);
    for (int y = 0; y < ch; ++y)
      for (int x = 0; x < cw; ++x) {
        diff += uv[size_t(y) * d.uv_stride + 2 * x] != want.u[y * cw + x];
        diff += uv[size_t(y) * d.uv_stride + 2 * x + 1] != want.v[y * cw + x];
      }
    EXPECT_EQ(diff, 0) << "frame " << a.frame.index << ": " << diff << " samples differ";
  }
}

// One conv3x3 case: random x, w, b rounded to what both f16 and bf16 hold exactly (so one CPU
// reference serves every precision), and that reference.
struct ConvCase {
  int n, h, w, c, k;
  bool pool;
};

struct ConvData {
  OwnedTensor x, w, b, ref;
};

ConvData conv_data(const ConvCase& s) {
  ConvData d{host_tensor({s.n, s.h, s.w, s.c}, DType::F32, Layout::NHWC),
             host_tensor({s.k, s.c, 3, 3}, DType::F32),
             host_tensor({s.k}, DType::F32),
             {}};
  fill_uniform(d.x.tensor, -1, 1);
  fill_uniform(d.w.tensor, -1.0f / std::sqrt(9.0f * s.c), 1.0f / std::sqrt(9.0f * s.c));
  fill_uniform(d.b.tensor, -0.2f, 0.2f);
  for (const Tensor* t : {&d.x.tensor, &d.w.tensor, &d.b.tensor}) {
    round_to(*t, DType::BF16);
    round_to(*t, DType::F16);
  }
  const int oh = s.pool ? s.h / 2 : s.h, ow = s.pool ? s.w / 2 : s.w;
  d.ref = host_tensor({s.n, oh, ow, s.k}, DType::F32, Layout::NHWC);
  OwnedTensor w_ohwi = cpu::conv_weight_ohwi(d.w.tensor);
  cpu::conv3x3_bias_relu(d.x.tensor, w_ohwi.tensor, d.b.tensor, s.pool, d.ref.tensor);
  return d;
}

// Every backend in `gpus` on one case against the CPU reference (outputs poisoned).
void expect_conv_matches(const std::vector<Backend*>& gpus, const ConvCase& s,
                         const std::string& what) {
  const ConvData d = conv_data(s);
  const std::vector<double> want = as_f64(d.ref.tensor);
  for (Backend* gpu : gpus) {
    const DType dt = gpu->compute_dtype();
    OwnedTensor gw = gpu->prepare_weight(d.w.tensor, {WeightRole::Conv});
    OwnedTensor gb = gpu->prepare_weight(d.b.tensor, {WeightRole::ConvBias});
    auto gx = to_device(*gpu, d.x.tensor, dt);
    auto gy = to_device(*gpu, d.ref.tensor, dt, true);
    gpu->conv3x3_bias_relu(gx.tensor, gw.tensor, gb.tensor, s.pool, gy.tensor);
    std::vector<float> got = to_host(*gpu, gy.tensor);
    expect_close(got.data(), want, op_tolerance(gpu->precision(), rms(want)),
                 what + " " + gpu->precision() + " " + d.x.tensor.describe() + " -> " +
                     d.ref.tensor.describe());
    if (s.pool || what != "cudnn conv") continue;
    // The path for configurations cuDNN's fused call refuses: plain convolution + bias_relu.
    cuda::ConvCudnn unfused(nullptr, gpu->precision() == "tf32", MemoryMeter(), false);
    auto gy2 = to_device(*gpu, d.ref.tensor, dt, true);
    unfused.run(gx.tensor, gw.tensor, gb.tensor, gy2.tensor);
    FV_CUDA_CHECK(cudaDeviceSynchronize());
    got = to_host(*gpu, gy2.tensor);
    expect_close(got.data(), want, op_tolerance(gpu->precision(), rms(want)),
                 "cudnn conv unfused (" + unfused.last_algorithm() + ") " + gpu->precision() + " " +
                     d.x.tensor.describe());
  }
}

// cuDNN's fused conv (--conv-impl cudnn) in every precision, and its unfused fallback.
TEST(CudaBackend, ConvBiasReluWithAndWithoutPoolMatchesCpu) {
  REQUIRE_CUDA_DEVICE();
  SeedTrace trace;
  const std::vector<ConvCase> cases = {{1, 224, 224, 3, 64, false},  {2, 13, 17, 64, 128, true},
                                       {7, 14, 14, 256, 512, true},  {1, 7, 9, 512, 512, false},
                                       {3, 28, 28, 128, 256, false}, {1, 15, 11, 3, 64, true}};
  std::vector<std::unique_ptr<Backend>> owned;
  std::vector<Backend*> gpus;
  for (const char* precision : kPrecisions) {
    owned.push_back(make_cuda_backend({"cuda", precision, 0, "cudnn"}));
    gpus.push_back(owned.back().get());
  }
  for (const ConvCase& c : cases) expect_conv_matches(gpus, c, "cudnn conv");
}

TEST(CudaBackend, ConvImplIsCheckedBeforeAnyDeviceWork) {
  for (auto [device, precision, impl] :
       {std::tuple{"cuda", "fp32", "fervid"}, std::tuple{"cuda", "tf32", "fervid"},
        std::tuple{"cuda", "fp16", "winograd"}, std::tuple{"cpu", "", "fervid"},
        std::tuple{"auto", "", "cudnn-ish"}}) {
    try {
      make_backend({device, precision, 0, impl});
      ADD_FAILURE() << "accepted --device " << device << " --precision " << precision
                    << " --conv-impl " << impl;
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("--conv-impl " + std::string(impl)), std::string::npos) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  }
}

// fervid's kernel (--conv-impl fervid) on every VGG16 layer shape, with VGG's pools, at batch 1
// and 7, in fp16 and bf16.
TEST(CudaBackend, FervidConvMatchesCpuOnEveryVgg16Layer) {
  REQUIRE_CUDA_DEVICE();
  SeedTrace trace;
  auto fp16 = make_cuda_backend({"cuda", "fp16", 0, "fervid"});
  auto bf16 = make_cuda_backend({"cuda", "bf16", 0, "fervid"});
  const ModelSpec spec =
      ModelSpec::load_card(std::string(FERVID_SOURCE_DIR) + "/weights/torchvision-vgg16.json");
  for (int n : {1, 7}) {
    int size = spec.input_size;
    for (const ConvLayer& l : spec.conv_layers()) {
      expect_conv_matches({fp16.get(), bf16.get()},
                          {n, size, size, l.in_channels, l.out_channels, l.pool},
                          "fervid conv " + l.name);
      if (l.pool) size /= 2;
    }
  }
  for (Backend* be : {fp16.get(), bf16.get()})
    for (const ConvPlanInfo& p : be->conv_plans()) EXPECT_EQ(p.impl, "fervid");
}

// Sizes that are multiples of no tile (8x16 pixels, 64 channels, 32-deep chunks), channel
// counts for the gather path (3, 5, 48) and the vector path (32, 64, 96), with and without pool.
TEST(CudaBackend, FervidConvMatchesCpuOnOddShapes) {
  REQUIRE_CUDA_DEVICE();
  SeedTrace trace;
  auto fp16 = make_cuda_backend({"cuda", "fp16", 0, "fervid"});
  auto bf16 = make_cuda_backend({"cuda", "bf16", 0, "fervid"});
  const std::vector<ConvCase> cases = {
      {2, 13, 17, 64, 128, false}, {2, 13, 17, 64, 128, true}, {1, 15, 11, 3, 64, true},
      {3, 9, 31, 32, 40, false},   {3, 9, 31, 32, 40, true},   {1, 1, 1, 64, 64, false},
      {2, 3, 5, 96, 72, true},     {1, 7, 7, 3, 16, false},    {2, 6, 10, 5, 24, true},
      {1, 19, 9, 48, 65, false},   {5, 2, 2, 128, 192, true},  {1, 33, 18, 256, 8, true}};
  for (const ConvCase& c : cases) expect_conv_matches({fp16.get(), bf16.get()}, c, "fervid conv");
}

// --conv-impl auto times cuDNN (+ pool) and fervid's kernel once per layer shape and keeps the
// faster; a later batch size of the same shape keeps that choice; f32 always runs on cuDNN.
TEST(CudaBackend, ConvImplAutoTimesBothAndKeepsTheFaster) {
  REQUIRE_CUDA_DEVICE();
  SeedTrace trace;
  auto fp16 = make_cuda_backend({"cuda", "fp16", 0, "auto"});
  auto fp32 = make_cuda_backend({"cuda", "fp32", 0, "auto"});
  expect_conv_matches({fp16.get(), fp32.get()}, {4, 28, 28, 256, 512, true}, "auto conv");
  expect_conv_matches({fp16.get(), fp32.get()}, {4, 28, 28, 512, 512, false}, "auto conv");
  expect_conv_matches({fp16.get(), fp32.get()}, {2, 28, 28, 256, 512, true}, "auto conv");
  const std::vector<ConvPlanInfo> plans = fp16->conv_plans();
  ASSERT_EQ(plans.size(), 2u);
  for (const ConvPlanInfo& p : plans) {
    EXPECT_EQ(p.timed_batch, 4);
    EXPECT_GT(p.cudnn_ms, 0.0);
    EXPECT_GT(p.fervid_ms, 0.0);
    EXPECT_EQ(p.impl, p.fervid_ms < p.cudnn_ms ? "fervid" : "cudnn");
    std::printf("[ auto     ] 28x28 %lld->%lld%s: cudnn %.3f ms, fervid %.3f ms -> %s\n",
                (long long)p.in_channels, (long long)p.out_channels, p.pool ? " pool" : "",
                p.cudnn_ms, p.fervid_ms, p.impl.c_str());
  }
  EXPECT_TRUE(plans[0].pool);
  EXPECT_FALSE(plans[1].pool);
  for (const ConvPlanInfo& p : fp32->conv_plans()) {
    EXPECT_EQ(p.impl, "cudnn");
    EXPECT_EQ(p.timed_batch, 0);
  }
}

TEST(CudaBackend, LinearWithEpiloguesAndFlattenMatchesCpu) {
  REQUIRE_CUDA_DEVICE();
  SeedTrace trace;
  struct Shape {
    std::vector<int64_t> x;  // [N, in] or [N, H, W, C] (flattened in CHW order)
    int out;
    bool relu, logits;
  };
  const std::vector<Shape> shapes = {{{1, 512}, 512, true, false},
                                     {{37, 512}, 256, true, false},
                                     {{5, 256}, 8, false, true},
                                     {{3, 3, 5, 16}, 33, true, false},
                                     {{2, 7, 7, 64}, 7, false, true}};
  for (const char* precision : kPrecisions) {
    auto gpu = make_cuda_backend({"cuda", precision, 0});
    const DType dt = gpu->compute_dtype();
    for (const Shape& s : shapes) {
      const bool flat = s.x.size() == 2;
      auto x = host_tensor(s.x, DType::F32, flat ? Layout::Plain : Layout::NHWC);
      const int64_t n = s.x[0], in = x.tensor.numel() / n;
      auto w = host_tensor({s.out, in}, DType::F32);
      auto b = host_tensor({s.out}, DType::F32);
      fill_uniform(x.tensor, -1, 1);
      fill_uniform(w.tensor, -1.0f / std::sqrt(float(in)), 1.0f / std::sqrt(float(in)));
      fill_uniform(b.tensor, -0.5f, 0.5f);
      round_to(x.tensor, dt);
      round_to(w.tensor, dt);
      if (!s.logits) round_to(b.tensor, dt);
      auto ref = host_tensor({n, s.out}, DType::F32);
      cpu::linear(x.tensor, w.tensor, b.tensor, s.relu, ref.tensor);

      WeightUse use{WeightRole::Linear, flat ? 0 : s.x[3], s.logits};
      OwnedTensor gw = gpu->prepare_weight(w.tensor, use);
      use.role = WeightRole::LinearBias;
      OwnedTensor gb = gpu->prepare_weight(b.tensor, use);
      auto gx = to_device(*gpu, x.tensor, dt);
      auto gy = to_device(*gpu, ref.tensor, s.logits ? DType::F32 : dt, true);
      gpu->linear(gx.tensor, gw.tensor, gb.tensor, s.relu, gy.tensor);
      std::vector<float> got = to_host(*gpu, gy.tensor);
      std::vector<double> want = as_f64(ref.tensor);
      expect_close(got.data(), want, op_tolerance(precision, rms(want)),
                   std::string("cuda linear ") + precision + " " + x.tensor.describe() + " -> " +
                       std::to_string(s.out) + (s.relu ? " relu" : "") +
                       (s.logits ? " (f32 logits)" : ""));
    }
  }
}

TEST(CudaBackend, GlobalAvgpoolAndMaxpoolThroughTheBackend) {
  REQUIRE_CUDA_DEVICE();
  SeedTrace trace;
  for (const char* precision : {"fp32", "fp16", "bf16"}) {
    auto gpu = make_cuda_backend({"cuda", precision, 0});
    const DType dt = gpu->compute_dtype();
    for (auto [n, h, w, c] : {std::array<int, 4>{1, 7, 7, 512}, {5, 13, 17, 65}, {2, 1, 1, 3}}) {
      auto x = host_tensor({n, h, w, c}, DType::F32, Layout::NHWC);
      fill_uniform(x.tensor, 0, 4);
      round_to(x.tensor, dt);
      auto ref = host_tensor({n, c}, DType::F32);
      cpu::global_avgpool(x.tensor, ref.tensor);
      auto gx = to_device(*gpu, x.tensor, dt);
      auto gy = to_device(*gpu, ref.tensor, dt, true);
      gpu->global_avgpool(gx.tensor, gy.tensor);
      std::vector<float> got = to_host(*gpu, gy.tensor);
      std::vector<double> want = as_f64(ref.tensor);
      expect_close(got.data(), want, op_tolerance(precision, rms(want)),
                   std::string("cuda gap ") + precision + " " + x.tensor.describe());
      if (h < 2) continue;
      auto pref = host_tensor({n, h / 2, w / 2, c}, DType::F32, Layout::NHWC);
      cpu::maxpool2x2(x.tensor, pref.tensor);
      auto gp = to_device(*gpu, pref.tensor, dt, true);
      gpu->maxpool2x2(gx.tensor, gp.tensor);
      got = to_host(*gpu, gp.tensor);
      expect_close(got.data(), as_f64(pref.tensor), {0, 0, 0},
                   std::string("cuda maxpool ") + precision + " " + x.tensor.describe());
    }
  }
}

// A device copy of a host tensor of any dtype, bytes as they are.
OwnedTensor raw_to_device(Backend& be, const Tensor& host) {
  OwnedTensor t;
  t.buffer = be.allocate(host.bytes());
  t.tensor = Tensor::view(t.buffer, host.shape(), host.dtype(), host.layout());
  be.copy_from_host(t.tensor, host.data());
  return t;
}

TEST(CudaBackend, VoteThroughTheBackendIsIdenticalToCpu) {
  REQUIRE_CUDA_DEVICE();
  SeedTrace trace;
  auto cpu_be = cpu::make_cpu_backend(0);
  auto gpu = make_cuda_backend({"cuda", "fp16", 0});
  const int classes = 8, slots = 5, frames = 11;
  for (VoteMode mode : {VoteMode::Majority, VoteMode::Confidence}) {
    auto counts = host_tensor({slots, classes}, DType::I32);
    auto sums = host_tensor({slots, classes}, DType::F64);
    std::memset(counts.tensor.data(), 0, counts.tensor.bytes());
    std::memset(sums.tensor.data(), 0, sums.tensor.bytes());
    auto gcounts = raw_to_device(*gpu, counts.tensor), gsums = raw_to_device(*gpu, sums.tensor);
    // Four batches; slot 2's video spans all of them, others start and end in between. Labels
    // and probabilities from small sets, so that counts and sums tie.
    const std::vector<std::vector<Segment>> batches = {{{0, 4, 2}, {4, 7, 0}},
                                                       {{0, 11, 2}},
                                                       {{0, 3, 2}, {3, 1, 4}, {4, 7, 1}},
                                                       {{0, 2, 2}, {2, 9, 3}}};
    for (const auto& segs : batches) {
      auto probs = host_tensor({frames, classes}, DType::F32);
      auto labels = host_tensor({frames}, DType::I32);
      for (int64_t i = 0; i < probs.tensor.numel(); ++i)
        probs.tensor.ptr<float>()[i] = 0.25f * float(rng()() % 3);
      for (int f = 0; f < frames; ++f) labels.tensor.ptr<int32_t>()[f] = int(rng()() % 3);
      cpu_be->vote_accumulate(probs.tensor, labels.tensor, segs, counts.tensor, sums.tensor);
      auto gp = raw_to_device(*gpu, probs.tensor), gl = raw_to_device(*gpu, labels.tensor);
      gpu->vote_accumulate(gp.tensor, gl.tensor, segs, gcounts.tensor, gsums.tensor);
    }
    const std::vector<int> finished = {2, 0, 4};  // in an order that is not the slots'
    const int n = int(finished.size());
    auto w = host_tensor({n}, DType::I32), oc = host_tensor({n, classes}, DType::I32);
    auto os = host_tensor({n, classes}, DType::F64);
    cpu_be->vote_finalize(counts.tensor, sums.tensor, finished, mode, w.tensor, oc.tensor,
                          os.tensor);
    auto gw = host_tensor({n}, DType::I32), goc = host_tensor({n, classes}, DType::I32);
    auto gos = host_tensor({n, classes}, DType::F64);
    poison(gw.tensor);
    poison(goc.tensor);
    poison(gos.tensor);
    auto dw = raw_to_device(*gpu, gw.tensor), doc = raw_to_device(*gpu, goc.tensor),
         dos = raw_to_device(*gpu, gos.tensor);
    gpu->vote_finalize(gcounts.tensor, gsums.tensor, finished, mode, dw.tensor, doc.tensor,
                       dos.tensor);
    gpu->copy_to_host(gw.tensor.data(), dw.tensor);
    gpu->copy_to_host(goc.tensor.data(), doc.tensor);
    gpu->copy_to_host(gos.tensor.data(), dos.tensor);
    for (int i = 0; i < n; ++i)
      EXPECT_EQ(gw.tensor.ptr<int32_t>()[i], w.tensor.ptr<int32_t>()[i])
          << "slot " << finished[i] << ", " << vote_name(mode);
    EXPECT_EQ(0, std::memcmp(goc.tensor.data(), oc.tensor.data(), oc.tensor.bytes()));
    EXPECT_EQ(0, std::memcmp(gos.tensor.data(), os.tensor.data(), os.tensor.bytes()))
        << "sums must be bit-identical";
    // The finished slots are cleared on both; the open ones (1, 3) still hold the same tallies.
    auto after_c = host_tensor({slots, classes}, DType::I32);
    auto after_s = host_tensor({slots, classes}, DType::F64);
    gpu->copy_to_host(after_c.tensor.data(), gcounts.tensor);
    gpu->copy_to_host(after_s.tensor.data(), gsums.tensor);
    EXPECT_EQ(0, std::memcmp(after_c.tensor.data(), counts.tensor.data(), counts.tensor.bytes()));
    EXPECT_EQ(0, std::memcmp(after_s.tensor.data(), sums.tensor.data(), sums.tensor.bytes()));
  }
}

// Real frames: a folder of images named by FERVID_TEST_FRAMES (tools/gpu-check.sh extracts them
// for the build without FFmpeg), else sampled from the videos of ../shared/data.
std::vector<Frame> real_frames(std::string* why) {
  std::vector<Frame> frames;
  if (const char* dir = std::getenv("FERVID_TEST_FRAMES")) {
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(dir))
      if (is_image_path(e.path().string())) files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) frames.push_back(load_image(f));
  } else {
    const std::string data = FERVID_DATA_DIR;
    const std::pair<const char*, int> videos[] = {
        {"/video/astronaut-720p.mp4", 8},
        {"/video/vtest.avi", 60},
        {"/ravdess/modified/01-01-07-02-02-01-01_1.mp4", 20},
        {"/ravdess/modified/01-01-08-02-01-01-19.mp4", 20}};
    try {
      for (auto [path, stride] : videos) {
        auto src = open_frames({data + path, InputKind::Video, ""}, {stride, 0});
        Frame f;
        while (src->next(f)) frames.push_back(f);
      }
    } catch (const Error& e) {
      *why = std::string("no real frames: ") + e.what() + " (set FERVID_TEST_FRAMES)";
      return {};
    }
  }
  if (frames.empty()) *why = "no real frames found (set FERVID_TEST_FRAMES)";
  return frames;
}

CropRect centre_square(const Frame& f) {
  const int side = std::min(f.width, f.height);
  return {(f.width - side) / 2, (f.height - side) / 2, side, side};
}

// Logits of `frames` through `model`, batch by batch.
std::vector<float> logits_of(Model& model, const std::vector<Frame>& frames) {
  const int classes = model.spec().num_classes();
  std::vector<float> out(frames.size() * classes);
  for (size_t first = 0; first < frames.size(); first += size_t(model.max_batch())) {
    const size_t n = std::min(frames.size() - first, size_t(model.max_batch()));
    std::vector<ImageView> views;
    std::vector<CropRect> crops;
    for (size_t i = first; i < first + n; ++i) {
      views.push_back(frames[i].view());
      crops.push_back(centre_square(frames[i]));
    }
    model.forward(views, crops);
    model.backend().copy_to_host(out.data() + first * classes, model.logits().slice(0, int64_t(n)));
  }
  return out;
}

TEST(CudaBackend, WholeNetworkMatchesCpuOnRealFrames) {
  REQUIRE_CUDA_DEVICE();
  SeedTrace trace;
  std::string why;
  const std::vector<Frame> frames = real_frames(&why);
  if (frames.empty()) GTEST_SKIP() << why;
  const fs::path dir = temp_dir("cuda-whole-network");
  for (const char* card : {"ravdess-vgg16", "torchvision-vgg16"}) {
    const ModelSpec spec =
        ModelSpec::load_card(std::string(FERVID_SOURCE_DIR) + "/weights/" + card + ".json");
    const std::string path = (dir / (std::string(card) + ".safetensors")).string();
    make_weights(spec, seed(), StDType::F32, path);
    const Weights weights = Weights::load(path);
    auto cpu_be = cpu::make_cpu_backend(0);
    Model cpu_model(weights, *cpu_be, 16);
    const std::vector<float> want = logits_of(cpu_model, frames);
    const int classes = spec.num_classes();
    // Every precision with the default conv choice, and fp16/bf16 with each implementation.
    const std::pair<const char*, const char*> configs[] = {
        {"fp32", "auto"},   {"tf32", "auto"},  {"fp16", "auto"},  {"fp16", "cudnn"},
        {"fp16", "fervid"}, {"bf16", "cudnn"}, {"bf16", "fervid"}};
    for (auto [precision, impl] : configs) {
      auto gpu = make_cuda_backend({"cuda", precision, 0, impl});
      Model gpu_model(weights, *gpu, 7);  // 7: batches of several sizes, the last one partial
      const std::vector<float> got = logits_of(gpu_model, frames);
      double err2 = 0, ref2 = 0;
      int agree = 0;
      for (size_t f = 0; f < frames.size(); ++f) {
        const float* g = got.data() + f * classes;
        const float* r = want.data() + f * classes;
        for (int c = 0; c < classes; ++c) {
          err2 += double(g[c] - r[c]) * (g[c] - r[c]);
          ref2 += double(r[c]) * r[c];
        }
        agree += std::max_element(g, g + classes) - g == std::max_element(r, r + classes) - r;
      }
      const double rel = std::sqrt(err2 / ref2);
      const double bound = std::string(precision) == "fp32"   ? 1e-5
                           : std::string(precision) == "tf32" ? 5e-3
                                                              : 2e-2;
      const double agreement = double(agree) / double(frames.size());
      std::printf(
          "[ network  ] %s %s conv %s: %zu frames, relative L2 of logits %.2e (bound %.0e), "
          "top-1 agreement %.1f%%\n",
          card, precision, impl, frames.size(), rel, bound, 100 * agreement);
      EXPECT_LE(rel, bound) << card << " " << precision << " " << impl;
      EXPECT_GE(agreement, std::string(precision) == "fp32" ? 1.0 : 0.99)
          << card << " " << precision << " " << impl;
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
  const ModelSpec spec =
      ModelSpec::load_card(std::string(FERVID_SOURCE_DIR) + "/weights/ravdess-vgg16.json");
  const std::string path = (temp_dir(folder) / "w.safetensors").string();
  make_weights(spec, seed(), StDType::F32, path);
  return Weights::load(path);
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
    auto gpu = make_cuda_backend({"cuda", precision, 0, "auto"});
    for (int model_round = 0; model_round < 2; ++model_round) {
      Model model(weights, *gpu, 16);
      const ReplayStats before = gpu->replay_stats();
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
        model.forward_preprocessed(n);
        gpu->copy_to_host(replayed.data(), logits);
        gpu->copy_from_host(logits, poison.data());
        model.forward_preprocessed(n, [](const std::string&) {});
        gpu->copy_to_host(op_by_op.data(), logits);
        for (float v : op_by_op) ASSERT_TRUE(std::isfinite(v));
        EXPECT_EQ(0, std::memcmp(replayed.data(), op_by_op.data(), replayed.size() * 4));
      }
      const ReplayStats after = gpu->replay_stats();
      EXPECT_TRUE(after.enabled) << after.failure;
      EXPECT_EQ(after.failure, "");
      // Batches 5, 16 and 9 each have a graph, and most batches were replays of one.
      EXPECT_EQ(after.graphs, before.graphs + 3);
      EXPECT_GE(after.replays - before.replays, 6);
    }
    // Both models' graphs went with them.
    EXPECT_EQ(gpu->replay_stats().graphs, 0);
  }
  // Switched off, nothing is captured.
  BackendOptions off{"cuda", "fp16", 0, "auto"};
  off.cuda_graphs = false;
  auto plain = make_cuda_backend(off);
  Model model(weights, *plain, 4);
  for (int i = 0; i < 3; ++i) model.forward_preprocessed(4);
  plain->synchronize();
  EXPECT_FALSE(plain->replay_stats().enabled);
  EXPECT_EQ(plain->replay_stats().graphs, 0);
}

// The whole classify job with its stages on three streams (preprocess, frame stage, vote, with
// fences and two input slots; finished videos read back a batch later) gives the votes of the
// same job run in order on one stream, on CPU-decoded frames and on NVDEC frames; with per-frame
// rows, each video's counts and mean probabilities are those of its rows.
TEST(CudaBackend, ClassifyOnStageStreamsEqualsInOrder) {
  REQUIRE_CUDA_DEVICE();
  SeedTrace trace;
  const Weights weights = random_study_weights("cuda-stage-streams");
  const std::string data = FERVID_DATA_DIR;
  std::vector<std::string> paths;
  for (int r = 0; r < 3; ++r)
    for (const char* clip :
         {"/ravdess/modified/01-01-07-02-02-01-01_1.mp4", "/video/astronaut-720p.mp4",
          "/missing.mp4", "/ravdess/modified/01-01-08-02-01-01-19.mp4"})
      paths.push_back(data + clip);
  const std::vector<InputItem> items = expand_inputs(paths);
  auto gpu = make_cuda_backend({"cuda", "fp16", 0, "auto"});
  Model model(weights, *gpu, 16);
  std::vector<DecoderKind> decoders = {DecoderKind::Cpu};
  std::string notice;
  if (choose_decoder("auto", Device::Cuda, false, &notice) == DecoderKind::Nvdec)
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
      opt.decoder = decoder;
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

}  // namespace
}  // namespace fervid::test
