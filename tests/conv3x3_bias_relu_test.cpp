// conv3x3_bias_relu (CPU: im2col + OpenBLAS, and oneDNN's) against a naive float64 loop on random
// NHWC inputs; the CPU backend runs the weights it prepared on oneDNN.
#include <algorithm>
#include <array>
#include <cmath>
#include <iostream>
#include <thread>

#include "backends/cpu/cpu_backend.h"
#include "cpu/onednn_conv.h"
#include "cpu/ops.h"
#include "fervid/weight_layout.h"
#include "layer_util.h"
#include "test_util.h"

namespace fervid::test {
namespace {

struct ConvCase {
  int n, h, w, c, k;
  bool pool;
};

// Naive reference straight from the OIHW weights (no reordering), f64 accumulation.
std::vector<double> reference(const Tensor& x, const Tensor& w_oihw, const Tensor& b, bool pool) {
  const int n = int(x.dim(0)), h = int(x.dim(1)), wd = int(x.dim(2)), c = int(x.dim(3));
  const int k = int(w_oihw.dim(0));
  std::vector<double> full(size_t(n) * h * wd * k);
  const float* xp = x.ptr<float>();
  const float* wp = w_oihw.ptr<float>();
  for (int i = 0; i < n; ++i)
    for (int y = 0; y < h; ++y)
      for (int xx = 0; xx < wd; ++xx)
        for (int o = 0; o < k; ++o) {
          double acc = b.ptr<float>()[o];
          for (int ci = 0; ci < c; ++ci)
            for (int ky = 0; ky < 3; ++ky)
              for (int kx = 0; kx < 3; ++kx) {
                int iy = y + ky - 1, ix = xx + kx - 1;
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                acc += double(xp[((size_t(i) * h + iy) * wd + ix) * c + ci]) *
                       wp[((size_t(o) * c + ci) * 3 + ky) * 3 + kx];
              }
          full[((size_t(i) * h + y) * wd + xx) * k + o] = std::max(acc, 0.0);
        }
  if (!pool) return full;
  std::vector<double> pooled(size_t(n) * (h / 2) * (wd / 2) * k);
  for (int i = 0; i < n; ++i)
    for (int y = 0; y < h / 2; ++y)
      for (int xx = 0; xx < wd / 2; ++xx)
        for (int o = 0; o < k; ++o) {
          double m = -INFINITY;
          for (int dy = 0; dy < 2; ++dy)
            for (int dx = 0; dx < 2; ++dx)
              m = std::max(m, full[((size_t(i) * h + 2 * y + dy) * wd + 2 * xx + dx) * k + o]);
          pooled[((size_t(i) * (h / 2) + y) * (wd / 2) + xx) * k + o] = m;
        }
  return pooled;
}

class Conv3x3Test : public testing::TestWithParam<ConvCase> {};

// How a case's inputs and weights meet bf16: not at all; rounded to bf16 values before the op
// and the reference see them; or left in f32 for the op, which must round them itself, while the
// reference sees them rounded.
enum class Bf16Inputs { None, Rounded, RoundedByOp };

// A case's fresh random inputs, its OHWI weights, a poisoned output and the float64 reference.
struct ConvRun {
  OwnedTensor x, w, b, w_ohwi, y;
  std::vector<double> ref;
  ConvRun(const ConvCase& p, Bf16Inputs bf16 = Bf16Inputs::None)
      : x(host_tensor({p.n, p.h, p.w, p.c}, DType::F32)),
        w(host_tensor({p.k, p.c, 3, 3}, DType::F32)),
        b(host_tensor({p.k}, DType::F32)),
        y(host_tensor({p.n, p.pool ? p.h / 2 : p.h, p.pool ? p.w / 2 : p.w, p.k}, DType::F32)) {
    fill_uniform(x.tensor, -1, 1);
    fill_uniform(w.tensor, -0.5, 0.5);
    fill_uniform(b.tensor, -0.5, 0.5);
    OwnedTensor xr = copy_of(x.tensor), wr = copy_of(w.tensor);
    for (const Tensor* t : {&xr.tensor, &wr.tensor}) {
      float* v = t->ptr<float>();
      for (int64_t i = 0; bf16 != Bf16Inputs::None && i < t->numel(); ++i)
        v[i] = bf16_to_float(float_to_bf16(v[i]));
    }
    if (bf16 == Bf16Inputs::Rounded) x = std::move(xr), w = std::move(wr);
    w_ohwi = conv_weight_ohwi(w.tensor);
    ref = bf16 == Bf16Inputs::RoundedByOp ? reference(xr.tensor, wr.tensor, b.tensor, p.pool)
                                          : reference(x.tensor, w.tensor, b.tensor, p.pool);
    poison(y.tensor);
  }
  static OwnedTensor copy_of(const Tensor& t) {
    OwnedTensor c = host_tensor(t.shape(), DType::F32);
    std::copy_n(t.ptr<const float>(), t.numel(), c.tensor.ptr<float>());
    return c;
  }
  const float* got() const { return y.tensor.ptr<float>(); }
  double rms() const {
    double s = 0;
    for (double v : ref) s += v * v;
    return std::sqrt(s / double(ref.size()));
  }
};

// Winograd's transforms round sums about as large as the output's spread, not the element's own
// size, so an element near zero is off by up to ~1e-5 of the output's RMS; the relative L2 bound
// (docs/design.md's fp32 1e-5) and the relative one stay those of fp32.
Tolerance winograd_bound(const ConvRun& r) { return {1e-5 * std::max(1.0, r.rms()), 1e-4, 1e-5}; }

TEST_P(Conv3x3Test, MatchesFloat64Reference) {
  SeedTrace trace;
  const ConvCase p = GetParam();
  ConvRun r(p);
  cpu::conv3x3_bias_relu(r.x.tensor, r.w_ohwi.tensor, r.b.tensor, p.pool, r.y.tensor);
  expect_close(r.got(), r.ref, kFp32, "conv3x3_bias_relu");
}

TEST_P(Conv3x3Test, OnednnMatchesFloat64Reference) {
  if (!cpu::onednn_built()) GTEST_SKIP() << "this build has no oneDNN (FERVID_ONEDNN)";
  SeedTrace trace;
  const ConvCase p = GetParam();
  ConvRun r(p);
  cpu::OnednnConv conv(r.w_ohwi.tensor);
  for (int round = 0; round < 2; ++round) {  // a new plan, then the same plan again
    poison(r.y.tensor);
    conv.run(r.x.tensor, r.b.tensor, p.pool, r.y.tensor);
    expect_close(r.got(), r.ref, kFp32, "onednn conv3x3_bias_relu");
  }
}

// Winograd (where this CPU has oneDNN's kernel; direct elsewhere, then the same test): fp32
// bounds. Inputs in [-1, 1] and weights in [-0.5, 0.5] make the transforms' rounding as large as
// real activations do, relative to the output.
TEST_P(Conv3x3Test, OnednnWinogradMatchesFloat64Reference) {
  if (!cpu::onednn_built()) GTEST_SKIP() << "this build has no oneDNN (FERVID_ONEDNN)";
  SeedTrace trace;
  const ConvCase p = GetParam();
  ConvRun r(p);
  cpu::OnednnConv conv(r.w_ohwi.tensor, cpu::OnednnMath::Winograd);
  for (int round = 0; round < 2; ++round) {
    poison(r.y.tensor);
    conv.run(r.x.tensor, r.b.tensor, p.pool, r.y.tensor);
    expect_close(r.got(), r.ref, winograd_bound(r), "onednn Winograd conv3x3_bias_relu");
  }
  std::cout << "[ info ] " << p.n << "x" << p.h << "x" << p.w << "x" << p.c << " -> " << p.k
            << (conv.winograd(p.h, p.w, p.pool) ? ": Winograd" : ": direct (no Winograd kernel)")
            << "\n";
}

// On an AVX-512 CPU oneDNN has Winograd kernels for VGG16's shapes, and the CPU backend uses them
// under --conv-impl winograd and auto in fp32 (elsewhere the layer runs the direct convolution,
// tested above, and --conv-impl winograd is refused in one line).
TEST(Conv3x3, WinogradRunsOnVgg16ShapesWithAvx512) {
  if (!cpu::onednn_built()) GTEST_SKIP() << "this build has no oneDNN (FERVID_ONEDNN)";
  const std::string why = cpu::onednn_winograd_unavailable();
  EXPECT_EQ(why.empty(), bool(__builtin_cpu_supports("avx512f"))) << why;
  if (!why.empty()) {
    EXPECT_THROW(cpu::make_cpu_backend(0, ConvImpl::Winograd), Error);
    GTEST_SKIP() << why;
  }
  SeedTrace trace;
  for (auto [c, k, h] : {std::array<int, 3>{64, 64, 28}, {128, 256, 14}, {512, 512, 14}}) {
    ConvRun r({1, h, h, c, k, true});
    cpu::OnednnConv conv(r.w_ohwi.tensor, cpu::OnednnMath::Winograd);
    EXPECT_TRUE(conv.winograd(h, h, true)) << c << " -> " << k << " channels, " << h << "x" << h;
    conv.run(r.x.tensor, r.b.tensor, true, r.y.tensor);
    expect_close(r.got(), r.ref, winograd_bound(r), "onednn Winograd conv3x3_bias_relu");
  }
  for (ConvImpl impl : {ConvImpl::Winograd, ConvImpl::Auto}) {
    auto be = cpu::make_cpu_backend(0, impl);
    EXPECT_NE(be->device_name().find("Winograd"), std::string::npos) << be->device_name();
  }
  EXPECT_THROW(cpu::make_cpu_backend(0, ConvImpl::Winograd, Precision::Bf16), Error);
}

// A layer planned in one thread runs in others (the Python module's stream thread, the decode
// pipeline): every oneDNN primitive takes the running thread's scratchpad, not the one oneDNN
// sized for the thread that created it (Winograd's is large: that crashed before).
TEST(Conv3x3, OnednnLayersRunFromThreadsOtherThanTheOneThatPlannedThem) {
  if (!cpu::onednn_built()) GTEST_SKIP() << "this build has no oneDNN (FERVID_ONEDNN)";
  SeedTrace trace;
  const ConvCase p{2, 28, 28, 128, 128, true};
  ConvRun r(p);
  for (cpu::OnednnMath math : {cpu::OnednnMath::Fp32, cpu::OnednnMath::Winograd}) {
    cpu::OnednnConv conv(r.w_ohwi.tensor, math);
    conv.run(r.x.tensor, r.b.tensor, p.pool, r.y.tensor);  // planned here
    for (int t = 0; t < 2; ++t) {
      poison(r.y.tensor);
      std::thread([&] { conv.run(r.x.tensor, r.b.tensor, p.pool, r.y.tensor); }).join();
      expect_close(r.got(), r.ref, winograd_bound(r), "onednn conv3x3 from another thread");
    }
  }
  // bf16 on the FMA units: the rounded frame is the running thread's buffer.
  ConvRun rb(p, Bf16Inputs::RoundedByOp);
  cpu::OnednnConv conv(rb.w_ohwi.tensor, cpu::OnednnMath::Bf16OnFma);
  conv.run(rb.x.tensor, rb.b.tensor, p.pool, rb.y.tensor);
  poison(rb.y.tensor);
  std::thread([&] { conv.run(rb.x.tensor, rb.b.tensor, p.pool, rb.y.tensor); }).join();
  expect_close(rb.got(), rb.ref, kFp32, "onednn bf16-on-FMA conv3x3 from another thread");
}

// bf16: inputs and weights rounded to bf16 first (the reference sees the same values), so what
// is left is oneDNN's f32 accumulation; docs/design.md's bf16 bounds.
TEST_P(Conv3x3Test, OnednnBf16MatchesFloat64ReferenceOfRoundedInputs) {
  const std::string why = cpu::onednn_bf16_unavailable();
  if (!why.empty()) GTEST_SKIP() << why;
  SeedTrace trace;
  const ConvCase p = GetParam();
  ConvRun r(p, Bf16Inputs::Rounded);
  cpu::OnednnConv conv(r.w_ohwi.tensor, cpu::OnednnMath::Bf16);
  conv.run(r.x.tensor, r.b.tensor, p.pool, r.y.tensor);
  expect_close(r.got(), r.ref, {3e-2 * r.rms(), 3e-2, 2e-2}, "onednn bf16 conv3x3");
}

// Both bf16 maths round the f32 frame and weights they are given to bf16 themselves, and then
// sum exact products in f32: against the float64 reference of the rounded values they stay
// within fp32's bounds (had either kept an operand in f32, its ~4e-3 relative error would not).
// Bf16OnFma runs on any CPU with oneDNN (it is oneDNN's f32 kernel); Bf16 needs AVX512_BF16.
TEST_P(Conv3x3Test, OnednnBf16MathsRoundTheirOperandsThemselves) {
  if (!cpu::onednn_built()) GTEST_SKIP() << "this build has no oneDNN (FERVID_ONEDNN)";
  SeedTrace trace;
  const ConvCase p = GetParam();
  ConvRun r(p, Bf16Inputs::RoundedByOp);
  const bool native = cpu::onednn_bf16_unavailable().empty();
  for (cpu::OnednnMath math : {cpu::OnednnMath::Bf16OnFma, cpu::OnednnMath::Bf16}) {
    if (math == cpu::OnednnMath::Bf16 && !native) continue;
    cpu::OnednnConv conv(r.w_ohwi.tensor, math);
    for (int round = 0; round < 2; ++round) {
      poison(r.y.tensor);
      conv.run(r.x.tensor, r.b.tensor, p.pool, r.y.tensor);
      expect_close(
          r.got(), r.ref, kFp32,
          math == cpu::OnednnMath::Bf16 ? "onednn bf16 conv3x3" : "onednn bf16-on-FMA conv3x3");
    }
  }
}

// int8: an input scale that saturates the inputs above 0.8 (x is uniform in [-1, 1]: those below
// 0 quantize to 0, as after a ReLU), so both ends of u8 are used.
constexpr float kInt8TestScale = 0.8f / 255;

// The int8 reference against the float64 fp32 reference: the quantization's error only. An
// input's rounding is at most half its scale and a weight's half its channel's scale, so each
// product is off by at most that much times the other operand; inputs below 0 (clamped to 0) and
// above 0.8 (saturated) are left out of the fp32 reference here the same way.
TEST_P(Conv3x3Test, Int8ReferenceIsTheQuantizedConvolution) {
  SeedTrace trace;
  const ConvCase p = GetParam();
  ConvRun r(p);
  float* x = r.x.tensor.ptr<float>();
  for (int64_t i = 0; i < r.x.tensor.numel(); ++i) x[i] = std::clamp(x[i], 0.0f, 0.8f);
  const std::vector<double> ref = reference(r.x.tensor, r.w.tensor, r.b.tensor, p.pool);
  cpu::conv3x3_bias_relu_int8(r.x.tensor, r.w_ohwi.tensor, r.b.tensor, kInt8TestScale, p.pool,
                              r.y.tensor);
  // |dx| <= scale / 2 with |w| <= 0.5, |dw| <= 0.5 / 127 / 2 with |x| <= 0.8, 9 C terms.
  const double per_term = kInt8TestScale / 2 * 0.5 + 0.5 / 127 / 2 * 0.8;
  const double worst = 9.0 * p.c * per_term;
  expect_close(r.got(), ref, {worst, 0, 5e-2}, "conv3x3_bias_relu_int8 vs fp32");
}

// The int8 reference's output for a case (f32, as cpu::conv3x3_bias_relu_int8 writes it).
std::vector<float> int8_reference(const ConvRun& r, const ConvCase& p) {
  OwnedTensor want = ConvRun::copy_of(r.y.tensor);
  cpu::conv3x3_bias_relu_int8(r.x.tensor, r.w_ohwi.tensor, r.b.tensor, kInt8TestScale, p.pool,
                              want.tensor);
  const float* f = want.tensor.ptr<const float>();
  return {f, f + want.tensor.numel()};
}

// oneDNN's int8 convolution (VNNI or AMX) against the int8 reference: the same integers summed
// exactly, so only the last f32 steps differ (oneDNN adds the bias to the sum before the scale).
TEST_P(Conv3x3Test, OnednnInt8MatchesTheInt8Reference) {
  const std::string why = cpu::onednn_int8_unavailable();
  if (!why.empty()) GTEST_SKIP() << why;
  SeedTrace trace;
  const ConvCase p = GetParam();
  ConvRun r(p);
  const std::vector<float> want = int8_reference(r, p);
  const std::vector<double> ref(want.begin(), want.end());
  cpu::OnednnConv conv(r.w_ohwi.tensor, cpu::OnednnMath::Int8, kInt8TestScale);
  for (int round = 0; round < 2; ++round) {  // a new plan, then the same plan again
    poison(r.y.tensor);
    conv.run(r.x.tensor, r.b.tensor, p.pool, r.y.tensor);
    expect_close(r.got(), ref, kFp32, "onednn int8 conv3x3");
  }
}

// Between int8 layers the activations stay u8: a layer reads the u8 frame the one before wrote,
// and writes its own output as u8 at the next layer's scale (pooled in u8). Against the reference
// quantized the same way: the integer sums are the same, so an element can differ by one step
// only where the f32 value lies within rounding of a half step.
TEST_P(Conv3x3Test, OnednnInt8ReadsAndWritesU8AsTheReferenceQuantized) {
  const std::string why = cpu::onednn_int8_unavailable();
  if (!why.empty()) GTEST_SKIP() << why;
  SeedTrace trace;
  const ConvCase p = GetParam();
  ConvRun r(p);
  const std::vector<float> want = int8_reference(r, p);
  const int64_t outputs = int64_t(want.size());
  const float top = *std::max_element(want.begin(), want.end());
  // 0.8 of the largest value: the top fifth saturates.
  const float out_scale = std::max(top, 1e-3f) * 0.8f / 255;
  std::vector<uint8_t> want_u8(want.size());
  cpu::quantize_u8(want.data(), outputs, out_scale, want_u8.data());
  std::vector<uint8_t> x_u8(size_t(r.x.tensor.numel()));
  cpu::quantize_u8(r.x.tensor.ptr<const float>(), r.x.tensor.numel(), kInt8TestScale, x_u8.data());
  const Tensor x8(x_u8.data(), r.x.tensor.shape(), DType::U8, Layout::NHWC);
  std::vector<uint8_t> y_u8(want_u8.size());
  const Tensor y8(y_u8.data(), r.y.tensor.shape(), DType::U8, Layout::NHWC);
  for (const cpu::Int8Io io :
       {cpu::Int8Io{true, 0}, cpu::Int8Io{false, out_scale}, cpu::Int8Io{true, out_scale}}) {
    const std::string what = std::string("onednn int8 conv3x3, ") +
                             (io.u8_input ? "u8 in" : "f32 in") +
                             (io.out_scale > 0 ? ", u8 out" : ", f32 out");
    cpu::OnednnConv conv(r.w_ohwi.tensor, cpu::OnednnMath::Int8, kInt8TestScale, io);
    if (io.out_scale == 0) {
      poison(r.y.tensor);
      conv.run(x8, r.b.tensor, p.pool, r.y.tensor);
      expect_close(r.got(), std::vector<double>(want.begin(), want.end()), kFp32, what);
      continue;
    }
    std::fill(y_u8.begin(), y_u8.end(), uint8_t(0xA5));  // poison
    conv.run(io.u8_input ? x8 : r.x.tensor, r.b.tensor, p.pool, y8);
    int64_t off = 0, worst = 0;
    for (size_t i = 0; i < y_u8.size(); ++i) {
      const int64_t d = std::abs(int64_t(y_u8[i]) - int64_t(want_u8[i]));
      off += d != 0;
      worst = std::max(worst, d);
    }
    EXPECT_LE(worst, 1) << what;
    // A step's boundary within f32 rounding: a few in a million elements at most.
    EXPECT_LE(off, 1 + int64_t(y_u8.size() / 1000)) << what;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, Conv3x3Test,
    testing::Values(ConvCase{1, 5, 7, 3, 4, false}, ConvCase{2, 13, 17, 3, 8, true},
                    ConvCase{3, 9, 11, 16, 5, false}, ConvCase{2, 14, 14, 32, 24, true},
                    // a 1x1 frame (all padding) with 32 outputs: with 3, a seed could leave all
                    // but a near-zero one under the ReLU, and a norm of ~1e-2 makes f32's
                    // rounding of 7 terms (~2e-7) break the relative L2 bound (FERVID_SEED=
                    // 1702656821 did)
                    ConvCase{1, 1, 1, 7, 32, false}, ConvCase{4, 6, 3, 64, 64, true},
                    // more pixels than one im2col block (several blocks)
                    ConvCase{2, 40, 36, 96, 16, true},
                    // oneDNN's pooled layers go in bands of rows (kBandBytes of output): 64 wide
                    // x 64 channels is 32 rows a band, so 71 rows are bands of 32, 32 and 7
                    // (the last row left out by the pool's floor)
                    ConvCase{2, 71, 64, 8, 64, true}));

TEST(Conv3x3, RejectsMismatchedShapes) {
  auto x = host_tensor({1, 4, 4, 3}, DType::F32);
  auto w = host_tensor({8, 3, 3, 4}, DType::F32);
  auto b = host_tensor({8}, DType::F32);
  auto y = host_tensor({1, 4, 4, 8}, DType::F32);
  EXPECT_THROW(cpu::conv3x3_bias_relu(x.tensor, w.tensor, b.tensor, false, y.tensor), Error);
}

// A conv layer the CPU backend prepares runs on its own oneDNN convolution (when built with it),
// made for exactly its weights; layer after layer with new weights (at whatever address), each
// runs its own, and its plan says what runs it.
TEST(Conv3x3, CpuBackendRunsItsPreparedLayersOnOnednn) {
  SeedTrace trace;
  auto be = cpu::make_cpu_backend(0);
  EXPECT_NE(be->device_name().find(cpu::onednn_built() ? "oneDNN" : "OpenBLAS"), std::string::npos)
      << be->device_name();
  auto x = host_tensor({2, 10, 12, 16}, DType::F32);
  auto b = host_tensor({24}, DType::F32);
  auto y = host_tensor({2, 5, 6, 24}, DType::F32);
  fill_uniform(x.tensor, -1, 1);
  fill_uniform(b.tensor, -0.5, 0.5);
  for (int layer = 0; layer < 4; ++layer) {
    auto w = host_tensor({24, 16, 3, 3}, DType::F32);
    fill_uniform(w.tensor, -0.5, 0.5);
    {
      auto prepared = prepare_conv(*be, w.tensor, b.tensor, 10, 12, true);
      poison(y.tensor);
      run_layer(*prepared, x.tensor, y.tensor);
      EXPECT_EQ(prepared->plans().at(0).impl, cpu::onednn_built() ? "onednn" : "blas");
    }
    expect_close(y.tensor.ptr<float>(), reference(x.tensor, w.tensor, b.tensor, true), kFp32,
                 "CPU backend conv3x3_bias_relu");
  }
  EXPECT_THROW(cpu::make_cpu_backend(0, ConvImpl::Cudnn)->name(), Error);
}

// --precision bf16 on the CPU: every conv layer on oneDNN in bf16 where the CPU can, else one
// line naming the missing instructions; never with --conv-impl blas.
TEST(Conv3x3, CpuBf16RunsOrSaysWhichInstructionsAreMissing) {
  const std::string why = cpu::cpu_bf16_unavailable();
  if (why.empty()) {
    auto be = cpu::make_cpu_backend(0, ConvImpl::Auto, Precision::Bf16);
    EXPECT_EQ(be->precision(), Precision::Bf16);
  } else {
    try {
      cpu::make_cpu_backend(0, ConvImpl::Auto, Precision::Bf16);
      ADD_FAILURE() << "bf16 accepted where " << why;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(cpu::make_cpu_backend(0, ConvImpl::Blas, Precision::Bf16), Error);
  EXPECT_THROW(cpu::make_cpu_backend(0, ConvImpl::Auto, Precision::Fp16), Error);
}

// Where the bf16 dot product is the slower (Intel's Sapphire Rapids cores without AMX), auto
// runs bf16 operands on the f32 FMA units and says so in the device's name; --conv-impl onednn
// keeps oneDNN's bf16 kernels. Elsewhere both run the bf16 kernels.
TEST(Conv3x3, CpuBf16TakesTheFmaUnitsWhereTheBf16DotProductIsSlower) {
  if (!cpu::onednn_built()) GTEST_SKIP() << "this build has no oneDNN (FERVID_ONEDNN)";
  EXPECT_NE(cpu::bf16_dot_slow_on(true, true, false), "");
  for (auto [intel, fp16, amx] : {std::array<bool, 3>{true, true, true},
                                  {true, false, false},
                                  {false, true, false},
                                  {false, false, false}})
    EXPECT_EQ(cpu::bf16_dot_slow_on(intel, fp16, amx), "") << intel << fp16 << amx;
  const std::string why = cpu::cpu_bf16_unavailable();
  if (!why.empty()) GTEST_SKIP() << why;
  const std::string slow = cpu::onednn_bf16_dot_slow();
  std::cout << "[ info ] this CPU's bf16: " << (slow.empty() ? "oneDNN's bf16 kernels" : slow)
            << "\n";
  const std::string autos =
      cpu::make_cpu_backend(0, ConvImpl::Auto, Precision::Bf16)->device_name();
  const std::string onednn =
      cpu::make_cpu_backend(0, ConvImpl::Onednn, Precision::Bf16)->device_name();
  EXPECT_EQ(autos.find("f32 FMA") != std::string::npos, !slow.empty()) << autos;
  EXPECT_NE(onednn.find("bf16 kernels"), std::string::npos) << onednn;
}

TEST(Conv3x3, BlasAndOnednnAreChosenByConvImpl) {
  EXPECT_NE(cpu::make_cpu_backend(0, ConvImpl::Blas)->device_name().find("OpenBLAS"),
            std::string::npos);
  if (cpu::onednn_built()) {
    EXPECT_NE(cpu::make_cpu_backend(0, ConvImpl::Onednn)->device_name().find("oneDNN"),
              std::string::npos);
  } else {
    EXPECT_THROW(cpu::make_cpu_backend(0, ConvImpl::Onednn), Error);
  }
}

}  // namespace
}  // namespace fervid::test
