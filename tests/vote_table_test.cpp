// VoteTable (engine/src/vote_table.h): per-video tallies in slots that are reused as soon as a
// video is finalized (a reused slot starts from zero), results read back later than they are
// queued (more finished videos between two collects than there are result rows), each result the
// vote of docs/design.md over exactly the frames added to its slot.
#include "vote_table.h"

#include <algorithm>
#include <map>

#include "cpu/ops.h"
#include "recording_backend.h"
#include "test_util.h"

namespace fervid::test {
namespace {

constexpr int kClasses = 4;

// Random frames (probabilities from a small set, so that sums tie) added to `slot` of the table
// and to the expected tallies of `video`.
struct Tally {
  std::vector<int32_t> counts = std::vector<int32_t>(kClasses, 0);
  std::vector<double> sums = std::vector<double>(kClasses, 0.0);
};

void add_frames(Backend& be, VoteTable& table, int slot, int frames, Tally& want) {
  auto probs = host_tensor({frames, kClasses}, DType::F32);
  auto labels = host_tensor({frames}, DType::I32);
  for (int f = 0; f < frames; ++f) {
    const int label = int(rng()() % kClasses);
    labels.tensor.ptr<int32_t>()[f] = label;
    ++want.counts[label];
    for (int c = 0; c < kClasses; ++c) {
      const float p = 0.125f * float(rng()() % 5);
      probs.tensor.ptr<float>()[f * kClasses + c] = p;
      want.sums[c] += p;
    }
  }
  OwnedTensor dp = host_tensor({frames, kClasses}, DType::F32),
              dl = host_tensor({frames}, DType::I32);
  be.copy_from_host(dp.tensor, probs.tensor.data());
  be.copy_from_host(dl.tensor, labels.tensor.data());
  const Segment seg{0, frames, slot};
  table.accumulate(dp.tensor, dl.tensor, {&seg, 1});
}

void expect_outcome(const VoteOutcome& got, const Tally& want, VoteMode mode) {
  SCOPED_TRACE("video " + std::to_string(got.video));
  EXPECT_EQ(got.counts, std::vector<int64_t>(want.counts.begin(), want.counts.end()));
  EXPECT_EQ(got.sums, want.sums);
  EXPECT_EQ(got.winner, cpu::vote_winner(want.counts.data(), want.sums.data(), kClasses, mode));
}

TEST(VoteTable, SlotsAreReusedFromZeroAndResultsLandInOrder) {
  SeedTrace trace;
  auto be = cpu::make_cpu_backend(1);
  for (VoteMode mode : {VoteMode::Majority, VoteMode::Confidence}) {
    VoteTable table(*be, 3, kClasses, mode);
    std::map<int, Tally> want;
    const int a = table.take_slot(), b = table.take_slot(), c = table.take_slot();
    EXPECT_EQ(std::vector<int>({a, b, c}), std::vector<int>({0, 1, 2}));
    EXPECT_THROW(table.take_slot(), Error);  // all three in use
    add_frames(*be, table, a, 5, want[10]);
    add_frames(*be, table, b, 3, want[11]);
    add_frames(*be, table, a, 4, want[10]);  // a video across two batches
    add_frames(*be, table, c, 1, want[12]);
    const Finished first[] = {{11, b}};
    table.finalize(first);
    // b is free at once; its next video starts from zero.
    const int reused = table.take_slot();
    EXPECT_EQ(reused, b);
    add_frames(*be, table, reused, 2, want[13]);
    const Finished rest[] = {{13, reused}, {10, a}, {12, c}};
    table.finalize(rest);
    const std::vector<VoteOutcome> got = table.collect();
    ASSERT_EQ(got.size(), 4u);
    const int order[] = {11, 13, 10, 12};
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(got[i].video, order[i]);
      expect_outcome(got[i], want[order[i]], mode);
    }
    EXPECT_TRUE(table.collect().empty());
  }
}

// More videos finish between two collects than the table has result rows: finalize gathers the
// earlier results first and the next collect returns every one.
TEST(VoteTable, MoreFinishedVideosThanRowsBetweenCollects) {
  SeedTrace trace;
  auto be = cpu::make_cpu_backend(1);
  VoteTable table(*be, 2, kClasses, VoteMode::Confidence);
  std::map<int, Tally> want;
  for (int video = 0; video < 7; ++video) {
    const int slot = table.take_slot();
    add_frames(*be, table, slot, 1 + video % 3, want[video]);
    const Finished f[] = {{video, slot}};
    table.finalize(f);
  }
  const std::vector<VoteOutcome> got = table.collect();
  ASSERT_EQ(got.size(), 7u);
  for (int video = 0; video < 7; ++video) {
    EXPECT_EQ(got[video].video, video);
    expect_outcome(got[video], want[video], VoteMode::Confidence);
  }
}

// With lanes, the results are copied back behind a fence recorded after the copies, and collect
// waits for it before it reads them.
TEST(VoteTable, ResultsAreReadOnlyAfterTheirFence) {
  SeedTrace trace;
  RecordingBackend be;
  VoteTable table(be, 2, kClasses, VoteMode::Majority);
  Tally want;
  const int slot = table.take_slot();
  add_frames(be, table, slot, 6, want);
  be.log.clear();
  const Finished f[] = {{4, slot}};
  table.finalize(f);
  const std::vector<VoteOutcome> got = table.collect();
  EXPECT_EQ(be.log,
            (std::vector<std::string>{"vote_finalize@Network", "copy_to_host_async@Network",
                                      "copy_to_host_async@Network", "copy_to_host_async@Network",
                                      "record f1", "host waits f1"}));
  ASSERT_EQ(got.size(), 1u);
  expect_outcome(got[0], want, VoteMode::Majority);
}

}  // namespace
}  // namespace fervid::test
