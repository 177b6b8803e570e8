// preprocess (CPU) against an independent float64 implementation of torch's bilinear resize
// (align_corners=False, no antialias) and the normalisation formula; crops and channel order.
#include <algorithm>
#include <cmath>

#include "cpu/ops.h"
#include "fervid/pipeline.h"
#include "test_util.h"

namespace fervid::test {
namespace {

double sample(const std::vector<uint8_t>& img, int stride, CropRect c, int ch, double sy,
              double sx) {
  auto coord = [](double s, int in) {
    s = std::max(s, 0.0);
    int i0 = std::min(int(std::floor(s)), in - 1);
    int i1 = std::min(i0 + 1, in - 1);
    return std::tuple<int, int, double>{i0, i1, s - i0};
  };
  auto [y0, y1, ly] = coord(sy, c.height);
  auto [x0, x1, lx] = coord(sx, c.width);
  auto at = [&](int y, int x) {
    return double(img[size_t(c.y + y) * stride + size_t(c.x + x) * 3 + ch]);
  };
  return (1 - ly) * ((1 - lx) * at(y0, x0) + lx * at(y0, x1)) +
         ly * ((1 - lx) * at(y1, x0) + lx * at(y1, x1));
}

TEST(Preprocess, MatchesFloat64ResizeAndNormalise) {
  SeedTrace trace;
  struct Case {
    int w, h, size;
    CropSpec crop;
    Preprocess pp;
  };
  Preprocess torchvision;
  torchvision.mean = {0.485f, 0.456f, 0.406f};
  torchvision.std = {0.229f, 0.224f, 0.225f};
  Preprocess caffe;
  caffe.bgr = true;
  caffe.scale = 1;
  caffe.mean = {103.939f, 116.779f, 123.68f};
  const Case cases[] = {{37, 23, 16, CropSpec::parse("full"), Preprocess{}},
                        {64, 48, 80, CropSpec::parse("center"), torchvision},
                        {50, 41, 7, CropSpec::parse("box=3,5,20,30"), caffe},
                        {1, 1, 4, CropSpec::parse("full"), Preprocess{}}};
  for (const Case& c : cases) {
    std::vector<uint8_t> img(size_t(c.w) * c.h * 3);
    for (auto& v : img) v = uint8_t(rng()() & 0xff);
    const int n = 2;
    std::vector<ImageView> frames(n, ImageView{img.data(), c.w, c.h, c.w * 3});
    std::vector<CropRect> crops(n, c.crop.rect_for(c.w, c.h));
    auto out = host_tensor({n, c.size, c.size, 3}, DType::F32, Layout::NHWC);
    poison(out.tensor);
    cpu::preprocess(frames, crops, c.pp, out.tensor);
    std::vector<double> ref;
    const CropRect r = crops[0];
    for (int i = 0; i < n; ++i)
      for (int oy = 0; oy < c.size; ++oy)
        for (int ox = 0; ox < c.size; ++ox)
          for (int oc = 0; oc < 3; ++oc) {
            double sy = (oy + 0.5) * double(r.height) / c.size - 0.5;
            double sx = (ox + 0.5) * double(r.width) / c.size - 0.5;
            double v = sample(img, c.w * 3, r, c.pp.bgr ? 2 - oc : oc, sy, sx);
            ref.push_back((v * c.pp.scale - c.pp.mean[oc]) / c.pp.std[oc]);
          }
    // The kernel computes source coordinates in f32, as torch does; that ~1e-6 coordinate error
    // times a pixel step of up to 255 (scaled by scale/std) bounds the absolute difference.
    const float min_std = std::min({c.pp.std[0], c.pp.std[1], c.pp.std[2]});
    const double atol = 1e-5 + 4e-6 * 255.0 * c.pp.scale / min_std;
    expect_close(out.tensor.ptr<float>(), ref, {atol, 1e-4, 1e-5}, "preprocess");
  }
}

TEST(Preprocess, HalfPixelCentresByHand) {
  // A 2x1 image [0, 100] resized to 4x1: torch gives 0, 25, 75, 100.
  std::vector<uint8_t> img = {0, 0, 0, 100, 100, 100};
  ImageView f{img.data(), 2, 1, 6};
  CropRect c{0, 0, 2, 1};
  Preprocess pp;
  pp.scale = 1;
  auto out = host_tensor({1, 4, 4, 3}, DType::F32, Layout::NHWC);
  cpu::preprocess({&f, 1}, {&c, 1}, pp, out.tensor);
  const float* o = out.tensor.ptr<float>();
  EXPECT_FLOAT_EQ(o[0 * 3], 0.0f);
  EXPECT_FLOAT_EQ(o[1 * 3], 25.0f);
  EXPECT_FLOAT_EQ(o[2 * 3], 75.0f);
  EXPECT_FLOAT_EQ(o[3 * 3], 100.0f);
}

TEST(CropSpec, ParsesAndPlaces) {
  EXPECT_EQ(CropSpec::parse("center").rect_for(1280, 720).x, 280);
  EXPECT_EQ(CropSpec::parse("center").rect_for(1280, 720).width, 720);
  EXPECT_EQ(CropSpec::parse("center").rect_for(300, 500).y, 100);
  CropRect b = CropSpec::parse("box=10,20,30,40").rect_for(100, 100);
  EXPECT_EQ(b.x, 10);
  EXPECT_EQ(b.height, 40);
  EXPECT_THROW(CropSpec::parse("box=10,20,30,40").rect_for(35, 100), Error);
  EXPECT_THROW(CropSpec::parse("box=1,2,3"), Error);
  EXPECT_THROW(CropSpec::parse("box=1,2,0,4"), Error);
  EXPECT_THROW(CropSpec::parse("middle"), Error);
}

}  // namespace
}  // namespace fervid::test
