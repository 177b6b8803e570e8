// preprocess (CPU) against an independent float64 implementation of torch's bilinear resize
// (align_corners=False, no antialias) and the normalisation formula; crops and channel order.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cpu/ops.h"
#include "fervid/crop.h"
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
  // torchvision's Resize(R) + CenterCrop(S): the shorter side to R, the centred window kept.
  auto resized = [](Preprocess p, int r) {
    p.resize = r;
    return p;
  };
  const Case cases[] = {{37, 23, 16, CropSpec::parse("full"), Preprocess{}},
                        {64, 48, 80, CropSpec::parse("center"), torchvision},
                        {50, 41, 7, CropSpec::parse("box=3,5,20,30"), caffe},
                        {1, 1, 4, CropSpec::parse("full"), Preprocess{}},
                        {64, 48, 16, CropSpec::parse("full"), resized(torchvision, 20)},
                        {53, 40, 16, CropSpec::parse("full"), resized(Preprocess{}, 19)},
                        {30, 50, 16, CropSpec::parse("full"), resized(caffe, 18)},
                        {64, 48, 16, CropSpec::parse("box=4,2,40,44"), resized(Preprocess{}, 16)}};
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
    // The resized size and the window's offsets, as torchvision computes them: the longer side
    // truncated, the offsets rounded half to even (Python's round).
    int rw = c.size, rh = c.size, left = 0, top = 0;
    if (c.pp.resize) {
      const bool wide = r.width >= r.height;
      const int longer =
          int(double(c.pp.resize) * (wide ? r.width : r.height) / (wide ? r.height : r.width));
      rw = wide ? longer : c.pp.resize;
      rh = wide ? c.pp.resize : longer;
      auto round_even = [](double v) {
        const double f = std::floor(v);
        return v - f != 0.5 ? int(std::lround(v)) : int(f) % 2 == 0 ? int(f) : int(f) + 1;
      };
      left = round_even((rw - c.size) / 2.0);
      top = round_even((rh - c.size) / 2.0);
    }
    for (int i = 0; i < n; ++i)
      for (int oy = 0; oy < c.size; ++oy)
        for (int ox = 0; ox < c.size; ++ox)
          for (int oc = 0; oc < 3; ++oc) {
            double sy = (oy + top + 0.5) * double(r.height) / rh - 0.5;
            double sx = (ox + left + 0.5) * double(r.width) / rw - 0.5;
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

// A turned crop's float64 reference: output pixel (ox, oy)'s crop coordinates as the resize's,
// turned about the crop's centre by its angle into the frame, clamped to the frame, bilinear.
std::vector<double> turned_reference(const std::vector<uint8_t>& img, int w, int h, CropRect c,
                                     int size, const Preprocess& pp) {
  const ResizeWindow win = resize_window(c.width, c.height, size, pp.resize);
  const double co = std::cos(double(c.angle)), si = std::sin(double(c.angle));
  const double cx = c.x + (c.width - 1) / 2.0, cy = c.y + (c.height - 1) / 2.0;
  std::vector<double> ref;
  for (int oy = 0; oy < size; ++oy)
    for (int ox = 0; ox < size; ++ox) {
      const double dx =
          (ox + win.left + 0.5) * double(c.width) / win.width - 0.5 - (c.width - 1) / 2.0;
      const double dy =
          (oy + win.top + 0.5) * double(c.height) / win.height - 0.5 - (c.height - 1) / 2.0;
      const double x = std::clamp(cx + co * dx - si * dy, 0.0, w - 1.0);
      const double y = std::clamp(cy + si * dx + co * dy, 0.0, h - 1.0);
      const int x0 = int(x), y0 = int(y), x1 = std::min(x0 + 1, w - 1),
                y1 = std::min(y0 + 1, h - 1);
      for (int oc = 0; oc < 3; ++oc) {
        const int k = pp.bgr ? 2 - oc : oc;
        auto at = [&](int yy, int xx) { return double(img[(size_t(yy) * w + xx) * 3 + k]); };
        const double v = (1 - (y - y0)) * ((1 - (x - x0)) * at(y0, x0) + (x - x0) * at(y0, x1)) +
                         (y - y0) * ((1 - (x - x0)) * at(y1, x0) + (x - x0) * at(y1, x1));
        ref.push_back((v * pp.scale - pp.mean[oc]) / pp.std[oc]);
      }
    }
  return ref;
}

// --crop face turns the crop by the eye line: random frames, crops, angles (both signs, past a
// quarter turn), sizes up and down, with and without torchvision's resize step, RGB and BGR.
TEST(Preprocess, TurnedCropsMatchFloat64Reference) {
  SeedTrace trace;
  std::uniform_real_distribution<float> angle(-2.0f, 2.0f);
  Preprocess torchvision;
  torchvision.mean = {0.485f, 0.456f, 0.406f};
  torchvision.std = {0.229f, 0.224f, 0.225f};
  for (int round = 0; round < 12; ++round) {
    const int w = 20 + int(rng()() % 60), h = 20 + int(rng()() % 60);
    const int side = 4 + int(rng()() % (std::min(w, h) - 4));
    CropRect c{int(rng()() % (w - side + 1)), int(rng()() % (h - side + 1)), side, side,
               angle(rng())};
    if (round % 3 == 1) c.width = std::max(1, side - 3);  // not square
    Preprocess pp = round % 2 ? torchvision : Preprocess{};
    pp.bgr = round % 4 == 3;
    if (round % 5 == 4) pp.resize = 19;
    const int size = round % 3 == 0 ? 9 : 16;
    std::vector<uint8_t> img(size_t(w) * h * 3);
    for (auto& v : img) v = uint8_t(rng()() & 0xff);
    const ImageView frame{img.data(), w, h, w * 3};
    auto out = host_tensor({1, size, size, 3}, DType::F32, Layout::NHWC);
    poison(out.tensor);
    cpu::preprocess({&frame, 1}, {&c, 1}, pp, out.tensor);
    // Sample points in f32 (within ~1e-5 of a pixel here) times a pixel step of up to 255.
    const float min_std = std::min({pp.std[0], pp.std[1], pp.std[2]});
    const double atol = 1e-5 + 3e-5 * 255.0 * pp.scale / min_std;
    expect_close(out.tensor.ptr<float>(), turned_reference(img, w, h, c, size, pp),
                 {atol, 1e-4, 3e-5}, "turned preprocess");
  }
}

// A square crop turned by a quarter turn equals, unturned, the frame turned the other way: crop
// pixel (u, v) is frame pixel (x + s - 1 - v, y + u).
TEST(Preprocess, AQuarterTurnEqualsTheTurnedFrame) {
  SeedTrace trace;
  const int w = 41, h = 33, s = 24, x = 9, y = 5, size = 16;
  std::vector<uint8_t> img(size_t(w) * h * 3), turned(size_t(s) * s * 3);
  for (auto& v : img) v = uint8_t(rng()() & 0xff);
  for (int v = 0; v < s; ++v)
    for (int u = 0; u < s; ++u)
      for (int k = 0; k < 3; ++k)
        turned[(size_t(v) * s + u) * 3 + k] = img[(size_t(y + u) * w + x + s - 1 - v) * 3 + k];
  const ImageView frame{img.data(), w, h, w * 3}, crop{turned.data(), s, s, s * 3};
  const CropRect quarter{x, y, s, s, float(std::acos(0.0))}, whole{0, 0, s, s};
  auto a = host_tensor({1, size, size, 3}, DType::F32, Layout::NHWC);
  auto b = host_tensor({1, size, size, 3}, DType::F32, Layout::NHWC);
  poison(a.tensor);
  poison(b.tensor);
  cpu::preprocess({&frame, 1}, {&quarter, 1}, Preprocess{}, a.tensor);
  cpu::preprocess({&crop, 1}, {&whole, 1}, Preprocess{}, b.tensor);
  const float* pa = a.tensor.ptr<float>();
  std::vector<double> ref(pa, pa + size * size * 3);
  // cos(pi/2) in f32 is 4e-8, not 0: sample points move by ~1e-6 of a pixel.
  expect_close(b.tensor.ptr<float>(), ref, {1e-5, 1e-5, 1e-5}, "quarter turn");
}

// What the CUDA backend stages of a frame for a turned crop (turned_bounds) holds both pixels of
// every sample point the kernel reads (the sample points by turned_map, as kernels/cuda/
// preprocess.cu computes them, clamped to the frame): host emulation of its reads, so that no
// device read leaves the staged rows. Crops at every edge and corner, any angle, sizes up and down.
TEST(TurnedBounds, HoldEveryPixelTheKernelReads) {
  SeedTrace trace;
  std::uniform_real_distribution<float> angle(-3.2f, 3.2f);
  for (int round = 0; round < 400; ++round) {
    const int w = 8 + int(rng()() % 300), h = 8 + int(rng()() % 300);
    const int cw = 1 + int(rng()() % w), ch = 1 + int(rng()() % h);
    const CropRect c{int(rng()() % (w - cw + 1)), int(rng()() % (h - ch + 1)), cw, ch,
                     angle(rng())};
    const int size = 1 + int(rng()() % 96), resize = round % 4 == 0 ? size + 7 : 0;
    const ResizeWindow win = resize_window(c.width, c.height, size, resize);
    const TurnedMap m = turned_map(c, win);
    const CropRect r = turned_bounds(c, w, h);
    ASSERT_TRUE(crop_fits(r, w, h)) << crop_outside(r, w, h);
    for (int oy = 0; oy < size; ++oy)
      for (int ox = 0; ox < size; ++ox) {
        const float dx = (float(ox + m.left) + 0.5f) * m.step_x - 0.5f - m.half_w;
        const float dy = (float(oy + m.top) + 0.5f) * m.step_y - 0.5f - m.half_h;
        const float x = std::clamp(m.cx + m.cos_a * dx - m.sin_a * dy, 0.0f, float(w - 1));
        const float y = std::clamp(m.cy + m.sin_a * dx + m.cos_a * dy, 0.0f, float(h - 1));
        const int x0 = int(x), y0 = int(y), x1 = std::min(x0 + 1, w - 1),
                  y1 = std::min(y0 + 1, h - 1);
        ASSERT_TRUE(x0 >= r.x && x1 < r.x + r.width && y0 >= r.y && y1 < r.y + r.height)
            << "round " << round << ": sample (" << x << ", " << y << ") outside the staged "
            << r.width << "x" << r.height << "+" << r.x << "+" << r.y;
      }
  }
}

TEST(Preprocess, ATurnedCropNeedsRgbFrames) {
  std::vector<uint8_t> planes(16 * 16 * 3 / 2, 128);
  const YuvView f{planes.data(), planes.data() + 256, planes.data() + 256 + 64, 16, 8, 1, 16, 16};
  const CropRect c{0, 0, 16, 16, 0.3f};
  auto out = host_tensor({1, 8, 8, 3}, DType::F32, Layout::NHWC);
  try {
    cpu::preprocess_yuv420({&f, 1}, {&c, 1}, ColorSpec{}, Preprocess{}, out.tensor);
    FAIL() << "a turned crop of a YUV frame was taken";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("turned crop needs RGB"), std::string::npos) << e.what();
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

// ---- YUV 4:2:0 -> the model input (the path of decoded video that skips swscale) ----

// Planar and NV12 views of one 4:2:0 frame held in `planes` (Y, then U, then V, tightly packed).
struct Yuv420 {
  int w, h;
  std::vector<uint8_t> planar, nv12;
  YuvView view(bool as_nv12) const {
    const int cw = (w + 1) / 2, ch = (h + 1) / 2;
    if (!as_nv12)
      return {planar.data(),
              planar.data() + size_t(w) * h,
              planar.data() + size_t(w) * h + size_t(cw) * ch,
              w,
              cw,
              1,
              w,
              h};
    return {nv12.data(),
            nv12.data() + size_t(w) * h,
            nv12.data() + size_t(w) * h + 1,
            w,
            2 * cw,
            2,
            w,
            h};
  }
  void make_nv12() {
    const int cw = (w + 1) / 2, ch = (h + 1) / 2;
    nv12.assign(planar.begin(), planar.begin() + size_t(w) * h);
    for (int i = 0; i < cw * ch; ++i) {
      nv12.push_back(planar[size_t(w) * h + i]);
      nv12.push_back(planar[size_t(w) * h + size_t(cw) * ch + i]);
    }
  }
};

// Every output of the two paths: max and mean |difference| in units of 1/255 of the input
// (the study's preprocessing is value/255).
std::pair<double, double> difference(const Tensor& a, const Tensor& b) {
  double worst = 0, sum = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double d = std::abs(double(a.ptr<float>()[i]) - double(b.ptr<float>()[i])) * 255.0;
    worst = std::max(worst, d);
    sum += d;
  }
  return {worst, sum / double(a.numel())};
}

const Preprocess kStudy{};  // RGB, value/255

// Independent of the conversion code: RGB by the textbook formula in double, rounded, through
// the RGB path; equal to the YUV path but where a channel lies within float rounding of .5.
TEST(PreprocessYuv, MatchesTheTextbookConversionThroughTheRgbPath) {
  SeedTrace trace;
  for (bool bt709 : {false, true}) {
    for (bool full : {false, true}) {
      for (bool as_nv12 : {false, true}) {
        Yuv420 f{37, 23, {}, {}};
        const int cw = 19, ch = 12;
        f.planar.resize(size_t(37) * 23 + 2 * cw * ch);
        for (auto& v : f.planar) v = uint8_t(rng()() & 0xff);
        f.make_nv12();
        std::vector<uint8_t> rgb(size_t(37) * 23 * 3);
        const double kr = bt709 ? 0.2126 : 0.299, kb = bt709 ? 0.0722 : 0.114, kg = 1 - kr - kb;
        for (int y = 0; y < 23; ++y)
          for (int x = 0; x < 37; ++x) {
            const double Y = f.planar[y * 37 + x];
            const double U = f.planar[37 * 23 + (y / 2) * cw + x / 2] - 128.0;
            const double V = f.planar[37 * 23 + cw * ch + (y / 2) * cw + x / 2] - 128.0;
            const double yy = full ? Y : (Y - 16) * 255.0 / 219.0;
            const double c = full ? 1.0 : 255.0 / 224.0;
            const double r = yy + 2 * (1 - kr) * c * V, b = yy + 2 * (1 - kb) * c * U;
            const double g = yy - 2 * kb * (1 - kb) / kg * c * U - 2 * kr * (1 - kr) / kg * c * V;
            const double ch3[3] = {r, g, b};
            for (int k = 0; k < 3; ++k)
              rgb[(y * 37 + x) * 3 + k] = uint8_t(std::clamp(std::nearbyint(ch3[k]), 0.0, 255.0));
          }
        const std::vector<CropRect> crops = {{0, 0, 37, 23}, {3, 5, 21, 17}};
        for (const CropRect& crop : crops)
          for (int resize : {0, 18}) {  // straight to 16x16, or Resize(18) + CenterCrop(16)
            Preprocess pp = kStudy;
            pp.resize = resize;
            auto a = host_tensor({1, 16, 16, 3}, DType::F32, Layout::NHWC);
            auto b = host_tensor({1, 16, 16, 3}, DType::F32, Layout::NHWC);
            poison(a.tensor);
            poison(b.tensor);
            const ImageView iv{rgb.data(), 37, 23, 37 * 3};
            const YuvView yv = f.view(as_nv12);
            cpu::preprocess({&iv, 1}, {&crop, 1}, pp, a.tensor);
            cpu::preprocess_yuv420({&yv, 1}, {&crop, 1}, {bt709, full}, pp, b.tensor);
            auto [worst, mean] = difference(a.tensor, b.tensor);
            // A channel at x.5 may round either way: at most 1 in one tap of four.
            EXPECT_LE(worst, 1.0) << "bt709 " << bt709 << " full " << full << " nv12 " << as_nv12;
            EXPECT_LT(mean, 0.01) << "bt709 " << bt709 << " full " << full;
          }
      }
    }
  }
}

std::vector<uint8_t> ffmpeg_raw(const std::string& video, const std::string& pix_fmt, int frames) {
  const std::string out = (temp_dir("yuv") / ("raw_" + pix_fmt)).string();
  std::filesystem::create_directories(temp_dir("yuv"));
  const std::string cmd = "ffmpeg -nostdin -v error -y -i " + video + " -frames:v " +
                          std::to_string(frames) + " -f rawvideo -pix_fmt " + pix_fmt + " " + out;
  if (std::system(cmd.c_str()) != 0) return {};
  std::ifstream in(out, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

// The decoded planes of the real videos through the YUV path against the frames FFmpeg's
// swscale converts to RGB (what `ffmpeg -pix_fmt rgb24` and fervid's CPU decode give) through the
// RGB path: within 4/255 everywhere and 1.5/255 on average (measured: max 3, mean 0.4-1.1 of RGB).
TEST(PreprocessYuv, AgreesWithSwscaleOnTheRealVideos) {
  const std::string data = FERVID_DATA_DIR;
  const std::tuple<const char*, int, int> videos[] = {{"/video/astronaut-720p.mp4", 1280, 720},
                                                      {"/video/vtest.avi", 768, 576}};
  for (auto [name, w, h] : videos) {
    const std::vector<uint8_t> yuv = ffmpeg_raw(data + name, "yuv420p", 2);
    const std::vector<uint8_t> rgb = ffmpeg_raw(data + name, "rgb24", 2);
    if (yuv.empty() || rgb.empty()) GTEST_SKIP() << "the ffmpeg CLI is needed (tools/setup.sh)";
    const size_t fy = size_t(w) * h * 3 / 2, fr = size_t(w) * h * 3;
    ASSERT_EQ(yuv.size(), 2 * fy) << name;
    ASSERT_EQ(rgb.size(), 2 * fr) << name;
    for (int i = 0; i < 2; ++i) {
      Yuv420 f{w, h, std::vector<uint8_t>(yuv.begin() + i * fy, yuv.begin() + (i + 1) * fy), {}};
      f.make_nv12();
      const ImageView iv{rgb.data() + i * fr, w, h, w * 3};
      const int side = std::min(w, h);
      for (const CropRect& crop : {CropRect{0, 0, w, h}, CropRect{(w - side) / 2, 0, side, side},
                                   CropRect{101, 37, 333, 301}}) {
        for (bool as_nv12 : {false, true}) {
          auto a = host_tensor({1, 224, 224, 3}, DType::F32, Layout::NHWC);
          auto b = host_tensor({1, 224, 224, 3}, DType::F32, Layout::NHWC);
          poison(b.tensor);
          const YuvView yv = f.view(as_nv12);
          cpu::preprocess({&iv, 1}, {&crop, 1}, kStudy, a.tensor);
          cpu::preprocess_yuv420({&yv, 1}, {&crop, 1}, {false, false}, kStudy, b.tensor);
          auto [worst, mean] = difference(a.tensor, b.tensor);
          std::printf("[ yuv      ] %s frame %d crop %dx%d+%d+%d %s: max %.2f mean %.3f (of 255)\n",
                      name, i, crop.width, crop.height, crop.x, crop.y, as_nv12 ? "nv12" : "planar",
                      worst, mean);
          EXPECT_LE(worst, 4.0) << name;
          EXPECT_LE(mean, 1.5) << name;
        }
      }
    }
  }
}

}  // namespace
}  // namespace fervid::test
