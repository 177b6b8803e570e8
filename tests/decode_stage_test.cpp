// DecodeStage (engine/src/decode_stage.h) without a model: several decode threads through a
// queue shorter than a video, every input ending exactly once after its own frames (in order), a
// bad input ending with its error, in-memory frames sampled like a video's, and with
// --crop boxes=FILE each video's box sent before its frames and a video without one ended at
// once, undecoded.
#include "decode_stage.h"

#include <filesystem>
#include <fstream>
#include <map>

#include "backends/cpu/cpu_backend.h"
#include "test_util.h"

namespace fervid::test {
namespace {

namespace fs = std::filesystem;

// In-memory frames: `n` gray frames of 20x10 whose first byte is their index.
InputItem memory_frames(const std::string& name, int n) {
  auto pixels = std::make_shared<std::vector<std::vector<uint8_t>>>();
  FrameList list;
  for (int i = 0; i < n; ++i) {
    pixels->emplace_back(20 * 10 * 3, uint8_t(100));
    pixels->back()[0] = uint8_t(i);
    list.frames.push_back({pixels->back().data(), 20, 10, 60});
  }
  list.owner = pixels;
  return frames_input(name, std::move(list));
}

struct Seen {
  std::vector<int64_t> frames;  // source indices, in the order they came
  int starts = 0, ends = 0;
  bool start_first = true;  // no frame before the StartMsg
  std::string error;
};

std::map<int, Seen> drain(DecodeStage& stage) {
  std::map<int, Seen> seen;
  Msg m;
  while (stage.queue().pop(m)) {
    if (auto* f = std::get_if<FrameMsg>(&m)) {
      Seen& s = seen[f->video];
      EXPECT_EQ(s.ends, 0) << "a frame after its video's end";
      s.frames.push_back(f->frame.index);
    } else if (auto* st = std::get_if<StartMsg>(&m)) {
      Seen& s = seen[st->video];
      s.start_first = s.frames.empty();
      ++s.starts;
    } else {
      const auto& e = std::get<EndMsg>(m);
      ++seen[e.video].ends;
      seen[e.video].error = e.error;
    }
  }
  return seen;
}

TEST(DecodeStage, ThreadsEndEveryInputOnceAfterItsFrames) {
  auto be = cpu::make_cpu_backend(1);
  const std::vector<InputItem> inputs = {
      memory_frames("m0", 7),
      {"/no/such/file.png", InputKind::Invalid, "no such file"},
      memory_frames("m2", 1),
      {std::string(FERVID_DATA_DIR) + "/faces/astronaut.png", InputKind::Image},
      memory_frames("m4", 12)};
  for (int threads : {1, 3}) {
    SCOPED_TRACE(std::to_string(threads) + " threads");
    ClassifyOptions opt;
    opt.batch = 2;
    opt.queue_frames = 3;  // shorter than a video: the threads wait for the consumer
    opt.sampling.stride = 2;
    DecodeStage stage(inputs, opt, DecoderKind::Cpu, *be, threads);
    const std::map<int, Seen> seen = drain(stage);
    RunStats stats;
    stage.finish(stats);
    EXPECT_EQ(stats.decode_threads, threads);
    ASSERT_EQ(seen.size(), inputs.size());
    EXPECT_EQ(seen.at(0).frames, (std::vector<int64_t>{0, 2, 4, 6}));
    EXPECT_EQ(seen.at(2).frames, (std::vector<int64_t>{0}));
    EXPECT_EQ(seen.at(3).frames.size(), 1u);
    EXPECT_EQ(seen.at(4).frames, (std::vector<int64_t>{0, 2, 4, 6, 8, 10}));
    EXPECT_TRUE(seen.at(1).frames.empty());
    EXPECT_NE(seen.at(1).error.find("no such file"), std::string::npos) << seen.at(1).error;
    for (const auto& [video, s] : seen) {
      EXPECT_EQ(s.ends, 1) << "input " << video;
      EXPECT_EQ(s.starts, 0) << "input " << video;
      if (video != 1) {
        EXPECT_EQ(s.error, "") << "input " << video;
      }
    }
  }
}

TEST(DecodeStage, BoxesComeBeforeTheFramesAndAVideoWithoutOneIsNotDecoded) {
  auto be = cpu::make_cpu_backend(1);
  const fs::path dir = temp_dir("decode-stage");
  const std::string listed = std::string(FERVID_DATA_DIR) + "/video/astronaut-720p.mp4";
  const std::string unlisted = std::string(FERVID_DATA_DIR) + "/video/vtest.avi";
  try {
    open_frames({listed, InputKind::Video}, {});
  } catch (const Error& e) {
    GTEST_SKIP() << e.what();  // a build without FFmpeg (the GPU bundle's, without video)
  }
  const fs::path csv = dir / "boxes.csv";
  std::ofstream(csv) << listed << ",100,50,400,400\n";
  ClassifyOptions opt;
  opt.batch = 4;
  opt.sampling = {10, 3};
  opt.crop = CropSpec::parse("boxes=" + csv.string());
  const std::vector<InputItem> inputs = {{unlisted, InputKind::Video}, {listed, InputKind::Video}};
  DecodeStage stage(inputs, opt, DecoderKind::Cpu, *be, 2);
  const std::map<int, Seen> seen = drain(stage);
  RunStats stats;
  stage.finish(stats);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_TRUE(seen.at(0).frames.empty());
  EXPECT_NE(seen.at(0).error.find("no crop box for this video"), std::string::npos);
  EXPECT_EQ(seen.at(1).starts, 1);
  EXPECT_TRUE(seen.at(1).start_first);
  EXPECT_EQ(seen.at(1).frames, (std::vector<int64_t>{0, 10, 20}));
  EXPECT_EQ(seen.at(1).ends, 1);
}

}  // namespace
}  // namespace fervid::test
