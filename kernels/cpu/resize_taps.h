// The bilinear taps of the preprocess ops (kernels/cpu/preprocess.cpp, preprocess_yuv.cpp):
// half-pixel centres, s = (o + 0.5) * (in / out) - 0.5 clamped below at 0; i0 = floor(s),
// i1 = min(i0 + 1, in - 1), weight of i1 = s - i0. The CUDA kernels compute the same in
// kernels/cuda/resize_taps.cuh.
#pragma once

#include <algorithm>
#include <vector>

namespace fervid::cpu {

struct Tap {
  int i0, i1;
  float w0, w1;
};

inline std::vector<Tap> resize_taps(int in, int out) {
  std::vector<Tap> t(out);
  const float scale = float(in) / float(out);
  for (int o = 0; o < out; ++o) {
    float s = std::max(scale * (float(o) + 0.5f) - 0.5f, 0.0f);
    int i0 = std::min(int(s), in - 1);
    int i1 = i0 + (i0 < in - 1 ? 1 : 0);
    float l1 = s - float(i0);
    t[o] = {i0, i1, 1.0f - l1, l1};
  }
  return t;
}

// The taps of `size` outputs starting at `first` of a resize from `in` to `out` pixels (a window
// of the resized image, ResizeWindow).
inline std::vector<Tap> window_taps(int in, int out, int first, int size) {
  const std::vector<Tap> all = resize_taps(in, out);
  return std::vector<Tap>(all.begin() + first, all.begin() + first + size);
}

}  // namespace fervid::cpu
