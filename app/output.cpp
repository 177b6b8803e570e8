#include "output.h"

#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>

#include "fervid/error.h"

namespace fervid::cli {

Format parse_format(const std::string& text) {
  if (text == "table") return Format::Table;
  if (text == "csv") return Format::Csv;
  if (text == "jsonl") return Format::Jsonl;
  fail("--format " + text + ": expected table, csv or jsonl");
}

AtomicFile::AtomicFile(std::string path, bool keep_partial)
    : path_(std::move(path)), tmp_(path_ + ".part"), keep_partial_(keep_partial) {
  out_.open(tmp_, std::ios::trunc);
  if (!out_) fail(path_ + ": cannot write (" + tmp_ + ")");
}

AtomicFile::~AtomicFile() {
  if (!committed_) {
    out_.close();
    if (!keep_partial_) std::remove(tmp_.c_str());
  }
}

void AtomicFile::commit() {
  out_.flush();
  if (!out_) fail(path_ + ": writing failed (disk full?)");
  out_.close();
  std::error_code ec;
  std::filesystem::rename(tmp_, path_, ec);
  if (ec) fail(path_ + ": cannot rename the finished file into place: " + ec.message());
  committed_ = true;
}

std::string status_text(const VideoResult& r) {
  if (r.ok()) return "ok";
  std::string reason = r.error;
  if (reason.rfind(r.path + ": ", 0) == 0) reason = reason.substr(r.path.size() + 2);
  return "error: " + reason;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

namespace {

std::string fixed(double v, int digits) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

}  // namespace

VideoWriter::VideoWriter(std::ostream& out, Format format, std::vector<std::string> classes,
                         nlohmann::json run, bool truth_column)
    : out_(out),
      format_(format),
      classes_(std::move(classes)),
      run_(std::move(run)),
      truth_column_(truth_column) {}

void VideoWriter::end() {
  if (!header_written_) header();
}

void VideoWriter::header() {
  header_written_ = true;
  if (format_ == Format::Table) {
    out_ << std::left << std::setw(40) << "video"
         << " " << std::right << std::setw(7) << "frames"
         << "  " << std::left << std::setw(10) << "label";
    if (truth_column_) out_ << " " << std::setw(10) << "truth";
    out_ << " " << std::right << std::setw(6) << "p"
         << " " << std::setw(11) << "votes"
         << "  "
         << "status\n";
  } else if (format_ == Format::Csv) {
    out_ << "video,frames,label," << (truth_column_ ? "truth," : "") << "vote";
    for (const auto& c : classes_) out_ << ",count_" << c;
    for (const auto& c : classes_) out_ << ",p_" << c;
    out_ << ",status,warning\n";
  }
  out_.flush();
}

void VideoWriter::row(const VideoResult& r, const std::string& truth) {
  if (!header_written_) header();
  const std::string label = r.ok() ? classes_.at(r.label) : "";
  if (format_ == Format::Table) {
    std::string path = r.path.size() > 40 ? "..." + r.path.substr(r.path.size() - 37) : r.path;
    std::string p = r.ok() ? fixed(r.mean_probs[r.label], 3) : "-";
    std::string votes =
        r.ok() ? std::to_string(r.counts[r.label]) + "/" + std::to_string(r.frames) : "-";
    out_ << std::left << std::setw(40) << path << " " << std::right << std::setw(7) << r.frames
         << "  " << std::left << std::setw(10) << (r.ok() ? label : "-");
    if (truth_column_) out_ << " " << std::setw(10) << truth;
    out_ << " " << std::right << std::setw(6) << p << " " << std::setw(11) << votes << "  "
         << status_text(r) << (r.warning.empty() ? "" : " (" + r.warning + ")") << "\n";
  } else if (format_ == Format::Csv) {
    out_ << csv_field(r.path) << "," << r.frames << "," << label << ","
         << (truth_column_ ? csv_field(truth) + "," : "") << vote_name(r.vote);
    for (size_t j = 0; j < classes_.size(); ++j)
      out_ << "," << (r.ok() ? std::to_string(r.counts[j]) : "");
    for (size_t j = 0; j < classes_.size(); ++j)
      out_ << "," << (r.ok() ? fixed(r.mean_probs[j], 6) : "");
    out_ << "," << csv_field(status_text(r)) << "," << csv_field(r.warning) << "\n";
  } else {
    nlohmann::json j{{"video", r.path},
                     {"frames", r.frames},
                     {"label", r.ok() ? nlohmann::json(label) : nlohmann::json(nullptr)},
                     {"vote", vote_name(r.vote)},
                     {"status", status_text(r)}};
    if (truth_column_) j["truth"] = truth;
    if (!r.warning.empty()) j["warning"] = r.warning;
    if (r.ok()) {
      nlohmann::json counts = nlohmann::json::object(), probs = nlohmann::json::object();
      for (size_t k = 0; k < classes_.size(); ++k) {
        counts[classes_[k]] = r.counts[k];
        probs[classes_[k]] = r.mean_probs[k];
      }
      j["counts"] = counts;
      j["mean_probs"] = probs;
      j["crop"] = {r.crop.x, r.crop.y, r.crop.width, r.crop.height};
    }
    if (!run_.is_null()) j["run"] = run_;
    out_ << j.dump() << "\n";
  }
  out_.flush();
}

FrameWriter::FrameWriter(std::ostream& out, std::vector<std::string> classes, bool logits)
    : out_(out), classes_(std::move(classes)), logits_(logits) {}

void FrameWriter::header() {
  out_ << "video,frame,time_s,label";
  for (const auto& c : classes_) out_ << ",p_" << c;
  if (logits_)
    for (const auto& c : classes_) out_ << ",logit_" << c;
  out_ << "\n";
}

void FrameWriter::rows(const VideoResult& r) {
  char buf[32];
  for (const FrameResult& f : r.frame_rows) {
    std::snprintf(buf, sizeof(buf), ",%.6f,", f.time_s);
    out_ << csv_field(r.path) << "," << f.frame_index << buf << classes_.at(f.label);
    for (float p : f.probs) {
      std::snprintf(buf, sizeof(buf), ",%.9g", p);
      out_ << buf;
    }
    for (float l : f.logits) {
      std::snprintf(buf, sizeof(buf), ",%.9g", l);
      out_ << buf;
    }
    out_ << "\n";
  }
}

}  // namespace fervid::cli
