// The CUDA maxpool2x2 kernel against the CPU reference on fresh random inputs, outputs poisoned
// first. Without a device every test skips and says why.
#include "cpu/ops.h"
#include "cuda/ops.h"
#include "cuda_test_util.h"

namespace fervid::test {
namespace {

TEST(CudaMaxpool2x2, MatchesCpuInF32AndF16) {
  REQUIRE_CUDA_DEVICE();
  SeedTrace trace;
  for (auto [n, h, w, c] : {std::array<int, 4>{1, 4, 4, 3}, {3, 13, 17, 64}, {2, 224, 224, 64}}) {
    auto x = host_tensor({n, h, w, c}, DType::F32);
    fill_uniform(x.tensor, -4, 4);
    auto ref = host_tensor({n, h / 2, w / 2, c}, DType::F32);
    cpu::maxpool2x2(x.tensor, ref.tensor);
    std::vector<double> want(ref.tensor.ptr<float>(), ref.tensor.ptr<float>() + ref.tensor.numel());
    // f32
    auto dx = upload(x.tensor);
    auto got = host_tensor({n, h / 2, w / 2, c}, DType::F32);
    poison(got.tensor);
    auto dy = upload(got.tensor);
    cuda::maxpool2x2(dx.tensor, dy.tensor, nullptr);
    download(got.tensor, dy.tensor);
    expect_close(got.tensor.ptr<float>(), want, {0, 0, 0}, "cuda maxpool2x2 f32");
    // f16: inputs rounded first, so the max is exact again
    auto xh = host_tensor({n, h, w, c}, DType::F16);
    for (int64_t i = 0; i < x.tensor.numel(); ++i) {
      uint16_t v = float_to_half(x.tensor.ptr<float>()[i]);
      xh.tensor.ptr<uint16_t>()[i] = v;
      x.tensor.ptr<float>()[i] = half_to_float(v);
    }
    cpu::maxpool2x2(x.tensor, ref.tensor);
    want.assign(ref.tensor.ptr<float>(), ref.tensor.ptr<float>() + ref.tensor.numel());
    auto dxh = upload(xh.tensor);
    auto goth = host_tensor({n, h / 2, w / 2, c}, DType::F16);
    poison(goth.tensor);
    auto dyh = upload(goth.tensor);
    cuda::maxpool2x2(dxh.tensor, dyh.tensor, nullptr);
    download(goth.tensor, dyh.tensor);
    std::vector<float> as_float(size_t(goth.tensor.numel()));
    for (size_t i = 0; i < as_float.size(); ++i)
      as_float[i] = half_to_float(goth.tensor.ptr<uint16_t>()[i]);
    expect_close(as_float.data(), want, {0, 0, 0}, "cuda maxpool2x2 f16");
  }
}

}  // namespace
}  // namespace fervid::test
