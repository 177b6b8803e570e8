// fervid explain's parts that tests call: which frames are explained, the .npy writer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fervid/fervid.h"

namespace fervid::cli {

// A frame chosen to be explained: its position in VideoResult::frame_rows, its rank among the
// winner's largest probabilities (1..top; 0: not among them), and whether it is one of the
// evenly spaced frames.
struct ChosenFrame {
  size_t row = 0;
  int top_rank = 0;
  bool spaced = false;
};
// The `top` frames with the largest probability of class `cls` (ties: the earlier frame) and
// `spaced` frames evenly spread over the video (first and last included), each once, in frame
// order.
std::vector<ChosenFrame> choose_frames(const VideoResult& r, int cls, int top, int spaced);

// A NumPy .npy file (format 1.0) of little-endian float32 `data` in C order.
std::string npy_f32(const std::vector<float>& data, const std::vector<int64_t>& shape);

}  // namespace fervid::cli
