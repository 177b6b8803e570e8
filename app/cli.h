// The fervid command line: classify, eval, explain, faces, live, calibrate, merge, make-weights,
// inspect, bench.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "fervid/fervid.h"
#include "rows.h"

namespace fervid::cli {

// Exit codes: 0 success, 1 the run finished but some inputs failed (or a file does not match its
// spec), 2 usage errors and fatal errors (nothing usable was produced).
inline constexpr int kExitOk = 0;
inline constexpr int kExitSomeFailed = 1;
inline constexpr int kExitFatal = 2;

int run(int argc, char** argv);

// The options of classify and eval (eval adds the labels, filters, metrics outputs).
struct ClassifyArgs {
  std::vector<std::string> inputs;
  std::string weights, spec, device = "auto", precision, conv_impl = "auto", crop, vote, format,
                             output, frames, shard;
  std::string annotate;  // classify, eval: a video file, or a folder of one video per input
  std::string decoder = "auto";
  std::string cuda_graphs = "on", stage_streams = "on";
  int batch = 8, stride = 1, max_frames = 0, threads = 0, decode_threads = 0;
  double fps = 1.0;  // the frame rate of image folders (per-frame time_s)
  bool logits = false, quiet = false, resume = false;
  std::string labels, actors, emotions, modality, channel, summary, confusion;  // eval
};
int classify_videos(const ClassifyArgs& args, bool eval);
// Weights `fervid make-weights` wrote (metadata untrained: true): their labels mean nothing.
// Said once, after the run (a fatal error before it stays the one line on stderr).
void warn_untrained(const std::string& weights);

// classify's, eval's and explain's flags by key, for plan_of (fervid/plan.h).
OptionValues option_values(const ClassifyArgs& args);

// fervid explain: the classify options it shares, and its own.
struct ExplainArgs {
  ClassifyArgs run;
  std::string out;  // the folder written
  std::string cls;  // the class explained ("" = each video's winner)
  int top = 3, spaced = 3;
  int size = 320;  // overlay side in pixels
};
int run_explain(const ExplainArgs& args);
void check_explain_args(const ExplainArgs& args);

struct BenchOptions {
  std::string device = "cpu";
  std::string precision;
  std::string conv_impl = "auto";
  std::string cuda_graphs = "on", stage_streams = "on";
  std::string weights;
  std::string spec = "ravdess-vgg16";
  std::vector<int> batches{1, 8};
  int iters = 3;
  int warmup = 1;
  int threads = 0;
  int gemm_size = 8192;  // the reference GEMM on a GPU; 0 skips it
  std::string detector;  // the face detector's weights: also time it against the frame stage
  bool json = false;
  // --end-to-end INPUT...: the whole job (decode, preprocess, frame stage, vote) on real files.
  bool end_to_end = false;
  std::vector<std::string> inputs;
  int repeat = 1;  // the inputs, this many times over
  int stride = 1, max_frames = 0;
  std::string crop;
  std::string decoder = "auto";
  std::vector<int> decode_threads{0};  // one run per count (0: the decoder's default)
  bool decode_only = false;            // only the decode ceiling
};
int run_bench(const BenchOptions& options);
// The checks of bench's options that need no file and no device (run_bench makes them first).
void check_bench_options(const BenchOptions& options);
// The checks of classify's and eval's options that need no file (classify_videos makes them first).
void check_run_args(const ClassifyArgs& args, bool eval);

// fervid faces: each sampled frame's faces and their tracks (app/faces_cmd.cpp).
struct FacesArgs {
  std::vector<std::string> inputs;
  std::string detector, output, format;
  int stride = 1, max_frames = 0, batch = 1, threads = 0;
  bool quiet = false;
  // With --weights: each face classified, votes per track and per video (--tracks FILE).
  std::string weights, spec, device = "auto", precision, faces = "all", vote, tracks;
  double margin = -1;    // < 0: the card's face_margin (0.25 without --weights)
  std::string annotate;  // a video per input with each face's box, track id and label
  std::string shard;     // K/N: the K-th of N shares of the sorted inputs
  // Scored as eval scores: the true classes (a labels CSV, else RAVDESS names), the metrics.
  std::string labels, summary, confusion;
  bool resume = false;  // skip the videos a JSON Lines --output (and --tracks) holds, append
};
int run_faces(const FacesArgs& args);

// fervid live: live sources classified as they arrive (app/live_cmd.cpp, docs/live.md).
struct LiveArgs {
  std::vector<std::string> sources;
  std::string weights, spec, device = "auto", precision, crop, vote, output;
  std::string window = "2s";
  std::vector<std::string> source_options;  // KEY=VALUE, FFmpeg's
  std::string source_format;                // FFmpeg's -f
  double hop = 1.0, stall = 10.0, give_up = 60.0;
  int threads = 0;
  bool frames = false, quiet = false;
};
int run_live(const LiveArgs& args);
void check_live_args(const LiveArgs& args);

// fervid calibrate: int8 activation scales measured on the user's frames, written with a copy of
// the weights (app/calibrate_cmd.cpp, docs/int8.md).
struct CalibrateArgs {
  std::vector<std::string> inputs;
  std::string weights, spec, out, crop;
  int frames = 256, stride = 1, threads = 0;
  bool quiet = false;
};
int run_calibrate(const CalibrateArgs& args);
void check_calibrate_args(const CalibrateArgs& args);

// A command line, parsed: the command and its options. run() = parse_command_line, then the
// command; the CLI's fuzz target (tests/fuzz/) parses and checks without running.
struct CommandLine {
  // classify | eval | explain | faces | live | calibrate | merge | make-weights | inspect | bench
  std::string command;
  ClassifyArgs run;  // classify, eval
  MergeArgs merge;
  BenchOptions bench;
  ExplainArgs explain;
  FacesArgs faces;
  LiveArgs live;
  CalibrateArgs calibrate;
  uint64_t seed = 0;  // make-weights
  std::string weights_out, weights_spec = "ravdess-vgg16", weights_dtype = "f32";
  std::string inspect_path, inspect_spec;
};
// -1 when a command is to run; else the exit code, after printing the help, the version or a
// one-line usage error.
int parse_command_line(int argc, char** argv, CommandLine& cl);
// Throws fervid::Error for a parsed command line whose options cannot be used.
void check_command_line(const CommandLine& cl);

}  // namespace fervid::cli
