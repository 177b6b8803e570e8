// vote (CPU): both votes of docs/design.md with their tie-breaks, accumulation over several batches
// into slots, and slots cleared by finalize.
#include "cpu/ops.h"
#include "test_util.h"

namespace fervid::test {
namespace {

TEST(VoteWinner, MajorityTieBreaks) {
  // counts tie between 1 and 2: the higher summed probability (2) wins
  int32_t c1[] = {1, 3, 3, 0};
  double s1[] = {0.5, 1.0, 1.2, 0.1};
  EXPECT_EQ(cpu::vote_winner(c1, s1, 4, VoteMode::Majority), 2);
  // counts and sums tie: the lower index wins
  int32_t c2[] = {0, 2, 2, 1};
  double s2[] = {0.1, 0.9, 0.9, 0.5};
  EXPECT_EQ(cpu::vote_winner(c2, s2, 4, VoteMode::Majority), 1);
  // a clear majority beats a higher probability sum
  int32_t c3[] = {4, 1, 0, 0};
  double s3[] = {1.0, 3.0, 0.5, 0.5};
  EXPECT_EQ(cpu::vote_winner(c3, s3, 4, VoteMode::Majority), 0);
}

TEST(VoteWinner, ConfidenceTieBreaks) {
  int32_t c[] = {4, 1, 0, 0};
  double s[] = {1.0, 3.0, 0.5, 0.5};
  EXPECT_EQ(cpu::vote_winner(c, s, 4, VoteMode::Confidence), 1);
  double tie[] = {0.5, 2.0, 2.0, 0.5};
  EXPECT_EQ(cpu::vote_winner(c, tie, 4, VoteMode::Confidence), 1);
}

TEST(Vote, AccumulatesAcrossBatchesAndClearsSlots) {
  SeedTrace trace;
  const int classes = 5, slots = 3;
  auto counts = host_tensor({slots, classes}, DType::I32);
  auto sums = host_tensor({slots, classes}, DType::F64);
  std::memset(counts.tensor.data(), 0, counts.tensor.bytes());
  std::memset(sums.tensor.data(), 0, sums.tensor.bytes());
  std::vector<int32_t> want_counts(classes, 0);
  std::vector<double> want_sums(classes, 0);
  // video A (slot 2) spans three batches of 4 frames; video B (slot 0) sits in the middle batch
  for (int batch = 0; batch < 3; ++batch) {
    auto probs = host_tensor({4, classes}, DType::F32);
    auto labels = host_tensor({4}, DType::I32);
    fill_uniform(probs.tensor, 0, 1);
    for (int f = 0; f < 4; ++f) labels.tensor.ptr<int32_t>()[f] = int(rng()() % classes);
    std::vector<Segment> segs =
        batch == 1 ? std::vector<Segment>{{0, 2, 2}, {2, 2, 0}} : std::vector<Segment>{{0, 4, 2}};
    const int a_frames = batch == 1 ? 2 : 4;
    for (int f = 0; f < a_frames; ++f) {
      ++want_counts[labels.tensor.ptr<int32_t>()[f]];
      for (int j = 0; j < classes; ++j) want_sums[j] += probs.tensor.ptr<float>()[f * classes + j];
    }
    cpu::vote_accumulate(probs.tensor, labels.tensor, segs, counts.tensor, sums.tensor);
  }
  auto winners = host_tensor({1}, DType::I32);
  auto oc = host_tensor({1, classes}, DType::I32);
  auto os = host_tensor({1, classes}, DType::F64);
  poison(winners.tensor);
  poison(oc.tensor);
  poison(os.tensor);
  int slot = 2;
  cpu::vote_finalize(counts.tensor, sums.tensor, {&slot, 1}, VoteMode::Majority, winners.tensor,
                     oc.tensor, os.tensor);
  int total = 0;
  for (int j = 0; j < classes; ++j) {
    EXPECT_EQ(oc.tensor.ptr<int32_t>()[j], want_counts[j]);
    EXPECT_NEAR(os.tensor.ptr<double>()[j], want_sums[j], 1e-9);
    total += oc.tensor.ptr<int32_t>()[j];
    EXPECT_EQ(counts.tensor.ptr<int32_t>()[2 * classes + j], 0) << "slot not cleared";
    EXPECT_EQ(sums.tensor.ptr<double>()[2 * classes + j], 0.0) << "slot not cleared";
  }
  EXPECT_EQ(total, 10);
  EXPECT_EQ(winners.tensor.ptr<int32_t>()[0],
            cpu::vote_winner(want_counts.data(), want_sums.data(), classes, VoteMode::Majority));
}

}  // namespace
}  // namespace fervid::test
