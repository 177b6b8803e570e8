#include "stage_lanes.h"

namespace fervid {

StageLanes::StageLanes(Backend& be, bool on) : lanes_(on ? be.lanes() : nullptr) {
  if (!lanes_) return;
  preprocessed_ = lanes_->make_fence();
  voted_ = lanes_->make_fence();
  for (auto& f : slot_read_) f = lanes_->make_fence();
  lanes_->use_lane(Lane::Vote);  // the votes of videos that end before any frame of theirs ran
}

StageLanes::~StageLanes() {
  if (lanes_) lanes_->use_lane(Lane::Network);
}

int StageLanes::next_slot() { return lanes_ ? int(batches_++ % Model::kInputSlots) : 0; }

void StageLanes::preprocess_begins(int slot) {
  if (!lanes_) return;
  lanes_->use_lane(Lane::Frames);
  lanes_->wait_for(*slot_read_[slot]);
}

void StageLanes::preprocess_ends() {
  if (lanes_) preprocessed_->record();
}

void StageLanes::frame_stage_begins() {
  if (!lanes_) return;
  lanes_->use_lane(Lane::Network);
  lanes_->wait_for(*preprocessed_);
  lanes_->wait_for(*voted_);
}

void StageLanes::frame_stage_ends(int slot) {
  if (lanes_) slot_read_[slot]->record();
}

void StageLanes::vote_begins(int slot) {
  if (!lanes_) return;
  lanes_->use_lane(Lane::Vote);
  lanes_->wait_for(*slot_read_[slot]);
}

void StageLanes::vote_ends() {
  if (lanes_) voted_->record();
}

}  // namespace fervid
