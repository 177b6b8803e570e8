// fervid classify --annotate and the video encoder under it (fervid/video_encoder.h,
// app/annotate.h): frames written come back (count, size, times, pixels within the codec's loss),
// nothing is left behind on failure, the drawing lands where the rows say, and the CLI's videos
// probe right with ffprobe (frame count, size, frame rate).
#include "annotate.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "cli_util.h"
#include "fervid/error.h"
#include "fervid/inputs.h"
#include "fervid/video_encoder.h"

namespace fervid::test {
namespace {

// A frame that differs from frame to frame and pixel to pixel, smooth enough for a lossy codec:
// a moving gradient in each channel plus a random offset per frame.
std::vector<uint8_t> pattern(int w, int h, int i, int offset) {
  std::vector<uint8_t> rgb(size_t(w) * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &rgb[(size_t(y) * w + x) * 3];
      p[0] = uint8_t(std::clamp(40 + x * 150 / w + i * 3 + offset, 0, 255));
      p[1] = uint8_t(std::clamp(200 - y * 150 / h + offset, 0, 255));
      p[2] = uint8_t(std::clamp(60 + (x + y) * 100 / (w + h) + i * 5, 0, 255));
    }
  return rgb;
}

struct Decoded {
  int64_t frames = 0;
  int width = 0, height = 0;
  std::vector<double> times;
  std::vector<std::vector<uint8_t>> rgb;  // rows of width * 3
};

Decoded decode(const std::string& path) {
  const std::vector<InputItem> items = expand_inputs({path});
  EXPECT_EQ(items.size(), 1u);
  Decoded d;
  read_frames(items.at(0), SamplingOptions{}, [&](const InputFrame& f) {
    ++d.frames;
    d.width = f.image.width;
    d.height = f.image.height;
    d.times.push_back(f.time_s);
    std::vector<uint8_t> rows(size_t(f.image.width) * f.image.height * 3);
    for (int y = 0; y < f.image.height; ++y)
      std::copy_n(f.image.data + size_t(y) * f.image.stride, size_t(f.image.width) * 3,
                  rows.data() + size_t(y) * f.image.width * 3);
    d.rgb.push_back(std::move(rows));
    return true;
  });
  return d;
}

class Encoder : public ::testing::TestWithParam<VideoCodec> {};

// A build without FFmpeg (FERVID_VIDEO=OFF, the bundle carried to the GPU machine) writes no
// video: the tests that need one skip, saying so.
#define SKIP_WITHOUT_FFMPEG()     \
  if (!VideoEncoder::available()) \
  GTEST_SKIP() << "this build has no FFmpeg (FERVID_VIDEO=OFF): it writes no video"

TEST_P(Encoder, FramesComeBackWithTheirTimesAndPixels) {
  SKIP_WITHOUT_FFMPEG();
  if (!VideoEncoder::available(GetParam()))
    GTEST_SKIP() << "this FFmpeg has no " << (GetParam() == VideoCodec::H264 ? "libx264" : "mpeg4")
                 << " encoder (the static FFmpeg of tools/build-ffmpeg.sh has no libx264)";
  const int w = 101, h = 75, n = 12;  // odd: padded to 102x76
  const double fps = 25;
  const std::string path =
      (work_dir() / (GetParam() == VideoCodec::H264 ? "h264.mp4" : "mpeg4.mp4")).string();
  std::uniform_int_distribution<int> offset(-20, 20);
  std::vector<std::vector<uint8_t>> written;
  std::vector<double> times;
  {
    VideoEncoder video(OutputTarget::at(path, "--annotate"), w, h, fps / 2, GetParam());
    EXPECT_EQ(video.codec_name(), GetParam() == VideoCodec::H264 ? "libx264" : "mpeg4");
    for (int i = 0; i < n; ++i) {
      written.push_back(pattern(w, h, i, offset(rng())));
      times.push_back(3.0 + 2.0 * i / fps);  // every second frame of a 25 fps source
      video.write({written.back().data(), w, h, w * 3}, times.back());
    }
    EXPECT_FALSE(fs::exists(path));  // only the .part until finish()
    video.finish();
    EXPECT_EQ(video.frames_written(), n);
  }
  EXPECT_FALSE(fs::exists(path + ".part"));
  const Decoded d = decode(path);
  ASSERT_EQ(d.frames, n);
  EXPECT_EQ(d.width, 102);
  EXPECT_EQ(d.height, 76);
  for (int i = 0; i < n; ++i) {
    EXPECT_NEAR(d.times[size_t(i)] - d.times[0], times[size_t(i)] - times[0], 0.5 / fps) << i;
    double diff = 0;
    for (int y = 0; y < d.height; ++y)
      for (int x = 0; x < d.width; ++x)
        for (int c = 0; c < 3; ++c) {
          const int sx = std::min(x, w - 1), sy = std::min(y, h - 1);  // the padding repeats
          diff += std::abs(int(d.rgb[size_t(i)][(size_t(y) * d.width + x) * 3 + c]) -
                           int(written[size_t(i)][(size_t(sy) * w + sx) * 3 + c]));
        }
    EXPECT_LT(diff / (d.width * d.height * 3), 4.0) << "frame " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Codecs, Encoder, ::testing::Values(VideoCodec::H264, VideoCodec::Mpeg4),
                         [](const auto& info) {
                           return info.param == VideoCodec::H264 ? std::string("H264")
                                                                 : std::string("Mpeg4");
                         });

TEST(Encoder, AnUnfinishedVideoLeavesNothingAndBadTargetsAreRefused) {
  SKIP_WITHOUT_FFMPEG();
  const std::string path = (work_dir() / "unfinished.mp4").string();
  {
    VideoEncoder video(OutputTarget::at(path, "--annotate"), 64, 48, 10);
    const std::vector<uint8_t> f = pattern(64, 48, 0, 0);
    video.write({f.data(), 64, 48, 64 * 3}, 0);
    EXPECT_THROW(video.write({f.data(), 32, 48, 64 * 3}, 0.1), Error);  // another size
  }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".part"));
  auto refused = [](const std::string& p, const std::string& why) {
    try {
      VideoEncoder video(OutputTarget::at(p, "--annotate"), 64, 48, 10);
      ADD_FAILURE() << p << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  };
  refused((work_dir() / "frames.png").string(), ".mp4, .mkv, .mov or .avi");
  refused("-", "not a stream");
  EXPECT_THROW(VideoEncoder(OutputTarget::at((work_dir() / "z.mp4").string(), "x"), 0, 48, 10),
               Error);
  EXPECT_THROW(VideoEncoder(OutputTarget::at((work_dir() / "z.mp4").string(), "x"), 64, 48, 0),
               Error);
}

TEST(Annotate, TheBoxTagAndBarsLandWhereTheRowSays) {
  const std::vector<std::string> classes{"neutral", "happy", "sad"};
  scoring::Canvas c(640, 480, {128, 128, 128});  // text at 2x
  FrameResult row;
  row.frame_index = 7;
  row.crop = {300, 200, 160, 120};
  row.label = 1;
  row.probs = {0.25f, 0.6f, 0.15f};
  cli::annotate_frame(c, row, classes);
  auto px = [&](int x, int y) {
    const uint8_t* p = &c.rgb[(size_t(y) * c.w + x) * 3];
    return std::array<int, 3>{p[0], p[1], p[2]};
  };
  const scoring::Rgb col = scoring::series_colour(1);
  const std::array<int, 3> label{col.r, col.g, col.b}, grey{128, 128, 128};
  // The box's four sides in the label's colour, its inside and outside untouched.
  EXPECT_EQ(px(300 + 80, 200), label);  // top, just inside
  EXPECT_EQ(px(300 + 80, 319), label);  // bottom
  EXPECT_EQ(px(300, 200 + 60), label);  // left
  EXPECT_EQ(px(459, 200 + 60), label);  // right
  EXPECT_EQ(px(380, 260), grey);
  EXPECT_EQ(px(300 + 80, 199 - 40), grey);  // outside, beyond the tag
  EXPECT_EQ(px(600, 400), grey);
  // The tag above the box's left end: the label's colour with text on it.
  EXPECT_EQ(px(301, 199), label);
  // The panel top left is darkened; each class's bar is filled to its probability.
  const int scale = 2, pad = 4, th = scoring::text_height(scale), row_h = th + pad;
  int name_w = 0;
  for (const auto& n : classes) name_w = std::max(name_w, scoring::text_width(n, scale));
  const int bx = pad + name_w + pad, bar_w = 50 * scale;
  for (int k = 0; k < 3; ++k) {
    const int y = pad + k * row_h + th / 2;
    const int filled = int(std::lround(row.probs[size_t(k)] * bar_w));
    const scoring::Rgb s = scoring::series_colour(k);
    EXPECT_EQ(px(bx + filled - 1, y), (std::array<int, 3>{s.r, s.g, s.b})) << k;
    EXPECT_EQ(px(bx + filled + 1, y), (std::array<int, 3>{60, 60, 60})) << k;
  }
  EXPECT_EQ(px(1, 1), (std::array<int, 3>{45, 45, 45}));  // 128 * 0.35
}

// A turned crop (--crop face's eye line) is outlined turned: the midpoints of its turned sides in
// the label's colour, the unturned rectangle's corners (outside the turned square) untouched.
TEST(Annotate, ATurnedCropIsOutlinedTurned) {
  const std::vector<std::string> classes{"neutral", "happy"};
  scoring::Canvas c(640, 480, {128, 128, 128});
  FrameResult row;
  const double angle = 0.5;  // radians, clockwise as shown
  row.crop = {300, 200, 160, 160, float(angle)};
  row.label = 0;
  row.probs = {0.7f, 0.3f};
  cli::annotate_frame(c, row, classes);
  auto px = [&](double x, double y) {
    const uint8_t* p = &c.rgb[(size_t(std::lround(y)) * c.w + size_t(std::lround(x))) * 3];
    return std::array<int, 3>{p[0], p[1], p[2]};
  };
  const scoring::Rgb col = scoring::series_colour(0);
  const std::array<int, 3> label{col.r, col.g, col.b}, grey{128, 128, 128};
  const double cx = 380, cy = 280, half = 80 - 1.5, co = std::cos(angle), si = std::sin(angle);
  // Each side's midpoint: the centre plus the turned unit vector times the half side.
  for (auto [ux, uy] : {std::pair{1.0, 0.0}, {-1.0, 0.0}, {0.0, 1.0}, {0.0, -1.0}})
    EXPECT_EQ(px(cx + half * (co * ux - si * uy), cy + half * (si * ux + co * uy)), label)
        << ux << "," << uy;
  EXPECT_EQ(px(cx, cy), grey);
  EXPECT_EQ(px(302, 357), grey);  // the unturned rectangle's bottom-left corner
  EXPECT_EQ(px(457, 357), grey);  // and bottom-right
}

// The class colours (timeline lines, bars, boxes and tags): eight distinct ones, none grey (the
// timeline marks the frames shown in grey), each visible on white, and a tag's text readable on
// its colour (WCAG's 4.5:1).
TEST(Annotate, ThePaletteStaysDistinctAndReadable) {
  for (int i = 0; i < 8; ++i) {
    const scoring::Rgb a = scoring::series_colour(i);
    EXPECT_GT(std::max({a.r, a.g, a.b}) - std::min({a.r, a.g, a.b}), 60) << i << " is grey";
    EXPECT_GE(scoring::contrast(a, {255, 255, 255}), 2.0) << i << " fades on white";
    EXPECT_GE(scoring::contrast(scoring::text_on(a), a), 4.5) << i;
    for (int j = 0; j < i; ++j) {
      const scoring::Rgb b = scoring::series_colour(j);
      const double d = std::hypot(a.r - b.r, a.g - b.g, a.b - b.b);
      EXPECT_GT(d, 60) << i << " and " << j << " are too alike";
    }
  }
}

TEST(Annotate, TargetsAreOneFileOrOneUniqueNamePerInput) {
  SKIP_WITHOUT_FFMPEG();
  const fs::path dir = work_dir() / "targets";
  const std::vector<InputItem> two{{"/a/clip.mp4", InputKind::Video},
                                   {"/b/clip.avi", InputKind::Video}};
  const std::vector<OutputTarget> t = cli::annotate_targets(dir.string(), two);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(fs::path(t[0].path()).filename(), "clip.mp4");
  EXPECT_EQ(fs::path(t[1].path()).filename(), "clip-2.mp4");
  EXPECT_TRUE(fs::is_directory(dir));
  EXPECT_THROW(cli::annotate_targets((dir / "one.mp4").string(), two), OptionError);
  EXPECT_EQ(cli::annotate_targets((dir / "one.MKV").string(), {two[0]}).size(), 1u);
  // explain's folders (a file name each) take the same suffix, before the extension.
  std::set<std::string> used;
  EXPECT_EQ(cli::unique_name_for("clip.mp4", used), "clip.mp4");
  EXPECT_EQ(cli::unique_name_for("clip.mp4", used), "clip-2.mp4");
  EXPECT_EQ(cli::unique_name_for("clip.mp4", used), "clip-3.mp4");
  EXPECT_EQ(cli::unique_name_for("frames", used), "frames");
  EXPECT_EQ(cli::unique_name_for("frames", used), "frames-2");
  EXPECT_EQ(cli::unique_name_for(".hidden", used), ".hidden");
  EXPECT_EQ(cli::unique_name_for(".hidden", used), ".hidden-2");
}

// The CLI tests read the videos back with ffprobe (Debian's ffmpeg package; the GPU bundle's
// static FFmpeg has none).
#define SKIP_WITHOUT_FFPROBE()                                \
  if (std::system("command -v ffprobe >/dev/null 2>&1") != 0) \
  GTEST_SKIP() << "no ffprobe on PATH to read the videos back"

// "key=value" lines of ffprobe's default writer for the first video stream.
std::map<std::string, std::string> probe(const std::string& path) {
  const std::string cmd =
      "ffprobe -v error -select_streams v:0 -count_frames -show_entries "
      "stream=codec_name,width,height,nb_read_frames,avg_frame_rate,"
      "r_frame_rate -of default=noprint_wrappers=1 '" +
      path + "'";
  FILE* p = popen(cmd.c_str(), "r");
  std::map<std::string, std::string> out;
  char line[512];
  while (p && fgets(line, sizeof line, p)) {
    std::string s(line);
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    const size_t eq = s.find('=');
    if (eq != std::string::npos) out[s.substr(0, eq)] = s.substr(eq + 1);
  }
  if (p) pclose(p);
  return out;
}

double rate(const std::string& fraction) {
  const size_t slash = fraction.find('/');
  if (slash == std::string::npos) return std::atof(fraction.c_str());
  return std::atof(fraction.substr(0, slash).c_str()) /
         std::atof(fraction.substr(slash + 1).c_str());
}

TEST(AnnotateCli, OneVideoProbesWithTheFramesKeptTheirSizeAndRate) {
  SKIP_WITHOUT_FFMPEG();
  SKIP_WITHOUT_FFPROBE();
  const std::string in = clip("annotate_in.mp4", 20);  // 64x48 at 10 fps
  const std::string out = (work_dir() / "annotated.mp4").string();
  Result r = fervid("classify " + in + " --weights " + tiny_weights() + " --annotate " + out +
                    " --device cpu --batch 4");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("1 annotated video"), std::string::npos) << r.err;
  std::map<std::string, std::string> p = probe(out);
  EXPECT_EQ(p["nb_read_frames"], "20");
  EXPECT_EQ(p["width"], "64");
  EXPECT_EQ(p["height"], "48");
  EXPECT_NEAR(rate(p["avg_frame_rate"]), 10.0, 0.01) << p["avg_frame_rate"];
  EXPECT_TRUE(p["codec_name"] == "h264" || p["codec_name"] == "mpeg4") << p["codec_name"];

