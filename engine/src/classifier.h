// Classifier: decode (producer threads) -> batches packing frames of several videos -> model ->
// per-frame softmax/argmax -> per-video vote. A video longer than a batch accumulates its votes
// across batches; a video that fails to decode becomes an error result and the run goes on.
// The parts, each testable alone: DecodeStage (decode_stage.h), Batch (batch.h), VideoBook
// (video_book.h), VoteTable (vote_table.h), StageLanes (stage_lanes.h).
#pragma once

#include <functional>
#include <stop_token>
#include <string>
#include <vector>

#include "fervid/inputs.h"
#include "fervid/run.h"
#include "model.h"
#include "video.h"

namespace fervid {

class Classifier {
 public:
  // Decode threads for a GPU backend unless told: the H100 has 7 NVDEC engines; 4 is not
  // measured yet.
  static constexpr int kGpuDecodeThreads = 4;
  // Checks the options against the model (check_classify_options) and chooses the decoder
  // (choose_decoder), each failing with one line.
  Classifier(Model& model, ClassifyOptions options);
  int decode_threads() const;
  DecoderKind decoder() const { return decoder_; }
  // Why auto decodes on the CPU ("" when it takes NVDEC or the CPU was asked for).
  const std::string& decoder_notice() const { return decoder_notice_; }
  // Results arrive in input order, one call per input. When `stop` is requested the run ends
  // at its next decoded frame and throws Cancelled.
  RunStats run(const std::vector<InputItem>& inputs,
               const std::function<void(const VideoResult&)>& on_video, std::stop_token stop = {});
  // The decode stage alone, as run() drives it (threads, decoders, NVDEC frame pool), its
  // frames dropped: the decode ceiling of the run.
  RunStats decode_only(const std::vector<InputItem>& inputs);

 private:
  Model& model_;
  ClassifyOptions options_;
  DecoderKind decoder_ = DecoderKind::Cpu;
  std::string decoder_notice_;
};

}  // namespace fervid
