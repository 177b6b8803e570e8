// The order of a batch's three stages when they run on lanes of their own (Lanes: the CUDA
// backend's streams). Batch k is preprocessed (Frames lane) into input slot k % 2 once the frame
// stage that last read that slot is done; its frame stage (Network lane) waits for that
// preprocess and for the previous batch's vote (which read the probabilities the frame stage
// overwrites); its vote (Vote lane) waits for its frame stage. Finalizing and the copies back
// stay on the Vote lane. Off (stage streams off, or a backend without Lanes), every stage runs
// in order on input slot 0 and nothing here touches the backend.
#pragma once

#include <memory>

#include "backends/backend.h"
#include "model.h"

namespace fervid {

class StageLanes {
 public:
  StageLanes(Backend& be, bool on);
  ~StageLanes();  // back on the Network lane, where every op starts
  StageLanes(const StageLanes&) = delete;
  StageLanes& operator=(const StageLanes&) = delete;

  bool on() const { return lanes_ != nullptr; }
  // The input slot of the next batch.
  int next_slot();
  // Each stage of a batch between its begin and its end, in this order.
  void preprocess_begins(int slot);
  void preprocess_ends();
  void frame_stage_begins();
  void frame_stage_ends(int slot);
  void vote_begins(int slot);
  void vote_ends();

 private:
  Lanes* lanes_;
  std::unique_ptr<Fence> preprocessed_, voted_, slot_read_[Model::kInputSlots];
  int64_t batches_ = 0;
};

}  // namespace fervid
