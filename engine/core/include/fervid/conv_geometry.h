// The geometry of a convolution beyond VGG16's 3x3 / stride 1 / padding 1: a square kernel, one
// stride, padding before (top, left) and after (bottom, right) that may differ (TensorFlow's SAME
// padding puts the odd pixel after), and groups (a depthwise convolution has groups == channels).
#pragma once

#include <cstdint>

namespace fervid {

struct ConvGeometry {
  int kernel = 3, stride = 1, pad_before = 1, pad_after = 1, groups = 1;
  // The output's size along one axis of `size` input pixels.
  int64_t out_size(int64_t size) const {
    return (size + pad_before + pad_after - kernel) / stride + 1;
  }
};

}  // namespace fervid
