// Result writers for the CLI: per-video rows as a table, CSV or JSON Lines, per-frame CSV rows.
// Files are written under a temporary name and renamed only when the run completes.
#pragma once

#include <cstdio>
#include <fstream>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "fervid/pipeline.h"

namespace fervid::cli {

enum class Format { Table, Csv, Jsonl };
Format parse_format(const std::string& text);

// An output file that appears under its name only after commit(); otherwise it is removed.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  std::ostream& stream() { return out_; }
  void commit();

 private:
  std::string path_, tmp_;
  std::ofstream out_;
  bool committed_ = false;
};

class VideoWriter {
 public:
  VideoWriter(std::ostream& out, Format format, std::vector<std::string> classes);
  void header();
  void row(const VideoResult& r);

 private:
  std::ostream& out_;
  Format format_;
  std::vector<std::string> classes_;
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
