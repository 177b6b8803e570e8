// The CUDA bias_relu kernel (cuDNN's unfused path) against the CPU reference on fresh random
// inputs, outputs poisoned first. Without a device every test skips and says why.
#include "cpu/ops.h"
#include "cuda/ops.h"
#include "cuda_test_util.h"

namespace fervid::test {
namespace {

TEST(CudaBiasRelu, MatchesFloat64InEveryDtype) {
  REQUIRE_CUDA_DEVICE();
  SeedTrace trace;
  for (auto [rows, k] : {std::array<int, 2>{1, 3}, {13 * 17, 64}, {2 * 7 * 7, 513}}) {
    auto y = host_tensor({rows, k}, DType::F32);
    auto b = host_tensor({k}, DType::F32);
    fill_uniform(y.tensor, -3, 3);
    fill_uniform(b.tensor, -1, 1);
    for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
      // inputs rounded to dt first; the sum is exact in f32 then rounded once to dt
      auto round = [&](float v) {
        return dt == DType::F16    ? half_to_float(float_to_half(v))
               : dt == DType::BF16 ? bf16_to_float(float_to_bf16(v))
                                   : v;
      };
      auto encode = [&](const Tensor& src) {
        auto t = host_tensor(src.shape(), dt);
        for (int64_t i = 0; i < src.numel(); ++i) {
          const float v = src.ptr<float>()[i];
          if (dt == DType::F32) t.tensor.ptr<float>()[i] = v;
          if (dt == DType::F16) t.tensor.ptr<uint16_t>()[i] = float_to_half(v);
          if (dt == DType::BF16) t.tensor.ptr<uint16_t>()[i] = float_to_bf16(v);
        }
        return t;
      };
      std::vector<double> want(size_t(rows) * k);
      for (int r = 0; r < rows; ++r)
        for (int j = 0; j < k; ++j)
          want[size_t(r) * k + j] = round(std::max(
              round(y.tensor.ptr<float>()[r * k + j]) + round(b.tensor.ptr<float>()[j]), 0.0f));
      auto hy = encode(y.tensor), hb = encode(b.tensor);
      auto dy = upload(hy.tensor), db = upload(hb.tensor);
      cuda::bias_relu(dy.tensor, db.tensor, nullptr);
      // In place, so nothing to poison: an element left unwritten keeps y, which differs from
      // the reference wherever y + b != y or y < 0.
      auto got = host_tensor({rows, k}, dt);
      download(got.tensor, dy.tensor);
      std::vector<float> as_float(size_t(rows) * k);
      for (size_t i = 0; i < as_float.size(); ++i)
        as_float[i] = dt == DType::F32   ? got.tensor.ptr<float>()[i]
                      : dt == DType::F16 ? half_to_float(got.tensor.ptr<uint16_t>()[i])
                                         : bf16_to_float(got.tensor.ptr<uint16_t>()[i]);
      expect_close(as_float.data(), want, {0, 0, 0},
                   std::string("cuda bias_relu ") + std::string(dtype_name(dt)));
    }
  }
}

}  // namespace
}  // namespace fervid::test
