// VideoBook (engine/src/video_book.h): a video from its first frame to its result, without a
// network: crops chosen per frame size (and a video's own crop checked against each size), a video
// that fails drops its later frames, an end without frames is an error, a video is complete when
// its end has come and no frame of it waits in the batch, and its result carries its counts,
// mean probabilities, first crop, warning and rows.
#include "video_book.h"

#include "backends/cpu/cpu_backend.h"
#include "test_util.h"

namespace fervid::test {
namespace {

Frame frame_of(int width, int height, int64_t index = 0) {
  Frame f;
  f.index = index;
  f.width = width;
  f.height = height;
  f.stride = width * 3;
  f.rgb.assign(size_t(f.stride) * height, 7);
  return f;
}

struct Book {
  std::unique_ptr<Backend> be = cpu::make_cpu_backend(1);
  std::vector<InputItem> inputs = {{"a.mp4", InputKind::Video}, {"b.mp4", InputKind::Video},
                                   {"c.mp4", InputKind::Video}, {"d", InputKind::Image},
                                   {"e", InputKind::Image},     {"f", InputKind::Image},
                                   {"g", InputKind::Image},     {"h", InputKind::Image}};
  CropSpec crop = CropSpec::parse("center");
  VoteTable votes{*be, 3, 2, VoteMode::Majority};
  VideoBook book{inputs, crop, votes};
};

TEST(VideoBook, CropsFollowTheFrameSizeAndAFixedCropIsChecked) {
  Book t;
  const auto c1 = t.book.admit(0, frame_of(64, 48));
  ASSERT_TRUE(c1);
  EXPECT_EQ(c1->x, 8);
  EXPECT_EQ(c1->width, 48);
  const auto c2 = t.book.admit(0, frame_of(30, 40));  // the size changed mid-video
  ASSERT_TRUE(c2);
  EXPECT_EQ(c2->y, 5);
  EXPECT_EQ(c2->height, 30);
  // Video 1's crop came with it (face, boxes=FILE): kept while it fits, an error once it does not.
  t.book.start(1, {10, 10, 20, 20}, "");
  ASSERT_TRUE(t.book.admit(1, frame_of(64, 48)));
  EXPECT_FALSE(t.book.admit(1, frame_of(25, 25)));
  EXPECT_FALSE(t.book.admit(1, frame_of(64, 48)));  // a failed video drops its later frames
  EXPECT_FALSE(t.book.end(1, "", ""));              // its first frame still waits in the batch
  EXPECT_EQ(t.book.ran(std::vector<int>{0, 0, 1}, {}), std::vector<int>{1});
  const auto closing = t.book.close(std::vector<int>{1});
  ASSERT_EQ(closing.size(), 1u);
  t.votes.finalize(closing);
  const std::vector<VoteOutcome> votes = t.votes.collect();
  ASSERT_EQ(votes.size(), 1u);
  const VideoResult r = t.book.result(votes[0], VoteMode::Majority);
  EXPECT_EQ(r.path, "b.mp4");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error, "b.mp4: crop box 10,10,20,20 lies outside the 25x25 frame");
  EXPECT_EQ(r.frames, 0);
}

TEST(VideoBook, AVideoIsCompleteWhenItsEndCameAndItsFramesRan) {
  Book t;
  ASSERT_TRUE(t.book.admit(2, frame_of(16, 16, 0)));
  ASSERT_TRUE(t.book.admit(2, frame_of(16, 16, 3)));
  EXPECT_FALSE(t.book.end(2, "", "a warning"));  // two frames not run yet
  FrameResult r0, r1;
  r0.frame_index = 0;
  r1.frame_index = 3;
  std::vector<FrameResult> rows = {r0};
  EXPECT_TRUE(t.book.ran(std::vector<int>{2}, std::move(rows)).empty());
  rows = {r1};
  EXPECT_EQ(t.book.ran(std::vector<int>{2}, std::move(rows)), std::vector<int>{2});
  t.votes.finalize(t.book.close(std::vector<int>{2}));
  VoteOutcome vote = t.votes.collect().at(0);
  // The tallies as a device would have them (nothing was accumulated here): 2 frames.
  vote.winner = 1;
  vote.counts = {0, 2};
  vote.sums = {0.5, 1.5};
  const VideoResult r = t.book.result(vote, VoteMode::Majority);
  EXPECT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.label, 1);
  EXPECT_EQ(r.frames, 2);
  EXPECT_EQ(r.mean_probs, (std::vector<double>{0.25, 0.75}));
  EXPECT_EQ(r.warning, "a warning");
  EXPECT_EQ(r.crop.width, 16);
  ASSERT_EQ(r.frame_rows.size(), 2u);
  EXPECT_EQ(r.frame_rows[1].frame_index, 3);
}

TEST(VideoBook, AnEndWithoutFramesIsAnErrorAndTheDecodersErrorWins) {
  Book t;
  EXPECT_TRUE(t.book.end(0, "", ""));
  EXPECT_TRUE(t.book.end(1, "b.mp4: decoding failed", ""));
  t.votes.finalize(t.book.close(std::vector<int>{0, 1}));
  const std::vector<VoteOutcome> votes = t.votes.collect();
  ASSERT_EQ(votes.size(), 2u);
  EXPECT_EQ(t.book.result(votes[0], VoteMode::Majority).error, "a.mp4: no frames");
  EXPECT_EQ(t.book.result(votes[1], VoteMode::Majority).error, "b.mp4: decoding failed");
  // Both gave their slots back: three new videos get one each.
  for (int v = 0; v < 3; ++v) EXPECT_GE(t.book.slot(v + 5), 0);
}

}  // namespace
}  // namespace fervid::test
