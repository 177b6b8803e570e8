// Inputs: decode of clips made at test time with the ffmpeg CLI (frame counts, stride,
// max-frames, colours), of the real videos in ../shared/data/video/, image folders, single
// images, the folder walk, and the errors for unreadable or frameless inputs.
#include "video.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

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

// A phone's portrait clip carries its rotation in the stream's display matrix: fervid's frames
// are upright, equal to those `ffmpeg -i V f.png` (which autorotates) writes, size included.
TEST(Video, RotatedClipsAreTurnedUprightAsTheFfmpegCliDoes) {
  const fs::path base = make_clip("upright.mp4", 3);
  for (int degrees : {90, 180, 270}) {
    const fs::path rotated = work_dir() / ("rotated" + std::to_string(degrees) + ".mp4");
    run("ffmpeg -nostdin -v error -y -i " + base.string() +
        " -c copy -metadata:s:v:0 rotate=" + std::to_string(degrees) + " " + rotated.string());
    SCOPED_TRACE(rotated.string());
    expect_same_as_ffmpeg_cli(rotated, "rotated" + std::to_string(degrees));
    const Frame f = decode(rotated).at(0);
    EXPECT_EQ(f.width, degrees == 180 ? 64 : 48);
    EXPECT_EQ(f.height, degrees == 180 ? 48 : 64);
    // Kept as YUV (the GPU's path), a rotated clip still comes as upright RGB.
    const Frame y = decode(rotated, {1, 0, true}).at(0);
    EXPECT_FALSE(y.is_yuv);
    EXPECT_EQ(y.width, f.width);
  }
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
  FERVID_NEED_RAVDESS();
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

// One unreadable image does not fail its folder: it is skipped and the warning says so; a folder
// none of whose images can be read fails with the first one's reason.
TEST(Video, ImageFolderSkipsAnUnreadableImageAndSaysSo) {
  const fs::path dir = work_dir() / "one-bad-png";
  fs::create_directories(dir);
  run("ffmpeg -nostdin -v error -y -f lavfi -i testsrc=size=32x24 -frames:v 3 " +
      (dir / "f%02d.png").string());
  std::ofstream(dir / "f02.png") << "PNG but not really";
  auto src = open_frames({dir.string(), InputKind::ImageFolder, ""}, {});
  std::vector<int64_t> indices;
  Frame f;
  while (src->next(f)) indices.push_back(f.index);
  EXPECT_EQ(indices, (std::vector<int64_t>{0, 2}));
  EXPECT_NE(src->warning().find("1 of 3 images could not be read"), std::string::npos)
      << src->warning();
  EXPECT_NE(src->warning().find("f02.png"), std::string::npos) << src->warning();
  const fs::path bad = work_dir() / "all-bad-png";
  fs::create_directories(bad);
  std::ofstream(bad / "a.png") << "no";
  std::ofstream(bad / "b.png") << "no";
  auto none = open_frames({bad.string(), InputKind::ImageFolder, ""}, {});
  EXPECT_THROW(none->next(f), Error);
}

// A walk leaves nothing out without a word: GIFs and audio files are inputs (their rows say
// what they are), dangling links and pipes are error rows, other files are listed as skipped,
// and images beside other inputs are said to be read as one video.
TEST(Video, FolderWalksDropNothingSilently) {
  const fs::path root = work_dir() / "walk";
  fs::remove_all(root);
  fs::create_directories(root / "sub");
  run("ffmpeg -nostdin -v error -y -f lavfi -i testsrc=size=32x24:rate=5 -frames:v 3 " +
      (root / "sub" / "anim.gif").string());
  run("ffmpeg -nostdin -v error -y -f lavfi -i sine=duration=0.2 " +
      (root / "sub" / "voice.m4a").string());
  fs::create_symlink(root / "gone.mp4", root / "sub" / "dangling.mp4");
  run("mkfifo " + (root / "sub" / "pipe.mp4").string());
  std::ofstream(root / "sub" / "notes.txt") << "not a video";
  run("ffmpeg -nostdin -v error -y -f lavfi -i testsrc=size=32x24 -frames:v 2 " +
      (root / "%02d.png").string());
  WalkNotes notes;
  const auto items = expand_inputs({root.string()}, &notes);
  std::map<std::string, const InputItem*> by_name;
  for (const InputItem& i : items) by_name[fs::path(i.path).filename().string()] = &i;
  ASSERT_EQ(items.size(), 5u);
  EXPECT_EQ(by_name.at("anim.gif")->kind, InputKind::Video);
  EXPECT_EQ(by_name.at("voice.m4a")->kind, InputKind::Video);
  EXPECT_EQ(by_name.at("dangling.mp4")->error, "a dangling symbolic link (its target is missing)");
  EXPECT_EQ(by_name.at("pipe.mp4")->error, "not a regular file (a named pipe)");
  EXPECT_EQ(by_name.at("walk")->kind, InputKind::ImageFolder);
  EXPECT_EQ(notes.skipped, (std::vector<std::string>{(root / "sub" / "notes.txt").string()}));
  EXPECT_EQ(notes.image_folders_beside_other_inputs, (std::vector<std::string>{root.string()}));
  ASSERT_EQ(notes.lines().size(), 2u);
  EXPECT_NE(notes.lines()[0].find("skipped 1 files"), std::string::npos) << notes.lines()[0];
  // Named directly, a pipe or a device is refused, not opened (it could block for ever).
  const auto direct = expand_inputs({(root / "sub" / "pipe.mp4").string(), "/dev/zero"});
  EXPECT_EQ(direct[0].error, "not a regular file (a named pipe)");
  EXPECT_EQ(direct[1].error, "not a regular file (a device)");
  EXPECT_EQ(decode(root / "sub" / "anim.gif").size(), 3u);
  // A stray image in a folder of videos is an input of its own (a row named by it), not a
  // one-frame "video" named after the folder.
  const fs::path clips = work_dir() / "clips-and-a-still";
  fs::create_directories(clips);
  fs::copy_file(make_clip("stray30.mp4", 30), clips / "a.mp4",
                fs::copy_options::overwrite_existing);
  run("ffmpeg -nostdin -v error -y -f lavfi -i testsrc=size=32x24 -frames:v 1 " +
      (clips / "still.png").string());
  WalkNotes stray;
  const auto mixed = expand_inputs({clips.string()}, &stray);
  ASSERT_EQ(mixed.size(), 2u);
  EXPECT_EQ(mixed[0].path, (clips / "a.mp4").string());
  EXPECT_EQ(mixed[1].path, (clips / "still.png").string());
  EXPECT_EQ(mixed[1].kind, InputKind::Image);
  EXPECT_EQ(stray.images_beside_videos, (std::vector<std::string>{clips.string()}));
  ASSERT_EQ(stray.lines().size(), 1u);
  EXPECT_NE(stray.lines()[0].find("classified one by one"), std::string::npos);
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

// A file no FFmpeg demuxer takes for its format (random bytes sometimes are one).
fs::path write_junk(const std::string& name) {
  const fs::path p = work_dir() / name;
  std::ofstream out(p, std::ios::binary);
  for (int i = 0; i < 100; ++i) out << "this is not a video, just text\n";
  return p;
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
  expect_open_error(write_junk("junk.mp4"), "cannot open video");
  fs::path audio = work_dir() / "audio.m4a";
  run("ffmpeg -nostdin -v error -y -f lavfi -i sine=duration=0.5 " + audio.string());
  expect_open_error(audio, "no video stream");
  fs::path empty_png = work_dir() / "broken.png";
  std::ofstream(empty_png) << "PNG but not really";
  expect_open_error(empty_png, "cannot decode image");
}

// --- ClipDecoder: clip after clip, a decoder each ---

struct Decoded {
  std::vector<Frame> frames;
  std::string error;
};

// Whether the ffmpeg CLI on PATH has `encoder` (the minimal static one of tools/gpu-check.sh's
// bundle has no libx264 nor MS-MPEG4).
bool has_encoder(const std::string& encoder) {
  const std::string cmd = "ffmpeg -hide_banner -encoders 2>/dev/null | grep -qw " + encoder;
  return std::system(cmd.c_str()) == 0;
}

#define REQUIRE_ENCODERS()                                                \
  do {                                                                    \
    for (const char* e : {"libx264", "msmpeg4"})                          \
      if (!has_encoder(e)) GTEST_SKIP() << "the ffmpeg CLI has no " << e; \
  } while (0)

// Every clip through one ClipDecoder, added one at a time as the pipeline does (or all at once),
// with the events checked for order: a clip's frames, then its end, clips in the order added.
std::vector<Decoded> decode_stream(const std::vector<fs::path>& clips, SamplingOptions s,
                                   bool add_all_first, int* decoders = nullptr) {
  std::vector<Decoded> out(clips.size());
  auto decoder = ClipDecoder::create(s, {});
  int expect = 0;
  auto pump = [&] {
    ClipEvent ev;
    while (decoder->next(ev)) {
      EXPECT_EQ(ev.clip, expect) << "events out of clip order";
      if (ev.clip != expect) return;
      if (ev.end) {
        out[expect++].error = ev.error;
      } else {
        out[expect].frames.push_back(std::move(ev.frame));
      }
    }
  };
  for (size_t i = 0; i < clips.size(); ++i) {
    decoder->add(int(i), clips[i].string());
    if (!add_all_first) pump();
  }
  decoder->flush();
  pump();
  EXPECT_EQ(expect, int(clips.size())) << "clips without an end";
  if (decoders) *decoders = decoder->decoders_opened();
  return out;
}

// Each clip on its own: open_frames, the one-video path that tests above hold to the ffmpeg CLI.
Decoded decode_alone(const fs::path& clip, SamplingOptions s) {
  Decoded d;
  try {
    auto src = open_frames({clip.string(), InputKind::Video, ""}, s);
    Frame f;
    while (src->next(f)) d.frames.push_back(f);
  } catch (const Error& e) {
    d.error = e.what();
  }
  return d;
}

void expect_same_frames(const Decoded& stream, const Decoded& alone, const fs::path& clip) {
  SCOPED_TRACE(clip.string());
  EXPECT_EQ(stream.error, alone.error);
  ASSERT_EQ(stream.frames.size(), alone.frames.size());
  for (size_t i = 0; i < alone.frames.size(); ++i) {
    const Frame &a = stream.frames[i], &b = alone.frames[i];
    ASSERT_EQ(a.index, b.index) << "frame " << i;
    ASSERT_EQ(a.time_s, b.time_s) << "frame " << i;
    ASSERT_EQ(a.width, b.width);
    ASSERT_EQ(a.height, b.height);
    ASSERT_EQ(a.is_yuv, b.is_yuv);
    if (a.is_yuv) {
      ASSERT_TRUE(a.yuv == b.yuv) << "frame " << i << " differs";
    } else {
      for (int y = 0; y < a.height; ++y)
        ASSERT_EQ(0, std::memcmp(a.rgb.data() + size_t(y) * a.stride,
                                 b.rgb.data() + size_t(y) * b.stride, size_t(a.width) * 3))
            << "frame " << i << " row " << y << " differs";
    }
  }
}

// H.264 with B-frames and short GOPs (reordering across the clip boundary), real RAVDESS and HD
// clips, a size change, codecs that cannot continue (MPEG-4 part 2, MS-MPEG4), a file that is no
// video, and a clip whose middle is overwritten with noise: each clip's frames equal those of
// the clip decoded alone, byte for byte (the noisy one too: its errors are concealed from its
// own frames, never from the clip before), and the clips after a bad one are not affected.
TEST(ClipDecoder, ContinuousStreamEqualsEachClipDecodedAlone) {
  SeedTrace trace;
  REQUIRE_ENCODERS();
  FERVID_NEED_RAVDESS();
  const fs::path ravdess = kData / "ravdess" / "modified";
  fs::path bframes = make_clip("bframes.mp4", 37, "-c:v libx264 -bf 3 -g 12");
  fs::path bframes2 = make_clip("bframes2.mp4", 23, "-c:v libx264 -bf 2 -g 5 -crf 40");
  fs::path mpeg4 = make_clip("part2.avi", 14, "-c:v mpeg4");
  fs::path ms = make_clip("ms.avi", 9, "-c:v msmpeg4");
  fs::path junk = write_junk("stream-junk.mp4");
  // 60 frames, moov first, then a run of noise over the middle of the media data.
  fs::path noisy = make_clip("noisy.mp4", 60, "-c:v libx264 -g 8 -movflags +faststart");
  {
    std::fstream f(noisy, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(0, std::ios::end);
    const auto size = int64_t(f.tellp());
    f.seekp(size / 2);
    for (int i = 0; i < 400; ++i) f.put(char(rng()() & 0xff));
  }
  const std::vector<fs::path> clips = {ravdess / "01-01-07-02-02-01-01_1.mp4",
                                       bframes,
                                       bframes2,
                                       bframes,
                                       kData / "video" / "astronaut-720p.mp4",
                                       bframes2,
                                       mpeg4,
                                       junk,
                                       bframes,
                                       noisy,
                                       bframes2,
                                       ms,
                                       ravdess / "01-01-08-02-01-01-19.mp4",
                                       bframes};
  for (const SamplingOptions s : {SamplingOptions{1, 0, false}, SamplingOptions{3, 0, true}}) {
    std::vector<Decoded> alone;
    for (const fs::path& c : clips) alone.push_back(decode_alone(c, s));
    ASSERT_EQ(alone[7].frames.size(), 0u);
    EXPECT_NE(alone[7].error.find("cannot open video"), std::string::npos) << alone[7].error;
    for (bool all_first : {false, true}) {
      SCOPED_TRACE(std::string("stride ") + std::to_string(s.stride) +
                   (all_first ? ", all clips added first" : ", one clip at a time"));
      int decoders = 0;
      std::vector<Decoded> stream = decode_stream(clips, s, all_first, &decoders);
      ASSERT_EQ(stream.size(), clips.size());
      // A decoder of its own for each clip, none for the junk file that cannot be opened.
      EXPECT_EQ(decoders, 13);
      for (size_t i = 0; i < clips.size(); ++i) expect_same_frames(stream[i], alone[i], clips[i]);
    }
  }
}

// The damage that made a clip's frames depend on the clip before it: bytes of its first
// keyframe overwritten, so that the decoder conceals them, from the previous clip's last frame
// when it was not flushed. Decoded after another clip it must equal the clip decoded alone.
TEST(ClipDecoder, ADamagedClipDependsOnItselfNotOnTheClipBefore) {
  REQUIRE_ENCODERS();
  const fs::path before = make_clip("before.mp4", 20, "-c:v libx264 -vf hflip");
  const fs::path damaged = work_dir() / "damaged-idr.mp4";
  fs::copy_file(make_clip("idr.mp4", 20, "-c:v libx264 -g 100"), damaged,
                fs::copy_options::overwrite_existing);
  {
    std::fstream f(damaged, std::ios::in | std::ios::out | std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const size_t mdat = bytes.find("mdat");
    ASSERT_NE(mdat, std::string::npos);
    for (int k = 0; k < 40; ++k) {  // a fixed pattern: the test does not depend on a seed
      f.seekp(std::streamoff(mdat + 8 + 300 + (k * 37) % 600));
      f.put(char(0xff));
    }
  }
  const Decoded alone = decode_alone(damaged, {});
  ASSERT_FALSE(alone.frames.empty()) << alone.error;
  for (bool all_first : {false, true}) {
    const std::vector<Decoded> stream = decode_stream({before, damaged}, {}, all_first);
    expect_same_frames(stream[1], alone, damaged);
  }
}

// One read that makes no progress for FERVID_STALL_SECONDS (a pipe nobody writes to, a hung
// network share) ends its clip with an error row instead of hanging the run.
TEST(ClipDecoder, AReadThatStallsEndsTheClipWithAnError) {
  const fs::path pipe = work_dir() / "stalled.mp4";
  fs::remove(pipe);
  run("mkfifo " + pipe.string());
  // A writer end that never writes (O_RDWR opens a pipe without waiting for a reader).
  const int writer = ::open(pipe.c_str(), O_RDWR | O_NONBLOCK);
  ASSERT_GE(writer, 0);
  setenv("FERVID_STALL_SECONDS", "1", 1);
  auto decoder = ClipDecoder::create({}, {});
  unsetenv("FERVID_STALL_SECONDS");
  decoder->add(0, pipe.string());
  decoder->flush();
  const auto t0 = std::chrono::steady_clock::now();
  ClipEvent ev;
  bool ended = false;
  while (decoder->next(ev))
    if (ev.end) {
      ended = true;
      break;
    }
  const double waited =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ::close(writer);
  ASSERT_TRUE(ended);
  EXPECT_NE(ev.error.find("no data for 1 s"), std::string::npos) << ev.error;
  EXPECT_LT(waited, 10.0);
}

// ffprobe's pts_time of every frame of `clip`, in presentation order.
std::vector<double> ffprobe_times(const fs::path& clip) {
  const std::string cmd =
      "ffprobe -v error -select_streams v:0 -show_entries frame=pts_time -of "
      "csv=p=0 " +
      clip.string();
  std::vector<double> times;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char line[128];
    while (std::fgets(line, sizeof(line), p))
      if (line[0] != '\n') times.push_back(std::atof(line));  // a blank line follows side data
    pclose(p);
  }
  return times;
}

// Every frame carries its presentation time, ffprobe's pts_time to the microsecond: an MP4 with
// an edit list (the shared 720p clip), a RAVDESS clip at 29.97 fps, an AVI (time stamps from the
// packets' dts) and, where the ffmpeg CLI can make one, H.264 with B-frames (frames leave the
// decoder in another order than their packets came); the same through a continuous stream of
// clips and with a stride.
TEST(Video, FramesCarryTheStreamsPresentationTimes) {
  FERVID_NEED_RAVDESS();
  std::vector<fs::path> clips = {kData / "video" / "astronaut-720p.mp4",
                                 kData / "ravdess" / "modified" / "01-01-08-02-01-01-19.mp4",
                                 kData / "video" / "vtest.avi"};
  if (has_encoder("libx264"))
    clips.push_back(make_clip("times-bframes.mp4", 31, "-c:v libx264 -bf 3 -g 9"));
  for (const SamplingOptions s : {SamplingOptions{1, 90}, SamplingOptions{4, 0}}) {
    const std::vector<Decoded> stream = decode_stream(clips, s, false);
    for (size_t c = 0; c < clips.size(); ++c) {
      SCOPED_TRACE(clips[c].string() + ", stride " + std::to_string(s.stride));
      const std::vector<double> want = ffprobe_times(clips[c]);
      ASSERT_FALSE(want.empty());
      ASSERT_FALSE(stream[c].frames.empty()) << stream[c].error;
      for (const Frame& f : stream[c].frames) {
        ASSERT_LT(size_t(f.index), want.size());
        EXPECT_NEAR(f.time_s, want[size_t(f.index)], 1e-6) << "frame " << f.index;
      }
    }
  }
}

// Five H.264 sizes, then the first and the last again, one decoder each: every clip's frames
// are as decoded alone.
TEST(ClipDecoder, ClipsOfManySizesEachGetADecoderOfTheirOwn) {
  REQUIRE_ENCODERS();
  std::vector<fs::path> sizes;
  for (const char* size : {"64x48", "80x48", "96x48", "64x64", "48x48"}) {
    fs::path p = work_dir() / (std::string("size-") + size + ".mp4");
    if (!fs::exists(p))
      run(std::string("ffmpeg -nostdin -v error -y -f lavfi -i testsrc=size=") + size +
          ":rate=10 -frames:v 11 -pix_fmt yuv420p -c:v libx264 -bf 2 -g 4 " + p.string());
    sizes.push_back(p);
  }
  std::vector<fs::path> clips = sizes;
  clips.push_back(sizes[0]);
  clips.push_back(sizes[4]);
  int decoders = 0;
  const std::vector<Decoded> stream = decode_stream(clips, {}, false, &decoders);
  EXPECT_EQ(decoders, 7);
  for (size_t i = 0; i < clips.size(); ++i)
    expect_same_frames(stream[i], decode_alone(clips[i], {}), clips[i]);
}

TEST(ClipDecoder, MaxFramesStopsEachClipAndTheNextOneContinues) {
  REQUIRE_ENCODERS();
  fs::path a = make_clip("bframes.mp4", 37, "-c:v libx264 -bf 3 -g 12");
  fs::path b = make_clip("bframes2.mp4", 23, "-c:v libx264 -bf 2 -g 5 -crf 40");
  const SamplingOptions s{2, 5, false};
  const std::vector<fs::path> clips = {a, b, a, a, b};
  int decoders = 0;
  std::vector<Decoded> stream = decode_stream(clips, s, false, &decoders);
  EXPECT_EQ(decoders, 5);
  for (size_t i = 0; i < clips.size(); ++i) {
    ASSERT_EQ(stream[i].frames.size(), 5u);
    expect_same_frames(stream[i], decode_alone(clips[i], s), clips[i]);
  }
}

TEST(ClipDecoder, AnEmptyFlushAndNoClipsEndCleanly) {
  REQUIRE_ENCODERS();
  auto decoder = ClipDecoder::create({}, {});
  ClipEvent ev;
  EXPECT_FALSE(decoder->next(ev));
  decoder->flush();
  EXPECT_FALSE(decoder->next(ev));
  fs::path a = make_clip("bframes.mp4", 37, "-c:v libx264 -bf 3 -g 12");
  decoder->add(4, (work_dir() / "missing.mp4").string());
  decoder->add(5, a.string());
  decoder->flush();
  ASSERT_TRUE(decoder->next(ev));
  EXPECT_TRUE(ev.end);
  EXPECT_EQ(ev.clip, 4);
  EXPECT_NE(ev.error.find("missing.mp4: cannot open video"), std::string::npos) << ev.error;
  int frames = 0;
  while (decoder->next(ev) && !ev.end) ++frames;
  EXPECT_EQ(frames, 37);
  EXPECT_TRUE(ev.end);
  EXPECT_EQ(ev.clip, 5);
  EXPECT_TRUE(ev.error.empty()) << ev.error;
  EXPECT_FALSE(decoder->next(ev));
}

// With a CPU backend, auto decodes on the CPU without a word (nothing fell back) and nvdec is
// refused; with a device backend, auto falls back to the CPU with the reason.
TEST(ClipDecoder, CpuBackendRefusesNvdecAndAutoFallsBackWithAReason) {
  std::string notice;
  EXPECT_EQ(choose_decoder(DecoderChoice::Auto, false, false, &notice), DecoderKind::Cpu);
  EXPECT_EQ(notice, "");
  EXPECT_EQ(choose_decoder(DecoderChoice::Cpu, true, false, &notice), DecoderKind::Cpu);
  try {
    choose_decoder(DecoderChoice::Nvdec, false, false, nullptr);
    ADD_FAILURE() << "nvdec with the CPU backend was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--decoder nvdec"), std::string::npos) << e.what();
  }
  try {
    parse_decoder("gpu");
    ADD_FAILURE() << "an unknown decoder was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected auto, nvdec or cpu"), std::string::npos);
  }
  notice.clear();
  EXPECT_EQ(choose_decoder(DecoderChoice::Auto, true, true, &notice), DecoderKind::Cpu);
  // Inside the engine a notice names options by key; the engine words it for its caller.
  EXPECT_NE(in_words(notice, Wording::Cli).find("--crop face"), std::string::npos) << notice;
}

}  // namespace
}  // namespace fervid::test
