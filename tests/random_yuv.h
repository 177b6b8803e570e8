// A YUV 4:2:0 frame of fresh random bytes for the tests of the face ops (tests/face_crops_test.cpp,
// tests/cuda/face_detector_test.cpp).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "cpu/ops.h"
#include "fervid/frame.h"

namespace fervid::test {

// A w x h YUV 4:2:0 frame of fresh random bytes, planar or NV12, rows padded past the width; and
// its RGB as every YUV op reads it (cpu::yuv_pixel_rgb).
struct RandomYuv {
  int w, h;
  bool nv12;
  std::vector<uint8_t> bytes, rgb;
  YuvView view;
  RandomYuv(const RandomYuv&) = delete;  // `view` points into `bytes`
  RandomYuv(int width, int height, bool interleaved, unsigned seed)
      : w(width), h(height), nv12(interleaved) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> byte(1, 255);
    const int ys = w + 5, cw = (w + 1) / 2, ch = (h + 1) / 2;
    const int uvs = nv12 ? 2 * cw + 3 : cw + 3;
    bytes.resize(size_t(ys) * h + size_t(uvs) * ch * (nv12 ? 1 : 2));
    for (uint8_t& b : bytes) b = uint8_t(byte(rng));
    view.y = bytes.data();
    view.u = bytes.data() + size_t(ys) * h;
    view.v = nv12 ? view.u + 1 : view.u + size_t(uvs) * ch;
    view.y_stride = ys;
    view.uv_stride = uvs;
    view.uv_step = nv12 ? 2 : 1;
    view.width = w;
    view.height = h;
  }
  void convert(const ColorSpec& cs) {
    rgb.resize(size_t(w) * h * 3);
    const YuvCoefficients k = yuv_coefficients(cs);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        float px[3];
        cpu::yuv_pixel_rgb(view, k, x, y, px);
        for (int c = 0; c < 3; ++c) rgb[(size_t(y) * w + x) * 3 + c] = uint8_t(px[c]);
      }
  }
  ImageView rgb_view() const { return {rgb.data(), w, h, w * 3}; }
};

}  // namespace fervid::test
