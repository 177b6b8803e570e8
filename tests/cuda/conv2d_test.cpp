// The face detector's CUDA layers (kernels/cuda/conv2d.cu) against the CPU reference ops of the
// same names on fresh random inputs rounded to each dtype first, outputs poisoned: convolutions of
// the detector's six geometries (1x1, depthwise, strided with uneven padding, 5x5 stride 2, two
// groups, a strided 1x1) in f32, f16 and bf16 (and f16 in, f32 out: the network's outputs), the
// residual add with its channel extension, the bilinear upsampling in both conventions. Without
// a device every test skips and says why.
#include "cpu/ops.h"
#include "cuda/ops.h"
#include "cuda_test_util.h"

namespace fervid::test {
namespace {

const char* precision_of(DType d) {
  return d == DType::F16 ? "fp16" : d == DType::BF16 ? "bf16" : "fp32";
}

// A device copy of host f32 values in `dtype` (uploaded as that dtype's bits).
DeviceTensor device_of(const Tensor& host, DType dtype) {
  if (dtype == DType::F32) return upload(host);
  OwnedTensor bits = host_tensor(host.shape(), dtype);
  for (int64_t i = 0; i < host.numel(); ++i) {
    const float v = host.ptr<const float>()[i];
    bits.tensor.ptr<uint16_t>()[i] = dtype == DType::F16 ? float_to_half(v) : float_to_bf16(v);
  }
  return upload(bits.tensor);
}

// A poisoned device output of `shape` in `dtype`.
DeviceTensor poisoned(const std::vector<int64_t>& shape, DType dtype) {
  OwnedTensor h = host_tensor(shape, dtype);
  poison(h.tensor);
  return upload(h.tensor);
}

std::vector<float> fetch(const DeviceTensor& d) {
  OwnedTensor h = host_tensor(d.tensor.shape(), d.tensor.dtype());
  download(h.tensor, d.tensor);
  std::vector<float> out(size_t(h.tensor.numel()));
  for (size_t i = 0; i < out.size(); ++i) {
    if (h.tensor.dtype() == DType::F32) out[i] = h.tensor.ptr<float>()[i];
    if (h.tensor.dtype() == DType::F16) out[i] = half_to_float(h.tensor.ptr<uint16_t>()[i]);
    if (h.tensor.dtype() == DType::BF16) out[i] = bf16_to_float(h.tensor.ptr<uint16_t>()[i]);
  }
  return out;
}

struct Case {
  int n, h, w, c, k;
  ConvGeometry g;
};

TEST(CudaConv2d, EveryGeometryMatchesCpuInEachDtype) {
  REQUIRE_CUDA_DEVICE();
  SeedTrace trace;
  const Case cases[] = {
      {2, 16, 16, 24, 32, {1, 1, 0, 0, 1}},   // 1x1
      {2, 16, 16, 24, 24, {3, 1, 1, 1, 24}},  // depthwise
      {1, 17, 15, 24, 24, {3, 2, 0, 1, 24}},  // depthwise, stride 2, the odd pixel after
      {2, 33, 31, 3, 24, {5, 2, 1, 2, 1}},    // the first layer's 5x5 stride 2
      {1, 9, 11, 16, 8, {3, 1, 1, 1, 2}},     // two groups
      {1, 12, 10, 8, 16, {1, 2, 0, 0, 1}}};   // strided 1x1
  for (const Case& cs : cases)
    for (auto [in, out] : {std::pair{DType::F32, DType::F32},
                           {DType::F16, DType::F16},
                           {DType::BF16, DType::BF16},
                           {DType::F16, DType::F32}}) {
      const ConvGeometry& g = cs.g;
      const int64_t oh = g.out_size(cs.h), ow = g.out_size(cs.w);
      auto x = host_tensor({cs.n, cs.h, cs.w, cs.c}, DType::F32);
      auto wt = host_tensor({cs.k, g.kernel, g.kernel, cs.c / g.groups}, DType::F32);
      auto b = host_tensor({cs.k}, DType::F32);
      fill_uniform(x.tensor, -2, 2);
      fill_uniform(wt.tensor, -0.5f, 0.5f);
      fill_uniform(b.tensor, -1, 1);
      round_to(x.tensor, in);
      auto ref = host_tensor({cs.n, oh, ow, cs.k}, DType::F32);
      for (bool relu : {false, true}) {
        cpu::conv2d_bias_act(x.tensor, wt.tensor, b.tensor, g, relu, ref.tensor);
        const std::vector<double> want = rounded_like(precision_of(out), as_f64(ref.tensor));
        const DeviceTensor dx = device_of(x.tensor, in), dw = upload(wt.tensor),
                           db = upload(b.tensor);
        const DeviceTensor dy = poisoned({cs.n, oh, ow, cs.k}, out);
        cuda::conv2d_bias_act(dx.tensor, dw.tensor, db.tensor, g, relu, dy.tensor, nullptr);
        const std::vector<float> got = fetch(dy);
        expect_close(got.data(), want, op_tolerance(precision_of(out), rms(want)),
                     "conv2d k" + std::to_string(g.kernel) + " s" + std::to_string(g.stride) +
                         " groups " + std::to_string(g.groups) + " " + precision_of(in) + "->" +
                         precision_of(out) + (relu ? " relu" : ""));
      }
    }
}

TEST(CudaAddAct, ZeroExtendsTheNarrowerInputInEachDtype) {
  REQUIRE_CUDA_DEVICE();
  SeedTrace trace;
  for (DType d : {DType::F32, DType::F16, DType::BF16})
    for (auto [ca, cb] : {std::pair{24, 24}, {24, 32}, {48, 28}}) {
      auto a = host_tensor({2, 7, 9, ca}, DType::F32);
      auto b = host_tensor({2, 7, 9, cb}, DType::F32);
      fill_uniform(a.tensor, -2, 2);
      fill_uniform(b.tensor, -2, 2);
      round_to(a.tensor, d);
      round_to(b.tensor, d);
      const int c = std::max(ca, cb);
      auto ref = host_tensor({2, 7, 9, c}, DType::F32);
      cpu::add_act(a.tensor, b.tensor, true, ref.tensor);
      const std::vector<double> want = rounded_like(precision_of(d), as_f64(ref.tensor));
      const DeviceTensor da = device_of(a.tensor, d), db = device_of(b.tensor, d);
      const DeviceTensor dy = poisoned({2, 7, 9, c}, d);
      cuda::add_act(da.tensor, db.tensor, true, dy.tensor, nullptr);
      const std::vector<float> got = fetch(dy);
      expect_close(got.data(), want, op_tolerance(precision_of(d), rms(want)),
                   std::string("add_act ") + precision_of(d));
    }
}

TEST(CudaUpsample, BilinearTwiceMatchesCpuInBothConventions) {
  REQUIRE_CUDA_DEVICE();
  SeedTrace trace;
  for (DType d : {DType::F32, DType::F16, DType::BF16})
    for (bool half_pixel : {true, false}) {
      auto x = host_tensor({2, 6, 5, 12}, DType::F32);
      fill_uniform(x.tensor, -3, 3);
      round_to(x.tensor, d);
      auto ref = host_tensor({2, 12, 10, 12}, DType::F32);
      cpu::upsample_bilinear2x(x.tensor, half_pixel, ref.tensor);
      const std::vector<double> want = rounded_like(precision_of(d), as_f64(ref.tensor));
      const DeviceTensor dx = device_of(x.tensor, d);
      const DeviceTensor dy = poisoned({2, 12, 10, 12}, d);
      cuda::upsample_bilinear2x(dx.tensor, half_pixel, dy.tensor, nullptr);
      const std::vector<float> got = fetch(dy);
      expect_close(got.data(), want, op_tolerance(precision_of(d), rms(want)),
                   std::string("upsample ") + precision_of(d) + (half_pixel ? " half-pixel" : ""));
    }
}

}  // namespace
}  // namespace fervid::test
