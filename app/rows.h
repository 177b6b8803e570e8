// The JSON Lines rows of classify and eval (--format jsonl): read back for --resume and merge,
// compared by the settings that produced them, joined across shards and scored.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "metrics.h"

namespace fervid::cli {

// Which weights produced a row, cheaply: FNV-1a (64 bits) over the file's 64-bit words (and its
// last bytes), read once in 1 MiB blocks; 16 hex digits.
std::string file_fingerprint(const std::string& path);

// The rows of a JSON Lines output. A last line cut short by a killed run is dropped.
std::vector<nlohmann::json> read_rows(const std::string& path);

// The complete lines of a file: a last line without its newline was cut short by a kill and is
// left out.
std::vector<std::string> complete_lines(const std::string& path);

// Whether a JSON Lines output is `fervid faces`'s (its first row is a face row, or a video's
// closing row of a faces run), which merge joins by video.
bool is_faces_output(const std::string& path);

// "" when equal, else the first setting that differs, as "KEY OLD, this run has NEW".
std::string run_mismatch(const nlohmann::json& had, const nlohmann::json& now);

// An eval row (JSON Lines) as EvalRow: the truth from its "truth" (or `truth` when given), the
// prediction and counts when its status is ok.
scoring::EvalRow eval_row(const nlohmann::json& row, const std::vector<std::string>& classes,
                          int truth = -1, int actor = 0);

struct MergeArgs {
  std::vector<std::string> inputs;
  std::string output, summary, confusion;
  bool quiet = false;
};
// fervid merge: shard outputs (JSON Lines) -> one output sorted by video path. Shards must be
// complete (every K of K/N, one N) and of one run; eval rows (with their truth) are scored as
// eval scores, the metrics on stdout (stderr when the rows go there) and --summary, --confusion.
int merge_outputs(const MergeArgs& args);

}  // namespace fervid::cli
