// StageLanes (engine/src/stage_lanes.h): the fences between a batch's three stages, written down
// by a recording backend for three batches: each stage on its lane, waiting for exactly what it
// must (the preprocess for the frame stage that last read its input slot; the frame stage for the
// preprocess and the last vote; the vote for its frame stage). Off, nothing touches the lanes.
// And the frame stage as the CUDA backend replays it: what is captured allocates, copies and
// synchronises nothing, and a replay runs no op.
#include "stage_lanes.h"

#include <algorithm>

#include "classifier.h"
#include "model.h"
#include "recording_backend.h"
#include "test_util.h"
#include "video.h"

namespace fervid::test {
namespace {

std::vector<std::string> run_batches(RecordingBackend& be, bool on, int batches,
                                     std::vector<int>* slots) {
  {
    StageLanes lanes(be, on);
    for (int b = 0; b < batches; ++b) {
      const int slot = lanes.next_slot();
      slots->push_back(slot);
      be.log.push_back("-- batch " + std::to_string(b) + " slot " + std::to_string(slot));
      lanes.preprocess_begins(slot);
      lanes.preprocess_ends();
      lanes.frame_stage_begins();
      lanes.frame_stage_ends(slot);
      lanes.vote_begins(slot);
      lanes.vote_ends();
    }
  }
  return be.log;
}

TEST(StageLanes, FencesOrderEachBatchsStagesAndTheInputSlots) {
  RecordingBackend be;
  std::vector<int> slots;
  // Fences: f1 preprocessed, f2 voted, f3 slot 0 read, f4 slot 1 read.
  const std::vector<std::string> want = {
      "use Vote",    "-- batch 0 slot 0", "use Frames",        "wait f3",           "record f1",
      "use Network", "wait f1",           "wait f2",           "record f3",         "use Vote",
      "wait f3",     "record f2",         "-- batch 1 slot 1", "use Frames",        "wait f4",
      "record f1",   "use Network",       "wait f1",           "wait f2",           "record f4",
      "use Vote",    "wait f4",           "record f2",         "-- batch 2 slot 0", "use Frames",
      "wait f3",     "record f1",         "use Network",       "wait f1",           "wait f2",
      "record f3",   "use Vote",          "wait f3",           "record f2",         "use Network"};
  EXPECT_EQ(run_batches(be, true, 3, &slots), want);
  EXPECT_EQ(slots, (std::vector<int>{0, 1, 0}));
}

TEST(StageLanes, OffTouchesNoLaneAndUsesOneInputSlot) {
  RecordingBackend be;
  std::vector<int> slots;
  const std::vector<std::string> log = run_batches(be, false, 3, &slots);
  EXPECT_EQ(log, (std::vector<std::string>{"-- batch 0 slot 0", "-- batch 1 slot 0",
                                           "-- batch 2 slot 0"}));
  EXPECT_EQ(slots, (std::vector<int>{0, 0, 0}));
}

TEST(StageLanes, ABackendWithoutLanesRunsInOrder) {
  auto cpu = cpu::make_cpu_backend(1);
  ASSERT_EQ(cpu->lanes(), nullptr);
  StageLanes lanes(*cpu, true);
  EXPECT_FALSE(lanes.on());
  EXPECT_EQ(lanes.next_slot(), 0);
  EXPECT_EQ(lanes.next_slot(), 0);
}

std::vector<std::string> broken_captures(const std::vector<std::string>& log) {
  std::vector<std::string> broken;
  std::copy_if(log.begin(), log.end(), std::back_inserter(broken),
               [](const std::string& l) { return l.rfind("CAPTURE BROKEN", 0) == 0; });
  return broken;
}

// Model::frame_stage through GraphReplay: batches of changing sizes in both input
// slots; each (slot, size) plans, is captured once, then replayed, and the captured work touches
// nothing a CUDA graph cannot hold.
TEST(GraphReplay, CapturedFrameStageAllocatesCopiesAndSynchronisesNothing) {
  RecordingBackend be(/*graphs=*/true);
  const std::string path = (temp_dir("replay") / "tiny.safetensors").string();
  make_weights(tiny_spec(), seed(), StDType::F32, path);
  Model model(Weights::load(path), be, 6);
  const std::pair<int, int> runs[] = {{3, 0}, {3, 0}, {3, 0}, {6, 1}, {6, 1}, {3, 1},
                                      {3, 1}, {6, 1}, {3, 0}, {6, 0}, {6, 0}, {6, 0}};
  for (auto [n, slot] : runs) {
    const size_t before = be.log.size();
    model.frame_stage(n, {}, slot);
    if (be.log.size() > before && be.log[before].rfind("replay", 0) == 0) {
      EXPECT_EQ(be.log.size(), before + 1) << "a replay ran ops";
    }
  }
  EXPECT_EQ(broken_captures(be.log), std::vector<std::string>{});
  const ReplayStats st = be.replay_stats();
  EXPECT_EQ(st.graphs, 4);   // (3,0), (6,1), (3,1), (6,0)
  EXPECT_EQ(st.replays, 4);  // the third (3,0), the third (6,1), the fourth (3,0), the third (6,0)
}

// The whole classify job on the recording backend with graphs: the frame stage of every batch
// goes through GraphReplay, and none of what the pipeline does around it lands in a capture.
TEST(GraphReplay, ClassifyJobKeepsHostWorkOutOfTheCapture) {
  RecordingBackend be(/*graphs=*/true);
  const std::string path = (temp_dir("replay") / "tiny-job.safetensors").string();
  make_weights(tiny_spec(), seed(), StDType::F32, path);
  Model model(Weights::load(path), be, 4);
  std::vector<std::string> paths;
  for (int r = 0; r < 3; ++r)
    for (const char* f : {"/faces/astronaut.png", "/video/vtest.avi"})
      paths.push_back(test_data_dir() + f);
  ClassifyOptions opt;
  opt.batch = 4;
  opt.sampling = {7, 9};
  opt.crop = CropSpec::parse("center");
  opt.decoder = DecoderChoice::Cpu;
  opt.decode_threads = 1;
  opt.stage_streams = true;
  int results = 0;
  Classifier(model, opt).run(expand_inputs(paths), [&](const VideoResult& r) {
    EXPECT_TRUE(r.ok()) << r.error;
    ++results;
  });
  EXPECT_EQ(results, int(paths.size()));
  EXPECT_EQ(broken_captures(be.log), std::vector<std::string>{});
  EXPECT_GT(be.replay_stats().replays, 0);
}

}  // namespace
}  // namespace fervid::test
