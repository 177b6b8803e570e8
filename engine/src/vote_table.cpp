#include "vote_table.h"

#include <utility>

#include "fervid/error.h"

namespace fervid {

VoteTable::VoteTable(Backend& be, int slots, int classes, VoteMode mode)
    : be_(be), slots_(slots), classes_(classes), mode_(mode) {
  const size_t cells = size_t(slots) * size_t(classes);
  counts_buf_ = be.allocate(cells * 4);
  sums_buf_ = be.allocate(cells * 8);
  counts_ = Tensor::view(counts_buf_, {slots, classes}, DType::I32);
  sums_ = Tensor::view(sums_buf_, {slots, classes}, DType::F64);
  {
    std::vector<int32_t> zc(cells, 0);
    std::vector<double> zs(cells, 0.0);
    be.copy_from_host(counts_, zc.data());
    be.copy_from_host(sums_, zs.data());
  }
  // The results of finished videos: `slots` rows on the device and in host memory the device
  // copies into, planned once per run.
  winners_buf_ = be.allocate(size_t(slots) * 4);
  out_counts_buf_ = be.allocate(cells * 4);
  out_sums_buf_ = be.allocate(cells * 8);
  winners_ = Tensor::view(winners_buf_, {slots}, DType::I32);
  out_counts_ = Tensor::view(out_counts_buf_, {slots, classes}, DType::I32);
  out_sums_ = Tensor::view(out_sums_buf_, {slots, classes}, DType::F64);
  host_winners_ = be.allocate_host(size_t(slots) * 4);
  host_counts_ = be.allocate_host(cells * 4);
  host_sums_ = be.allocate_host(cells * 8);
  for (int s = slots - 1; s >= 0; --s) free_slots_.push_back(s);
}

int VoteTable::take_slot() {
  if (free_slots_.empty()) fail("internal error: no free vote slot");
  const int slot = free_slots_.back();
  free_slots_.pop_back();
  return slot;
}

void VoteTable::accumulate(const Tensor& probs, const Tensor& labels,
                           std::span<const Segment> segments) {
  be_.vote_accumulate(probs, labels, segments, counts_, sums_);
}

void VoteTable::finalize(std::span<const Finished> videos) {
  if (videos.empty()) return;
  const int n = int(videos.size());
  if (rows_used_ + n > slots_) land();
  std::vector<int> slot_list;
  Pending p;
  p.row = rows_used_;
  for (const Finished& f : videos) {
    slot_list.push_back(f.slot);
    p.videos.push_back(f.video);
  }
  const Tensor winners = winners_.slice(rows_used_, n),
               out_counts = out_counts_.slice(rows_used_, n),
               out_sums = out_sums_.slice(rows_used_, n);
  be_.vote_finalize(counts_, sums_, slot_list, mode_, winners, out_counts, out_sums);
  const size_t row = size_t(rows_used_);
  be_.copy_to_host_async(static_cast<int32_t*>(host_winners_.data()) + row, winners);
  be_.copy_to_host_async(static_cast<int32_t*>(host_counts_.data()) + row * classes_, out_counts);
  be_.copy_to_host_async(static_cast<double*>(host_sums_.data()) + row * classes_, out_sums);
  if (Lanes* lanes = be_.lanes()) {
    p.landed = lanes->make_fence();
    p.landed->record();
  }
  rows_used_ += n;
  for (const Finished& f : videos) free_slots_.push_back(f.slot);
  pending_.push_back(std::move(p));
}

void VoteTable::land() {
  for (Pending& p : pending_) {
    if (p.landed) p.landed->wait();
    for (size_t i = 0; i < p.videos.size(); ++i) {
      const size_t row = size_t(p.row) + i;
      const auto* c = static_cast<const int32_t*>(host_counts_.data()) + row * classes_;
      const auto* s = static_cast<const double*>(host_sums_.data()) + row * classes_;
      VoteOutcome o;
      o.video = p.videos[i];
      o.winner = static_cast<const int32_t*>(host_winners_.data())[row];
      o.counts.assign(c, c + classes_);
      o.sums.assign(s, s + classes_);
      landed_.push_back(std::move(o));
    }
  }
  pending_.clear();
  rows_used_ = 0;
}

std::vector<VoteOutcome> VoteTable::collect() {
  land();
  return std::exchange(landed_, {});
}

}  // namespace fervid
