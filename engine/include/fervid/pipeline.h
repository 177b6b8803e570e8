// Classifier: decode (a producer thread) -> batches packing frames of several videos -> model ->
// per-frame softmax/argmax -> per-video vote. A video longer than a batch accumulates its votes
// across batches; a video that fails to decode becomes an error result and the run goes on.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "fervid/model.h"
#include "fervid/video.h"

namespace fervid {

// --crop full | center | box=x,y,w,h
struct CropSpec {
  enum class Mode { Full, Center, Box } mode = Mode::Full;
  CropRect box;
  static CropSpec parse(const std::string& text);
  // The rectangle for a width x height frame; throws when a box lies outside the frame.
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
  std::vector<FrameResult> frame_rows;
  bool ok() const { return error.empty(); }
};

struct RunStats {
  int64_t frames = 0;
  int videos_ok = 0;
  int videos_failed = 0;
  double seconds = 0;
};

class Classifier {
 public:
  Classifier(Model& model, ClassifyOptions options);
  // Results arrive in input order, one call per input.
  RunStats run(const std::vector<InputItem>& inputs,
               const std::function<void(const VideoResult&)>& on_video);

 private:
  Model& model_;
  ClassifyOptions options_;
};

}  // namespace fervid
