// StageLanes (engine/src/stage_lanes.h): the fences between a batch's three stages, written down
// by a recording backend for three batches: each stage on its lane, waiting for exactly what it
// must (the preprocess for the frame stage that last read its input slot; the frame stage for the
// preprocess and the last vote; the vote for its frame stage). Off, nothing touches the lanes.
#include "stage_lanes.h"

#include "recording_backend.h"
#include "test_util.h"

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

}  // namespace
}  // namespace fervid::test
