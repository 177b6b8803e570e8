// Result writers for the CLI: per-video rows as a table, CSV or JSON Lines, per-frame CSV rows.
// Files are written under a temporary name and renamed only when the run completes.
#pragma once

#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "fervid/fervid.h"

namespace fervid::cli {

enum class Format { Table, Csv, Jsonl };
Format parse_format(const std::string& text);

// An output file that appears under its name only after commit(); until then it is written as
// FILE.part, removed when the run fails unless `keep_partial` (JSON Lines output, which --resume
// continues).
class AtomicFile {
 public:
  explicit AtomicFile(std::string path, bool keep_partial = false);
  const std::string& partial_path() const { return tmp_; }
  ~AtomicFile();
  std::ostream& stream() { return out_; }
  void commit();

 private:
  std::string path_, tmp_;
  std::ofstream out_;
  bool keep_partial_ = false;
  bool committed_ = false;
};

class VideoWriter {
 public:
  // `run`: the settings that produced the rows, a member of every JSON Lines row (--resume and
  // `fervid merge` compare them). `truth_column`: eval's rows carry the true class.
  VideoWriter(std::ostream& out, Format format, std::vector<std::string> classes,
              nlohmann::json run = nullptr, bool truth_column = false);
  // The header (table and CSV) comes with the first row, or with end() when there is none, so
  // that a run that fails before its first result writes nothing.
  void row(const VideoResult& r, const std::string& truth = "");
  void end();

 private:
  std::ostream& out_;
  Format format_;
  std::vector<std::string> classes_;
  nlohmann::json run_;
  bool truth_column_;
  bool header_written_ = false;
  void header();
};

class FrameWriter {
 public:
  FrameWriter(std::ostream& out, std::vector<std::string> classes, bool logits);
  void header();
  void rows(const VideoResult& r);

 private:
  std::ostream& out_;
  std::vector<std::string> classes_;
  bool logits_;
};

// "error: <reason>" with the video's own path removed from the front of the reason.
std::string status_text(const VideoResult& r);
std::string csv_field(const std::string& s);

}  // namespace fervid::cli
