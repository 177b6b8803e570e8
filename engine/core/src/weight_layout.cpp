#include "fervid/weight_layout.h"

#include "fervid/error.h"

namespace fervid {

OwnedTensor conv_weight_ohwi(const Tensor& oihw) {
  if (oihw.rank() != 4 || oihw.dim(2) != oihw.dim(3) || oihw.dim(2) < 1 ||
      oihw.dtype() != DType::F32)
    fail("conv weight must be f32 [K,C,k,k], got " + oihw.describe());
  const int64_t k = oihw.dim(0), c = oihw.dim(1), taps = oihw.dim(2) * oihw.dim(3);
  OwnedTensor t = host_tensor({k, oihw.dim(2), oihw.dim(3), c}, DType::F32);
  const float* src = oihw.ptr<const float>();
  float* dst = t.tensor.ptr<float>();
  for (int64_t o = 0; o < k; ++o)
    for (int64_t i = 0; i < c; ++i)
      for (int64_t r = 0; r < taps; ++r) dst[(o * taps + r) * c + i] = src[(o * c + i) * taps + r];
  return t;
}

OwnedTensor flatten_columns_hwc(const Tensor& w, int64_t channels) {
  const int64_t out = w.dim(0), in = w.dim(1), pixels = in / channels;
  if (w.rank() != 2 || pixels * channels != in)
    fail("flatten_columns_hwc: " + w.describe() + " is not a flatten of " +
         std::to_string(channels) + " channels");
  OwnedTensor t = host_tensor({out, in}, DType::F32);
  const float* src = w.ptr<const float>();
  float* dst = t.tensor.ptr<float>();
  for (int64_t o = 0; o < out; ++o)
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t p = 0; p < pixels; ++p)
        dst[o * in + p * channels + c] = src[o * in + c * pixels + p];
  return t;
}

}  // namespace fervid
