// The JSON Lines rows of classify and eval (--format jsonl): read back for --resume and merge,
// compared by the settings that produced them, joined across shards.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace fervid::cli {

// Which weights produced a row, cheaply: FNV-1a (64 bits) over the file's 64-bit words (and its
// last bytes), read once in 1 MiB blocks; 16 hex digits.
std::string file_fingerprint(const std::string& path);

// The rows of a JSON Lines output. A last line cut short by a killed run is dropped.
std::vector<nlohmann::json> read_rows(const std::string& path);

// "" when equal, else the first setting that differs, as "KEY OLD, this run has NEW".
std::string run_mismatch(const nlohmann::json& had, const nlohmann::json& now);

// Writes `text` to `path` through PATH.part, renamed when complete.
void write_file(const std::string& path, const std::string& text);

// fervid merge: shard outputs (JSON Lines) -> one output sorted by video path.
int merge_outputs(const std::string& output, const std::vector<std::string>& inputs);

}  // namespace fervid::cli
