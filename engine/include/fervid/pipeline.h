// Classifier: decode (a producer thread) -> batches packing frames of several videos -> model ->
// per-frame softmax/argmax -> per-video vote. A video longer than a batch accumulates its votes
// across batches; a video that fails to decode becomes an error result and the run goes on.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "fervid/model.h"
#include "fervid/video.h"

namespace fervid {

// --crop full | center | box=x,y,w,h | face | boxes=FILE
struct CropSpec {
  enum class Mode { Full, Center, Box, Face, Boxes } mode = Mode::Full;
  CropRect box;
  // face: the face found on the first kFaceProbeFrames sampled frames of each video (one in
  // kFaceProbeStep searched), widened by `margin` of its size on every side; the centre crop,
  // with a warning in the video's row, when none is found.
  double margin = 0.25;
  static constexpr int kFaceProbeFrames = 24, kFaceProbeStep = 4;
  // boxes=FILE: a CSV of path,x,y,w,h (header optional, paths relative to the CSV's folder),
  // keyed by canonical_path(); a video it does not list fails with an error row.
  std::string boxes_file;
  std::shared_ptr<const std::map<std::string, CropRect>> boxes;

  static CropSpec parse(const std::string& text);
  // The rectangle for a width x height frame (full, center, box); throws when a box lies outside.
  CropRect rect_for(int width, int height) const;
};

struct ClassifyOptions {
  int batch = 8;
  SamplingOptions sampling;
  CropSpec crop;
  VoteMode vote = VoteMode::Confidence;
  bool keep_frames = false;  // per-frame rows
  bool keep_logits = false;
  int queue_frames = 0;  // decoded frames buffered ahead of the model; 0 = 2 batches
  DecoderKind decoder = DecoderKind::Cpu;  // choose_decoder()
  // Decode threads, each with its own long-lived decoder; 0 = 1 on the CPU (libavcodec has
  // threads of its own), Classifier::kNvdecThreads with NVDEC.
  int decode_threads = 0;
  // Time the model thread's device stages (RunStats::preprocess_s ...): a time stamp before and
  // after each stage of a batch, on the stage's lane, read every few batches (the benchmark's
  // stage shares).
  bool stage_times = false;
  // On a backend with lanes (CUDA): preprocess, frame stage and vote on lanes of their own, so that
  // a batch's preprocess and vote overlap its neighbours' frame stages; off runs them in order
  // on one stream (for comparison).
  bool stage_streams = true;
};

struct FrameResult {
  int64_t frame_index = 0;
  int label = 0;
  std::vector<float> probs;
  std::vector<float> logits;  // only with keep_logits
};

struct VideoResult {
  std::string path;
  int64_t frames = 0;
  int label = -1;
  VoteMode vote = VoteMode::Confidence;
  std::vector<int64_t> counts;     // frames per class label
  std::vector<double> mean_probs;  // mean frame probability per class
  std::string error;               // empty when ok
  std::string warning;             // e.g. no face found (the centre crop was used)
  CropRect crop;                   // the crop of its first frame
  std::vector<FrameResult> frame_rows;
  bool ok() const { return error.empty(); }
};

struct RunStats {
  int64_t frames = 0;
  int videos_ok = 0;
  int videos_failed = 0;
  double seconds = 0;
  // Where the time went (wall seconds): the decode thread decoding (and detecting faces) and
  // blocked on a full queue; the model thread running batches (preprocess, frame stage, vote,
  // copies back) and starved on an empty queue. Starved ~ decode-bound, blocked ~ model-bound.
  // With several decode threads, decode_s and decode_blocked_s are per thread on average.
  double decode_s = 0, decode_blocked_s = 0, model_s = 0, model_starved_s = 0;
  int decode_threads = 1;
  // With ClassifyOptions::stage_times: the backend's time (device time on CUDA) in each stage of
  // the batches, summed: upload + preprocess, frame stage (the network), vote.
  bool staged = false;
  double preprocess_s = 0, frame_stage_s = 0, vote_s = 0;
};

class Classifier {
 public:
  // NVDEC decode threads unless told: the H100 has 7 NVDEC engines; 4 is not measured yet.
  static constexpr int kNvdecThreads = 4;
  Classifier(Model& model, ClassifyOptions options);
  int decode_threads() const;
  // Results arrive in input order, one call per input.
  RunStats run(const std::vector<InputItem>& inputs,
               const std::function<void(const VideoResult&)>& on_video);
  // The decode stage alone, as run() drives it (threads, decoders, NVDEC frame pool), its
  // frames dropped: the decode ceiling of the run.
  RunStats decode_only(const std::vector<InputItem>& inputs);

 private:
  Model& model_;
  ClassifyOptions options_;
};

}  // namespace fervid
