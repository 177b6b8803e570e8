// What a classify run takes (ClassifyOptions) and gives (a VideoResult per input, in input
// order, each with its FrameResults on request, and the RunStats of the run).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fervid/crop.h"
#include "fervid/model_spec.h"
#include "fervid/options.h"

namespace fervid {

struct SamplingOptions {
  int stride = 1;      // keep every stride-th frame
  int max_frames = 0;  // 0 = no cap
  // Video frames decoded as 8-bit 4:2:0 (BT.601/709) stay YUV for a backend that converts them
  // itself (Backend::preprocess_yuv420): no CPU colour conversion, half the bytes to upload.
  // Other formats, and images, are RGB as always. The classifier sets it for a backend that
  // prefers YUV frames (the CUDA backend).
  bool keep_yuv = false;
  // The frame rate of inputs without time stamps (image folders, frames in memory): frame i is
  // at i / fps seconds. Videos carry their own (the stream's presentation times).
  double fps = 1.0;
};

struct ClassifyOptions {
  int batch = 8;
  SamplingOptions sampling;
  CropSpec crop;
  VoteMode vote = VoteMode::Confidence;
  bool keep_frames = false;  // per-frame rows
  bool keep_logits = false;
  int queue_frames = 0;  // decoded frames buffered ahead of the model; 0 = 2 batches
  // Where videos are decoded; auto: NVDEC when the backend reads frames in device memory and
  // the driver has it, else the CPU (the run's notice says why).
  DecoderChoice decoder = DecoderChoice::Auto;
  // Decode threads (0..64), each taking clip after clip; 0 = 1 with the CPU backend (the
  // network limits the rate), 4 with a GPU backend (NVDEC or CPU decoding).
  int decode_threads = 0;
  // Time the model thread's device stages (RunStats::preprocess_s ...): a time stamp before and
  // after each stage of a batch, on the stage's lane, read every few batches (the benchmark's
  // stage shares).
  bool stage_times = false;
  // On a backend with lanes (CUDA): preprocess, frame stage and vote on lanes of their own, so
  // that a batch's preprocess and vote overlap its neighbours' frame stages; off runs them in
  // order on one stream (for comparison).
  bool stage_streams = true;
};

// Fails with one line (OptionError) on an option a run cannot take: batch outside 1..max_batch,
// stride < 1, max_frames < 0, fps <= 0, decode threads outside 0..64. The Classifier checks its
// options with it; a program may call it before it makes an Engine, to fail early.
void check_classify_options(const ClassifyOptions& options, int max_batch);

struct FrameResult {
  int64_t frame_index = 0;  // its position in the source, before sampling
  double time_s = 0;        // its presentation time (SamplingOptions::fps for images)
  CropRect crop;            // the crop taken from it
  int track = 0;            // --crop face: the track id of the face cropped (0: none found)
  int label = 0;
  std::vector<float> probs;
  std::vector<float> logits;  // only with keep_logits
};

// The reason of a video whose class probabilities are not finite numbers on some frame (NaN or
// Inf): its row is an error, never a label.
inline constexpr const char* kNotFinite =
    "the network's output is not a finite number (NaN or Inf) on some frames: the weights or the "
    "card's preprocess overflow float32";

struct VideoResult {
  std::string path;
  int64_t frames = 0;  // frames used (sampled and classified)
  // The source: frames decoded (a video's, before the stride; the images read), its frame rate
  // and duration (the stream's; images: --fps and their count / fps).
  int64_t frames_decoded = 0;
  double fps = 0, duration_s = 0;
  int label = -1;
  VoteMode vote = VoteMode::Confidence;
  std::vector<int64_t> counts;     // frames per class label
  std::vector<double> mean_probs;  // mean frame probability per class
  std::string error;               // empty when ok
  std::string warning;             // e.g. no face found (the centre crop was used)
  CropRect crop;                   // the crop of its first frame
  // --crop face: how many face tracks its crops were taken around, and the main one (cropped
  // on most frames, the lower id on a tie; 0: no face found).
  int face_tracks = 0, main_track = 0;
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

}  // namespace fervid
