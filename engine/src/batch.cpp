#include "batch.h"

#include "fervid/error.h"

namespace fervid {

Batch::Batch(int capacity) : capacity_(capacity) {
  frames_.reserve(size_t(capacity));
  crops_.reserve(size_t(capacity));
  videos_.reserve(size_t(capacity));
  tracks_.reserve(size_t(capacity));
}

void Batch::add(int video, Frame frame, const CropRect& crop, int track) {
  if (full()) fail("internal error: a frame added to a full batch");
  frames_.push_back(std::move(frame));
  crops_.push_back(crop);
  videos_.push_back(video);
  tracks_.push_back(track);
}

std::vector<Segment> Batch::segments(const std::function<int(int video)>& slot_of) const {
  std::vector<Segment> segments;
  for (int i = 0; i < size(); ++i) {
    if (i > 0 && videos_[i] == videos_[i - 1]) {
      ++segments.back().count;
    } else {
      segments.push_back({i, 1, slot_of(videos_[i])});
    }
  }
  return segments;
}

void Batch::clear() {
  frames_.clear();
  crops_.clear();
  videos_.clear();
  tracks_.clear();
}

}  // namespace fervid
