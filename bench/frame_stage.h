// The benchmarks behind `fervid bench`, as a library the CLI calls (app/bench_cmd.cpp prints
// their reports): the frame stage alone on a ready input batch, and the whole job on real files.
// Each returns a JSON report (the --json output) and what the printed tables need besides.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fervid/fervid.h"

namespace fervid::bench {

// Untrained weights for `card` (a temporary file, removed at once): the benchmarks' default.
Weights random_weights(const std::string& card);

struct Report {
  nlohmann::json json;
  bool graph_replay = false;  // the backend replays the frame stage as CUDA graphs (can, not did)
  std::string notice;         // e.g. why video is decoded on the CPU ("" when none)
};

struct FrameStageOptions {
  std::vector<int> batches{1, 8};
  int iters = 3;
  int warmup = 1;
  int gemm_size = 8192;  // the reference GEMM, where the backend has one; 0 skips it
  ConvImpl conv_impl = ConvImpl::Auto;
};

// frames/s of the frame stage (preprocessed batch -> VGG16 -> softmax) per batch size, timed
// back to back; then per-layer times from the backend's timeline (CUDA events on the GPU, a host
// clock on the CPU), the conv3x3 plans, the peak memory the backend held and, on a GPU, the rate
// of one large GEMM of the same precision measured in the same run.
Report frame_stage(Engine& engine, const FrameStageOptions& options);

// The face detector (docs/faces.md) on the engine's backend: ms per batch of letterboxed inputs
// (random values in [-1, 1]) through its layers, decoding and suppression, per batch size, and
// its time per frame as a share of the frame stage's in `frame_stage_report` at the same batch.
nlohmann::json detector_stage(Engine& engine, const std::string& detector,
                              const FrameStageOptions& options,
                              const nlohmann::json& frame_stage_report);

struct EndToEndOptions {
  std::vector<int> batches{8};
  std::vector<int> decode_threads{0};  // one run per count (0: the decoder's default)
  ClassifyOptions run;                 // sampling, crop, vote, decoder, stage streams
  bool decode_only = false;            // only the decode ceiling
  // Called as each run begins ("batch 64, 2 decode threads (3 of 6)"), for a progress line.
  std::function<void(const std::string&)> progress;
};

// The whole job on `inputs`, once per (batch, decode threads): files in, votes out. Frames/s and
// videos/s of each run, the decode-only ceiling of the same decoders and threads, and where the
// time went (RunStats): a model thread starved of frames means the run is decode-bound, a decode
// thread blocked on a full queue means it is model-bound; with stage times, each stage's share.
Report end_to_end(Engine& engine, const std::vector<InputItem>& inputs,
                  const EndToEndOptions& options);

}  // namespace fervid::bench
