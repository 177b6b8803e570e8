// fervid explain's choices and files: which frames are explained, the .npy maps.
#include "explain.h"

#include <gtest/gtest.h>

#include <cstring>

#include "test_util.h"

namespace fervid::test {
namespace {

VideoResult video_with(const std::vector<float>& winner_probs) {
  VideoResult r;
  for (size_t i = 0; i < winner_probs.size(); ++i) {
    FrameResult f;
    f.frame_index = int64_t(i) * 3;  // a stride of 3
    f.probs = {1 - winner_probs[i], winner_probs[i]};
    r.frame_rows.push_back(f);
  }
  return r;
}

TEST(Explain, TopFramesAreTheLargestProbabilitiesTiesByIndex) {
  // Rows 1, 4 and 6 tie at 0.9: the top 2 are rows 1 and 4, and all three come before row 2's
  // 0.8. The result is in frame order, each with its rank.
  const VideoResult r = video_with({0.1f, 0.9f, 0.8f, 0.2f, 0.9f, 0.3f, 0.9f});
  auto rows = [](const std::vector<cli::ChosenFrame>& c) {
    std::vector<size_t> out;
    for (const auto& f : c) out.push_back(f.row);
    return out;
  };
  const auto two = cli::choose_frames(r, 1, 2, 0);
  EXPECT_EQ(rows(two), (std::vector<size_t>{1, 4}));
  EXPECT_EQ(two[0].top_rank, 1);
  EXPECT_EQ(two[1].top_rank, 2);
  const auto four = cli::choose_frames(r, 1, 4, 0);
  EXPECT_EQ(rows(four), (std::vector<size_t>{1, 2, 4, 6}));
  EXPECT_EQ(four[1].top_rank, 4);  // row 2 (0.8) after the three ties
  // Class 0 (1 - p): row 0 (0.9) first, then row 3 (0.8).
  EXPECT_EQ(rows(cli::choose_frames(r, 0, 2, 0)), (std::vector<size_t>{0, 3}));
}

TEST(Explain, SpacedFramesSpanTheVideoAndJoinTheTopOnes) {
  const VideoResult r = video_with({0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f, 0.9f});
  const auto c = cli::choose_frames(r, 1, 1, 3);  // top: row 8; spaced: rows 0, 4, 8
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0].row, 0u);
  EXPECT_TRUE(c[0].spaced);
  EXPECT_EQ(c[0].top_rank, 0);
  EXPECT_EQ(c[1].row, 4u);
  EXPECT_EQ(c[2].row, 8u);
  EXPECT_TRUE(c[2].spaced);
  EXPECT_EQ(c[2].top_rank, 1);
  // More frames asked for than the video has: each frame once.
  EXPECT_EQ(cli::choose_frames(video_with({0.5f, 0.4f}), 1, 5, 5).size(), 2u);
  EXPECT_EQ(cli::choose_frames(video_with({0.5f, 0.4f, 0.3f}), 1, 0, 1)[0].row, 1u);
}

TEST(Explain, NpyHeaderDescribesTheFloats) {
  const std::vector<float> data{1.5f, -2.0f, 3.25f, 0.0f, 7.0f, 8.0f};
  const std::string npy = cli::npy_f32(data, {1, 2, 3});
  ASSERT_GE(npy.size(), 10u);
  EXPECT_EQ(npy.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const size_t header = uint8_t(npy[8]) | size_t(uint8_t(npy[9])) << 8;
  EXPECT_EQ((10 + header) % 64, 0u);
  const std::string dict = npy.substr(10, header);
  EXPECT_NE(dict.find("'descr': '<f4'"), std::string::npos) << dict;
  EXPECT_NE(dict.find("'shape': (1, 2, 3)"), std::string::npos) << dict;
  EXPECT_EQ(dict.back(), '\n');
  ASSERT_EQ(npy.size(), 10 + header + data.size() * 4);
  std::vector<float> back(data.size());
  std::memcpy(back.data(), npy.data() + 10 + header, back.size() * 4);
  EXPECT_EQ(back, data);
  EXPECT_NE(cli::npy_f32({1.0f}, {1}).find("'shape': (1,)"), std::string::npos);
}

}  // namespace
}  // namespace fervid::test
