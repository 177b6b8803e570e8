// The per-video vote of a run, on the backend: `slots` rows of per-class label counts (i32) and
// probability sums (f64), one per video whose frames are still coming; accumulate() adds a
// batch's frames to their videos' rows. A video's vote is finalized on the device and its result
// copied back without the host waiting: finalize() queues both (and frees the video's slot at
// once, since the finalize clears it on the device); collect() waits for what was queued and
// returns it, normally a batch later, when the device is long done. At most `slots` results are
// on their way at once: finalize() gathers the earlier ones first when more would be, and the
// next collect() returns them too.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "backends/backend.h"

namespace fervid {

// A video whose frames are all in its slot.
struct Finished {
  int video = 0;
  int slot = 0;
};

// The vote of a finished video: the winner by the table's VoteMode, its per-class label counts
// and probability sums.
struct VoteOutcome {
  int video = 0;
  int winner = -1;
  std::vector<int64_t> counts;
  std::vector<double> sums;
};

class VoteTable {
 public:
  VoteTable(Backend& be, int slots, int classes, VoteMode mode);
  int slots() const { return slots_; }
  // A free slot for a new video (its rows are zero); fails with an internal error when none is.
  int take_slot();
  // Adds probs [n, C] and labels [n] into the slots the segments name (on the current lane).
  void accumulate(const Tensor& probs, const Tensor& labels, std::span<const Segment> segments);
  // Finalizes the videos' votes and queues their results' copy back (on the current lane);
  // their slots are free from now on.
  void finalize(std::span<const Finished> videos);
  // Waits for every result queued so far and returns them, in the order they were finalized.
  std::vector<VoteOutcome> collect();

 private:
  // Results queued by one finalize(): rows [row, row + videos.size()) of the result buffers,
  // landed in host memory once `landed` is done (no fence: landed when queued).
  struct Pending {
    std::vector<int> videos;
    int row = 0;
    std::unique_ptr<Fence> landed;
  };
  void land();  // waits for every Pending and moves its results to landed_

  Backend& be_;
  int slots_, classes_;
  VoteMode mode_;
  Buffer counts_buf_, sums_buf_;
  Tensor counts_, sums_;
  Buffer winners_buf_, out_counts_buf_, out_sums_buf_;
  Tensor winners_, out_counts_, out_sums_;
  Buffer host_winners_, host_counts_, host_sums_;
  std::vector<int> free_slots_;
  int rows_used_ = 0;
  std::vector<Pending> pending_;
  std::vector<VoteOutcome> landed_;
};

}  // namespace fervid
