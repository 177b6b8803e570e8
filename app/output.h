// Result writers for the CLI: per-video rows as a table, CSV or JSON Lines, per-frame rows as CSV
// or JSON Lines, the format taken from the file's name. Where the bytes go (a file written under
// a temporary name and renamed when complete, a symlink's target, a pipe, standard output) is
// fervid/output_file.h's.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "fervid/fervid.h"
#include "fervid/output_file.h"

namespace fervid::cli {

enum class Format { Table, Csv, Jsonl };
Format parse_format(const std::string& text);  // table | csv | jsonl

// The format of the per-video rows: --format when given, else the output's extension (.csv;
// .jsonl or .ndjson), else the table. The table is for terminals and standard output: a regular
// file gets csv or jsonl, by name or by --format. --format and the extension disagreeing is an
// error, and so is a file whose extension says nothing without --format.
Format rows_format(const std::string& format_flag, const std::optional<OutputTarget>& output);
// The format of --frames: its extension's (.csv; .jsonl or .ndjson), else CSV.
Format frames_format(const OutputTarget& frames);

// What a row says besides the result: the true class and the RAVDESS actor under eval (empty
// and 0 otherwise).
struct RowLabel {
  std::string truth;
  int actor = 0;
};

// What the per-video rows carry beyond the vote: `eval`, the true class and the actor; `shard`,
// "K/N" of a --shard run (in every row); `shorten`, the table may cut long paths (a terminal
// only); `tracks` (--crop face), the main face track and the number of tracks.
struct VideoColumns {
  bool eval = false;
  std::string shard;
  bool shorten = false;
  bool tracks = false;
};

class VideoWriter {
 public:
  // `run`: the settings that produced the rows, a member of every JSON Lines row (--resume and
  // `fervid merge` compare them).
  VideoWriter(std::ostream& out, Format format, std::vector<std::string> classes,
              nlohmann::json run = nullptr, VideoColumns columns = {});
  // The header (table and CSV) comes with the first row, or with end() when there is none, so
  // that a run that fails before its first result writes nothing.
  void row(const VideoResult& r, const RowLabel& label = {});
  void end();

 private:
  void header();
  void table_row(const VideoResult& r, const RowLabel& l);
  void csv_row(const VideoResult& r, const RowLabel& l);
  void json_row(const VideoResult& r, const RowLabel& l);
  std::ostream& out_;
  Format format_;
  std::vector<std::string> classes_;
  nlohmann::json run_;
  VideoColumns columns_;
  bool header_written_ = false;
};

// The optional columns of the per-frame rows: the logits, eval's truth, and (--crop face) the
// track id of the face each frame's crop is around.
struct FrameColumns {
  bool logits = false, eval = false, tracks = false;
};

class FrameWriter {
 public:
  FrameWriter(std::ostream& out, Format format, std::vector<std::string> classes,
              FrameColumns columns);
  void header();
  void rows(const VideoResult& r, const RowLabel& label = {});

 private:
  void csv_row(const VideoResult& r, const FrameResult& f, const RowLabel& l);
  std::ostream& out_;
  Format format_;
  std::vector<std::string> classes_;
  FrameColumns columns_;
};

// A row's video path in JSON: "video" holds it as UTF-8, any byte that is not UTF-8 shown as
// U+FFFD; such a path also gets "video_path_hex", its exact bytes, which row_video() reads back
// (so --resume and merge know the file again). File systems allow any bytes but '/' and NUL.
void set_video(nlohmann::json& row, const std::string& path);
std::string row_video(const nlohmann::json& row);
std::optional<std::string> row_video_checked(const nlohmann::json& row);  // nullopt: damaged
// One JSON Lines line (without its newline); any text that is not UTF-8 shown as U+FFFD.
std::string json_line(const nlohmann::json& j);

// "error: <reason>" with the video's own path removed from the front of the reason.
std::string status_text(const VideoResult& r);
std::string csv_field(const std::string& s);
// `v` with `digits` decimals ("0.415"), as rows, captions and annotations print numbers.
std::string fixed(double v, int digits);

}  // namespace fervid::cli
