// Inputs: decode of clips made at test time with the ffmpeg CLI (frame counts, stride,
// max-frames, colours), of the real videos in ../shared/data/video/, image folders, single
// images, the folder walk, and the errors for unreadable or frameless inputs.
#include "fervid/video.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "fervid/error.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace fervid::test {
namespace {

const fs::path kData = FERVID_DATA_DIR;

fs::path work_dir() {
  static const fs::path dir = temp_dir("video");
  return dir;
}

void run(const std::string& cmd) { ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd; }

fs::path make_clip(const std::string& name, int frames, const std::string& extra = "") {
  fs::path p = work_dir() / name;
  if (!fs::exists(p))
    run("ffmpeg -nostdin -v error -y -f lavfi -i testsrc=size=64x48:rate=10 -frames:v " +
        std::to_string(frames) + " -pix_fmt yuv420p " + extra + " " + p.string());
  return p;
}

std::vector<Frame> decode(const fs::path& p, SamplingOptions s = {}) {
  std::vector<InputItem> items = expand_inputs({p.string()});
  EXPECT_EQ(items.size(), 1u);
  auto src = open_frames(items.at(0), s);
  std::vector<Frame> out;
  Frame f;
  while (src->next(f)) out.push_back(f);
  return out;
}

TEST(Video, FrameCountsStrideAndMaxFrames) {
  fs::path clip = make_clip("clip30.mp4", 30);
  auto all = decode(clip);
  ASSERT_EQ(all.size(), 30u);
  EXPECT_EQ(all[0].width, 64);
  EXPECT_EQ(all[0].height, 48);
  auto strided = decode(clip, {4, 0});
  ASSERT_EQ(strided.size(), 8u);
  for (size_t i = 0; i < strided.size(); ++i) EXPECT_EQ(strided[i].index, int64_t(4 * i));
  EXPECT_EQ(decode(clip, {1, 5}).size(), 5u);
  auto both = decode(clip, {3, 4});
  ASSERT_EQ(both.size(), 4u);
  EXPECT_EQ(both.back().index, 9);
  EXPECT_EQ(decode(clip, {100, 0}).size(), 1u);
}

// fervid's RGB must equal what `ffmpeg -i VIDEO frame.png` writes, so a video and the frames a
// user extracted from it with the ffmpeg CLI give the same answers.
void expect_same_as_ffmpeg_cli(const fs::path& video, const std::string& name) {
  fs::path png = work_dir() / (name + ".png");
  run("ffmpeg -nostdin -v error -y -i " + video.string() + " -frames:v 1 " + png.string());
  Frame ours = decode(video).at(0);
  Frame ref = load_image(png.string());
  ASSERT_EQ(ours.width, ref.width);
  ASSERT_EQ(ours.height, ref.height);
  double diff = 0;
  for (int y = 0; y < ref.height; ++y)
    for (int x = 0; x < ref.width * 3; ++x)
      diff += std::abs(int(ours.rgb[size_t(y) * ours.stride + x]) -
                       int(ref.rgb[size_t(y) * ref.stride + x]));
  diff /= double(ref.width) * ref.height * 3;
  std::printf("%s: mean absolute difference to the ffmpeg CLI: %.4f\n", name.c_str(), diff);
  EXPECT_LT(diff, 0.01) << video;
}

TEST(Video, ColoursMatchFfmpegsOwnRgbConversion) {
  expect_same_as_ffmpeg_cli(make_clip("clip5.mkv", 5, "-c:v ffv1"), "testsrc");
  if (fs::exists(kData)) expect_same_as_ffmpeg_cli(kData / "video/astronaut-720p.mp4", "astronaut");
}

TEST(Video, DecodesTheRealVideos) {
  if (!fs::exists(kData)) GTEST_SKIP() << "no shared data at " << kData;
  auto astro = decode(kData / "video/astronaut-720p.mp4");
  ASSERT_EQ(astro.size(), 105u);  // H.264 High, 1280x720
  EXPECT_EQ(astro[0].width, 1280);
  EXPECT_EQ(astro[0].height, 720);
  auto street = decode(kData / "video/vtest.avi", {5, 0});  // MS-MPEG4v3, 795 frames
  EXPECT_EQ(street.size(), 159u);
  EXPECT_EQ(street[0].width, 768);
  auto rav = decode(kData / "ravdess/modified/01-01-08-02-01-01-19.mp4");  // MPEG-4 Part 2
  EXPECT_EQ(rav.size(), 122u);
  EXPECT_EQ(rav[0].width, 720);
}

TEST(Video, ImageFoldersAndSingleImages) {
  fs::path dir = work_dir() / "frames" / "happy" / "vid1";
  fs::create_directories(dir);
  run("ffmpeg -nostdin -v error -y -f lavfi -i testsrc=size=40x30:rate=10 -frames:v 12 " +
      (dir / "f%03d.png").string());
  auto frames = decode(dir);
  ASSERT_EQ(frames.size(), 12u);
  EXPECT_EQ(frames[0].width, 40);
  EXPECT_EQ(decode(dir, {5, 0}).size(), 3u);
  EXPECT_EQ(decode(dir, {1, 2}).size(), 2u);
  if (fs::exists(kData)) {
    auto face = decode(kData / "faces/messi5.jpg");
    ASSERT_EQ(face.size(), 1u);
    EXPECT_EQ(face[0].width, 548);
    EXPECT_EQ(face[0].height, 342);
  }
}

TEST(Video, WalksFoldersAndReportsEmptyOrMissingOnes) {
  fs::path root = work_dir() / "tree";
  fs::create_directories(root / "imgs");
  fs::create_directories(root / "sub" / "deeper");
  fs::create_directories(work_dir() / "empty");
  run("ffmpeg -nostdin -v error -y -f lavfi -i testsrc=size=32x24 -frames:v 2 " +
      (root / "imgs" / "%02d.png").string());
  fs::copy_file(make_clip("clip30.mp4", 30), root / "sub" / "deeper" / "v.mp4",
                fs::copy_options::overwrite_existing);
  std::ofstream(root / "sub" / "notes.txt") << "not a video";
  auto items = expand_inputs({root.string(), (work_dir() / "empty").string(), "/no/such/path"});
  ASSERT_EQ(items.size(), 4u);
  EXPECT_EQ(items[0].kind, InputKind::ImageFolder);
  EXPECT_EQ(items[0].path, (root / "imgs").string());
  EXPECT_EQ(items[1].kind, InputKind::Video);
  EXPECT_EQ(items[2].kind, InputKind::Invalid);
  EXPECT_EQ(items[2].error, "directory holds no images or videos");
  EXPECT_EQ(items[3].kind, InputKind::Invalid);
  EXPECT_EQ(items[3].error, "no such file or directory");
}

void expect_open_error(const fs::path& p, const std::string& reason) {
  try {
    decode(p);
    ADD_FAILURE() << p << " decoded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(reason), std::string::npos) << e.what();
  }
}

TEST(Video, BadVideosFailWithTheirPath) {
  SeedTrace trace;
  fs::path junk = work_dir() / "junk.mp4";
  {
    std::ofstream out(junk, std::ios::binary);
    for (int i = 0; i < 5000; ++i) out.put(char(rng()() & 0xff));
  }
  expect_open_error(junk, "cannot open video");
  fs::path audio = work_dir() / "audio.m4a";
  run("ffmpeg -nostdin -v error -y -f lavfi -i sine=duration=0.5 " + audio.string());
  expect_open_error(audio, "no video stream");
  fs::path empty_png = work_dir() / "broken.png";
  std::ofstream(empty_png) << "PNG but not really";
  expect_open_error(empty_png, "cannot decode image");
}

}  // namespace
}  // namespace fervid::test
