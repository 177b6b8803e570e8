// Weight layouts both backends convert to at load (Backend::prepare), in one place: the
// conv filters from PyTorch's OIHW to the OHWI ([K,3,3,C]) that NHWC convolutions read (cuDNN
// calls it KRSC), and the first dense layer of the flatten head from torchvision's (c, h, w)
// column order to the (h, w, c) order of a flattened NHWC activation. Host f32 in, host f32 out.
#pragma once

#include <cstdint>

#include "fervid/tensor.h"

namespace fervid {

// OIHW [K,C,k,k] -> [K,k,k,C] (a depthwise weight [C,1,k,k] -> [C,k,k,1]).
OwnedTensor conv_weight_ohwi(const Tensor& oihw);
// [out, C*H*W] with columns in (c, h, w) order -> the same matrix with columns in (h, w, c) order.
OwnedTensor flatten_columns_hwc(const Tensor& w, int64_t channels);

}  // namespace fervid
