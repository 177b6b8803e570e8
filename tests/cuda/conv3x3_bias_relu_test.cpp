// conv3x3_bias_relu on the CUDA backend (cuDNN's fused call, its unfused fallback,
// fervid's kernel, the per-layer choice) against the CPU reference on fresh random inputs, outputs
// poisoned before the first and again before the second (planned) call. Without a device every
// test skips and says why.
#include <cstdio>
#include <cstring>

#include "backend_factory.h"
#include "backends/cpu/cpu_backend.h"
#include "cpu/ops.h"
#include "cuda/library_ops.h"
#include "cuda_test_util.h"
#include "fervid/fervid.h"
#include "fervid/weight_layout.h"
#include "layer_util.h"

namespace fervid::test {
namespace {

// One conv3x3 case: random x, w, b rounded to what both f16 and bf16 hold exactly (so one CPU
// reference serves every precision), and that reference.
struct ConvCase {
  int n, h, w, c, k;
  bool pool;
};

struct ConvData {
  OwnedTensor x, w, b, ref;
};

// `same` given: its weights and bias, fresh inputs.
ConvData conv_data(const ConvCase& s, const ConvData* same = nullptr) {
  ConvData d{host_tensor({s.n, s.h, s.w, s.c}, DType::F32, Layout::NHWC),
             host_tensor({s.k, s.c, 3, 3}, DType::F32),
             host_tensor({s.k}, DType::F32),
             {}};
  fill_uniform(d.x.tensor, -1, 1);
  fill_uniform(d.w.tensor, -1.0f / std::sqrt(9.0f * s.c), 1.0f / std::sqrt(9.0f * s.c));
  fill_uniform(d.b.tensor, -0.2f, 0.2f);
  if (same) {
    std::memcpy(d.w.tensor.data(), same->w.tensor.data(), d.w.tensor.bytes());
    std::memcpy(d.b.tensor.data(), same->b.tensor.data(), d.b.tensor.bytes());
  }
  for (const Tensor* t : {&d.x.tensor, &d.w.tensor, &d.b.tensor}) {
    round_to(*t, DType::BF16);
    round_to(*t, DType::F16);
  }
  const int oh = s.pool ? s.h / 2 : s.h, ow = s.pool ? s.w / 2 : s.w;
  d.ref = host_tensor({s.n, oh, ow, s.k}, DType::F32, Layout::NHWC);
  OwnedTensor w_ohwi = conv_weight_ohwi(d.w.tensor);
  cpu::conv3x3_bias_relu(d.x.tensor, w_ohwi.tensor, d.b.tensor, s.pool, d.ref.tensor);
  return d;
}

// A conv layer `gpu` prepared, on one case's inputs against the CPU reference. The first call
// plans the batch size (the search writes y); the second runs the plan on a y poisoned again, so
// a read of y (cuDNN's z = y with alpha2 = 0) or an element the planned call leaves unwritten
// shows as NaN.
void expect_layer_matches(Backend& gpu, PreparedLayer& layer, const ConvData& d,
                          const std::string& what) {
  const std::vector<double> want = as_f64(d.ref.tensor);
  const DType dt = gpu.compute_dtype();
  auto gx = to_device(gpu, d.x.tensor, dt);
  auto gy = to_device(gpu, d.ref.tensor, dt, true);
  for (const char* call : {"first call", "planned call"}) {
    poison_device(gpu, gy.tensor);
    run_layer(layer, gx.tensor, gy.tensor);
    const std::vector<float> got = to_host(gpu, gy.tensor);
    expect_close(got.data(), want, op_tolerance(precision_name(gpu.precision()), rms(want)),
                 what + " " + precision_name(gpu.precision()) + " " + call + " " +
                     d.x.tensor.describe() + " -> " + d.ref.tensor.describe());
  }
}

// cuDNN's plain convolution + fervid's bias_relu kernel (the path for configurations cuDNN's
// fused call refuses), on the same inputs.
void expect_unfused_matches(Backend& gpu, const ConvData& d) {
  const std::vector<double> want = as_f64(d.ref.tensor);
  const DType dt = gpu.compute_dtype();
  OwnedTensor krsc = conv_weight_ohwi(d.w.tensor);
  auto gx = to_device(gpu, d.x.tensor, dt), gw = to_device(gpu, krsc.tensor, dt),
       gb = to_device(gpu, d.b.tensor, dt), gy = to_device(gpu, d.ref.tensor, dt, true);
  cuda::ConvCudnn unfused(nullptr, gpu.precision() == Precision::Tf32, MemoryMeter(), false);
  for (const char* call : {"first call", "planned call"}) {
    poison_device(gpu, gy.tensor);
    unfused.run(gx.tensor, gw.tensor, gb.tensor, gy.tensor);
    FV_CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<float> got = to_host(gpu, gy.tensor);
    expect_close(got.data(), want, op_tolerance(precision_name(gpu.precision()), rms(want)),
                 "cudnn conv unfused (" + unfused.last_algorithm() + ") " +
                     precision_name(gpu.precision()) + " " + call + " " + d.x.tensor.describe());
  }
}

// Every backend in `gpus` on one case: a conv layer each prepares, against the CPU reference.
// Returns the layers (their plans say what ran).
std::vector<std::unique_ptr<PreparedLayer>> expect_conv_matches(const std::vector<Backend*>& gpus,
                                                                const ConvCase& s,
                                                                const std::string& what) {
  const ConvData d = conv_data(s);
  std::vector<std::unique_ptr<PreparedLayer>> layers;
  for (Backend* gpu : gpus) {
    layers.push_back(prepare_conv(*gpu, d.w.tensor, d.b.tensor, s.h, s.w, s.pool, what));
    expect_layer_matches(*gpu, *layers.back(), d, what);
    if (!s.pool && what == "cudnn conv") expect_unfused_matches(*gpu, d);
  }
  return layers;
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
    owned.push_back(make_cuda_backend(gpu_options(precision, "cudnn")));
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
      BackendOptions o;
      o.device = parse_device(device);
      o.precision = parse_precision(precision);
      o.conv_impl = parse_conv_impl(impl);
      make_backend(o, {});
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
  auto fp16 = make_cuda_backend(gpu_options("fp16", "fervid"));
  auto bf16 = make_cuda_backend(gpu_options("bf16", "fervid"));
  const ModelSpec spec = resolve_card("torchvision-vgg16").first;
  for (int n : {1, 7}) {
    int size = spec.input_size;
    for (const ConvLayer& l : spec.conv_layers()) {
      for (const auto& layer : expect_conv_matches(
               {fp16.get(), bf16.get()}, {n, size, size, l.in_channels, l.out_channels, l.pool},
               "fervid conv " + l.name))
        EXPECT_EQ(layer->plans().at(0).impl, "fervid");
      if (l.pool) size /= 2;
    }
  }
}

// Sizes that are multiples of no tile (8x16 pixels, 64 channels, 32-deep chunks), channel
// counts for the gather path (3, 5, 48) and the vector path (32, 64, 96), with and without pool.
TEST(CudaBackend, FervidConvMatchesCpuOnOddShapes) {
  REQUIRE_CUDA_DEVICE();
  SeedTrace trace;
  auto fp16 = make_cuda_backend(gpu_options("fp16", "fervid"));
  auto bf16 = make_cuda_backend(gpu_options("bf16", "fervid"));
  const std::vector<ConvCase> cases = {
      {2, 13, 17, 64, 128, false}, {2, 13, 17, 64, 128, true}, {1, 15, 11, 3, 64, true},
      {3, 9, 31, 32, 40, false},   {3, 9, 31, 32, 40, true},   {1, 1, 1, 64, 64, false},
      {2, 3, 5, 96, 72, true},     {1, 7, 7, 3, 16, false},    {2, 6, 10, 5, 24, true},
      {1, 19, 9, 48, 65, false},   {5, 2, 2, 128, 192, true},  {1, 33, 18, 256, 8, true}};
  for (const ConvCase& c : cases) expect_conv_matches({fp16.get(), bf16.get()}, c, "fervid conv");
}

// --conv-impl auto times cuDNN (+ pool) and fervid's kernel once per layer and batch size and
// keeps the faster; a smaller batch keeps that choice, a larger one is timed again; f32 always
// runs on cuDNN.
TEST(CudaBackend, ConvImplAutoTimesBothAndKeepsTheFaster) {
  REQUIRE_CUDA_DEVICE();
  SeedTrace trace;
  auto fp16 = make_cuda_backend(gpu_options("fp16", "auto"));
  auto fp32 = make_cuda_backend(gpu_options("fp32", "auto"));
  for (const ConvCase c :
       {ConvCase{4, 28, 28, 256, 512, true}, ConvCase{4, 28, 28, 512, 512, false}}) {
    const ConvData d4 = conv_data(c);
    for (Backend* gpu : {fp16.get(), fp32.get()}) {
      auto layer = prepare_conv(*gpu, d4.w.tensor, d4.b.tensor, c.h, c.w, c.pool, "auto conv");
      expect_layer_matches(*gpu, *layer, d4, "auto conv");
      ConvCase c2 = c, c6 = c;
      c2.n = 2;
      c6.n = 6;
      expect_layer_matches(*gpu, *layer, conv_data(c2, &d4), "auto conv, batch 2");
      std::vector<LayerPlan> plans = layer->plans();
      if (gpu == fp32.get()) {
        ASSERT_EQ(plans.size(), 1u);
        EXPECT_EQ(plans[0].impl, "cudnn");
        EXPECT_EQ(plans[0].timed_batch, 0);
        continue;
      }
      ASSERT_EQ(plans.size(), 1u);  // batch 2 took batch 4's choice
      EXPECT_EQ(plans[0].timed_batch, 4);
      EXPECT_GT(plans[0].cudnn_ms, 0.0);
      EXPECT_GT(plans[0].igemm_ms, 0.0);
      EXPECT_EQ(plans[0].impl, plans[0].igemm_ms < plans[0].cudnn_ms ? "fervid" : "cudnn");
      std::printf("[ auto     ] 28x28 %d->%d%s: cudnn %.3f ms, fervid %.3f ms -> %s\n", c.c, c.k,
                  c.pool ? " pool" : "", plans[0].cudnn_ms, plans[0].igemm_ms,
                  plans[0].impl.c_str());
      // A larger batch is timed again; batch 4's choice stays for batch 4.
      expect_layer_matches(*gpu, *layer, conv_data(c6, &d4), "auto conv, batch 6");
      plans = layer->plans();
      ASSERT_EQ(plans.size(), 2u);
      EXPECT_EQ(plans[0].timed_batch, 4);
      EXPECT_EQ(plans[1].timed_batch, 6);
    }
  }
}

}  // namespace
}  // namespace fervid::test
