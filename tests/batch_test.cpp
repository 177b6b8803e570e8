// Batch (engine/src/batch.h): frames of several videos in the order they came, and the segments
// the vote kernel adds up (a run of consecutive frames of one video, with that video's slot).
#include "batch.h"

#include "fervid/error.h"
#include "test_util.h"

namespace fervid::test {
namespace {

TEST(Batch, SegmentsAreRunsOfOneVideoWithItsSlot) {
  Batch batch(6);
  EXPECT_TRUE(batch.empty());
  const int videos[] = {4, 4, 7, 4, 9, 9};
  for (int i = 0; i < 6; ++i) {
    Frame f;
    f.index = 10 + i;
    batch.add(videos[i], std::move(f), {i, 0, 1, 1});
  }
  EXPECT_TRUE(batch.full());
  EXPECT_THROW(batch.add(1, Frame(), {}), Error);
  EXPECT_EQ(batch.frames()[3].index, 13);
  EXPECT_EQ(batch.crops()[5].x, 5);
  const std::vector<Segment> s = batch.segments([](int video) { return video * 10; });
  ASSERT_EQ(s.size(), 4u);
  const int want[4][3] = {{0, 2, 40}, {2, 1, 70}, {3, 1, 40}, {4, 2, 90}};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(s[i].first, want[i][0]);
    EXPECT_EQ(s[i].count, want[i][1]);
    EXPECT_EQ(s[i].slot, want[i][2]);
  }
  batch.clear();
  EXPECT_TRUE(batch.empty());
  EXPECT_TRUE(batch.segments([](int) { return 0; }).empty());
}

}  // namespace
}  // namespace fervid::test