  // Every second frame kept: half the frames, at their source times (half the rate).
  r = fervid("classify " + in + " --weights " + tiny_weights() + " --annotate " + out +
             " --device cpu --stride 2 --quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  p = probe(out);
  EXPECT_EQ(p["nb_read_frames"], "10");
  EXPECT_NEAR(rate(p["avg_frame_rate"]), 5.0, 0.01) << p["avg_frame_rate"];
}

TEST(AnnotateCli, AFolderGetsOneVideoPerInputAndABadInputIsARow) {
  SKIP_WITHOUT_FFMPEG();
  SKIP_WITHOUT_FFPROBE();
  const std::string a = clip("annotate_a.mp4", 6), b = clip("annotate_b.mp4", 9);
  const fs::path bad = work_dir() / "annotate_bad.mp4";
  std::ofstream(bad) << "not a video";
  const fs::path dir = work_dir() / "annotated";
  Result r = fervid("classify " + a + " " + bad.string() + " " + b + " --weights " +
                    tiny_weights() + " --annotate " + dir.string() + " --device cpu --quiet");
  EXPECT_EQ(r.code, 1) << r.err;  // the bad input's row is an error; the others are written
  EXPECT_EQ(lines(r.out), 1 + 3) << r.out;
  EXPECT_EQ(probe((dir / "annotate_a.mp4").string())["nb_read_frames"], "6");
  EXPECT_EQ(probe((dir / "annotate_b.mp4").string())["nb_read_frames"], "9");
  EXPECT_FALSE(fs::exists(dir / "annotate_bad.mp4"));
  for (const auto& e : fs::directory_iterator(dir))
    EXPECT_NE(e.path().extension(), ".part") << e.path();
}

TEST(AnnotateCli, ClashesAreRefusedBeforeAnyWork) {
  SKIP_WITHOUT_FFMPEG();
  const std::string a = clip("annotate_a.mp4", 6), b = clip("annotate_b.mp4", 9);
  const std::string w = " --weights " + tiny_weights() + " --device cpu";
  expect_fatal("classify " + a + " " + b + w + " --annotate " + (work_dir() / "both.mp4").string(),
               "names one video, but the run has 2 inputs");
  // The input's own folder: the video would be written over the input.
  const uintmax_t size = fs::file_size(a);
  expect_fatal("classify " + a + w + " --annotate " + work_dir().string(), a);
  EXPECT_EQ(fs::file_size(a), size);
  expect_fatal("classify " + a + w + " --annotate " + a, a);
  EXPECT_EQ(fs::file_size(a), size);
}

}  // namespace
}  // namespace fervid::test
