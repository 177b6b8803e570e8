// A batch being assembled: decoded frames of one or more videos, each with its crop and the video
// it belongs to, in the order they came. The frames of one video that follow each other form a
// Segment, the unit the vote kernel adds to a video's tallies.
#pragma once

#include <functional>
#include <span>
#include <vector>

#include "fervid/frame.h"
#include "video.h"

namespace fervid {

class Batch {
 public:
  explicit Batch(int capacity);
  // `track`: the tracked face the crop is around (--crop face), 0 for none.
  void add(int video, Frame frame, const CropRect& crop, int track = 0);
  int size() const { return int(frames_.size()); }
  bool empty() const { return frames_.empty(); }
  bool full() const { return size() == capacity_; }
  std::span<const Frame> frames() const { return frames_; }
  std::span<const CropRect> crops() const { return crops_; }
  std::span<const int> videos() const { return videos_; }  // the video of each frame
  std::span<const int> tracks() const { return tracks_; }
  // The runs of consecutive frames of one video, each with the vote slot `slot_of(video)`.
  std::vector<Segment> segments(const std::function<int(int video)>& slot_of) const;
  void clear();

 private:
  int capacity_;
  std::vector<Frame> frames_;
  std::vector<CropRect> crops_;
  std::vector<int> videos_, tracks_;
};

}  // namespace fervid
