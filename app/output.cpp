#include "output.h"

#include <cstdio>
#include <iomanip>
#include <sstream>

#include "fervid/error.h"

namespace fervid::cli {

Format parse_format(const std::string& text) {
  if (text == "table") return Format::Table;
  if (text == "csv") return Format::Csv;
  if (text == "jsonl") return Format::Jsonl;
  fail_option("--format " + text + ": expected table, csv or jsonl");
}

namespace {

// The format an extension names, if any.
std::optional<Format> format_of(const std::string& extension) {
  if (extension == ".csv") return Format::Csv;
  if (extension == ".jsonl" || extension == ".ndjson") return Format::Jsonl;
  return std::nullopt;
}

const char* format_text(Format f) {
  return f == Format::Csv ? "csv" : f == Format::Jsonl ? "jsonl" : "table";
}

}  // namespace

Format rows_format(const std::string& format_flag, const std::optional<OutputTarget>& output) {
  const std::optional<Format> asked =
      format_flag.empty() ? std::nullopt : std::optional(parse_format(format_flag));
  if (!output || output->kind() == OutputTarget::Kind::Stdout) return asked.value_or(Format::Table);
  const std::string named = "--output " + output->path() + ": ";
  const std::optional<Format> by_name = format_of(output->extension());
  if (asked && by_name && *asked != *by_name)
    fail_option(named + "its name says " + format_text(*by_name) + ", --format says " +
                format_text(*asked));
  const std::optional<Format> f = asked ? asked : by_name;
  if (output->kind() == OutputTarget::Kind::Stream) return f.value_or(Format::Table);
  if (!f)
    fail_option(named + "name it .csv or .jsonl (or give --format csv|jsonl) to say its format");
  if (*f == Format::Table)
    fail_option(named + "the table is for terminals; write files as csv or jsonl");
  return *f;
}

Format frames_format(const OutputTarget& frames) {
  return format_of(frames.extension()).value_or(Format::Csv);
}

std::string status_text(const VideoResult& r) {
  if (r.ok()) return "ok";
  std::string reason = r.error;
  if (reason.rfind(r.path + ": ", 0) == 0) reason = reason.substr(r.path.size() + 2);
  return "error: " + reason;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

namespace {

bool is_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    int more = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xe ? 2 : (c >> 3) == 0x1e ? 3 : -1;
    if (more < 0 || i + size_t(more) >= s.size()) return false;
    const uint32_t lead = more == 0 ? c : c & (0x3f >> more);
    uint32_t cp = lead;
    for (int k = 1; k <= more; ++k) {
      const auto b = static_cast<unsigned char>(s[i + size_t(k)]);
      if ((b >> 6) != 0x2) return false;
      cp = (cp << 6) | (b & 0x3f);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[more] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += size_t(more) + 1;
  }
  return true;
}

}  // namespace

void set_video(nlohmann::json& row, const std::string& path) {
  row["video"] = path;
  if (is_utf8(path)) return;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : path) hex += {kHex[c >> 4], kHex[c & 15]};
  row["video_path_hex"] = hex;
}

std::optional<std::string> row_video_checked(const nlohmann::json& row) {
  const auto video = row.find("video");
  if (video == row.end() || !video->is_string()) return std::nullopt;
  const auto hex = row.find("video_path_hex");
  if (hex == row.end()) return video->get<std::string>();
  if (!hex->is_string()) return std::nullopt;
  const std::string& h = hex->get_ref<const std::string&>();
  auto digit = [](char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
  };
  std::string path;
  for (size_t i = 0; i < h.size(); i += 2) {
    const int hi = digit(h[i]), lo = i + 1 < h.size() ? digit(h[i + 1]) : -1;
    if (hi < 0 || lo < 0) return std::nullopt;
    path += char(hi * 16 + lo);
  }
  if (path.empty() || path.find('\0') != std::string::npos) return std::nullopt;
  return path;
}

std::string row_video(const nlohmann::json& row) {
  std::optional<std::string> v = row_video_checked(row);
  if (!v) fail("a row's video path is damaged");
  return *v;
}

std::string json_line(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string fixed(double v, int digits) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

namespace {

// Seconds and frame rates as a person reads them (6 decimals; ffprobe prints times so).
std::string seconds(double v) { return fixed(v, 6); }

}  // namespace

VideoWriter::VideoWriter(std::ostream& out, Format format, std::vector<std::string> classes,
                         nlohmann::json run, VideoColumns columns)
    : out_(out),
      format_(format),
      classes_(std::move(classes)),
      run_(std::move(run)),
      columns_(std::move(columns)) {}

void VideoWriter::end() {
  if (!header_written_) header();
}

void VideoWriter::header() {
  header_written_ = true;
  const VideoColumns& c = columns_;
  if (format_ == Format::Table) {
    out_ << std::left << std::setw(40) << "video"
         << " " << std::right << std::setw(7) << "frames"
         << "  " << std::left << std::setw(10) << "label";
    if (c.eval) out_ << " " << std::setw(10) << "truth";
    out_ << " " << std::right << std::setw(6) << "p"
         << " " << std::setw(11) << "votes"
         << "  "
         << "status\n";
  } else if (format_ == Format::Csv) {
    out_ << "video,frames,frames_decoded,fps,duration_s,label," << (c.eval ? "truth,actor," : "")
         << "vote";
    for (const auto& k : classes_) out_ << ",count_" << k;
    for (const auto& k : classes_) out_ << ",p_" << k;
    out_ << (c.tracks ? ",main_track,face_tracks" : "") << ",status,warning"
         << (c.shard.empty() ? "" : ",shard") << "\n";
  }
  out_.flush();
}

void VideoWriter::table_row(const VideoResult& r, const RowLabel& l) {
  const std::string label = r.ok() ? classes_.at(r.label) : "-";
  std::string path =
      columns_.shorten && r.path.size() > 40 ? "..." + r.path.substr(r.path.size() - 37) : r.path;
  std::string p = r.ok() ? fixed(r.mean_probs[r.label], 3) : "-";
  std::string votes =
      r.ok() ? std::to_string(r.counts[r.label]) + "/" + std::to_string(r.frames) : "-";
  out_ << std::left << std::setw(40) << path << " " << std::right << std::setw(7) << r.frames
       << "  " << std::left << std::setw(10) << label;
  if (columns_.eval) out_ << " " << std::setw(10) << l.truth;
  out_ << " " << std::right << std::setw(6) << p << " " << std::setw(11) << votes << "  "
       << status_text(r) << (r.warning.empty() ? "" : " (" + r.warning + ")") << "\n";
}

void VideoWriter::csv_row(const VideoResult& r, const RowLabel& l) {
  const std::string label = r.ok() ? classes_.at(r.label) : "";
  out_ << csv_field(r.path) << "," << r.frames << "," << r.frames_decoded << "," << seconds(r.fps)
       << "," << seconds(r.duration_s) << "," << label << ",";
  if (columns_.eval)
    out_ << csv_field(l.truth) << "," << (l.actor ? std::to_string(l.actor) : "") << ",";
  out_ << vote_name(r.vote);
  for (size_t j = 0; j < classes_.size(); ++j)
    out_ << "," << (r.ok() ? std::to_string(r.counts[j]) : "");
  for (size_t j = 0; j < classes_.size(); ++j)
    out_ << "," << (r.ok() ? fixed(r.mean_probs[j], 6) : "");
  if (columns_.tracks)
    out_ << "," << (r.main_track > 0 ? std::to_string(r.main_track) : "") << ","
         << (r.ok() ? std::to_string(r.face_tracks) : "");
  out_ << "," << csv_field(status_text(r)) << "," << csv_field(r.warning)
       << (columns_.shard.empty() ? "" : "," + columns_.shard) << "\n";
}

void VideoWriter::json_row(const VideoResult& r, const RowLabel& l) {
  nlohmann::json j{{"video", nullptr},
                   {"frames", r.frames},
                   {"frames_decoded", r.frames_decoded},
                   {"fps", r.fps},
                   {"duration_s", r.duration_s},
                   {"label", r.ok() ? nlohmann::json(classes_.at(r.label)) : nullptr},
                   {"vote", vote_name(r.vote)},
                   {"status", status_text(r)}};
  set_video(j, r.path);
  if (columns_.eval) {
    j["truth"] = l.truth;
    if (l.actor) j["actor"] = l.actor;
  }
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
    if (columns_.tracks) {
      j["main_track"] = r.main_track > 0 ? nlohmann::json(r.main_track) : nullptr;
      j["face_tracks"] = r.face_tracks;
    }
  }
  if (!columns_.shard.empty()) j["shard"] = columns_.shard;
  if (!run_.is_null()) j["run"] = run_;
  out_ << json_line(j) << "\n";
}

void VideoWriter::row(const VideoResult& r, const RowLabel& l) {
  if (!header_written_) header();
  if (format_ == Format::Table)
    table_row(r, l);
  else if (format_ == Format::Csv)
    csv_row(r, l);
  else
    json_row(r, l);
  out_.flush();
}

FrameWriter::FrameWriter(std::ostream& out, Format format, std::vector<std::string> classes,
                         FrameColumns columns)
    : out_(out), format_(format), classes_(std::move(classes)), columns_(columns) {}

void FrameWriter::header() {
  if (format_ != Format::Csv) return;
  out_ << "video,frame,time_s,crop_x,crop_y,crop_w,crop_h,"
       << (columns_.tracks ? "track,crop_angle," : "") << (columns_.eval ? "truth," : "")
       << "label";
  for (const auto& c : classes_) out_ << ",p_" << c;
  if (columns_.logits)
    for (const auto& c : classes_) out_ << ",logit_" << c;
  out_ << "\n";
}

void FrameWriter::csv_row(const VideoResult& r, const FrameResult& f, const RowLabel& l) {
  char buf[32];
  out_ << csv_field(r.path) << "," << f.frame_index << "," << seconds(f.time_s) << "," << f.crop.x
       << "," << f.crop.y << "," << f.crop.width << "," << f.crop.height << ",";
  if (columns_.tracks)
    out_ << (f.track > 0 ? std::to_string(f.track) : "") << "," << crop_degrees(f.crop.angle)
         << ",";
  out_ << (columns_.eval ? csv_field(l.truth) + "," : "") << classes_.at(f.label);
  for (float p : f.probs) {
    std::snprintf(buf, sizeof(buf), ",%.9g", p);
    out_ << buf;
  }
  for (float v : f.logits) {
    std::snprintf(buf, sizeof(buf), ",%.9g", v);
    out_ << buf;
  }
  out_ << "\n";
}

void FrameWriter::rows(const VideoResult& r, const RowLabel& l) {
  for (const FrameResult& f : r.frame_rows) {
    if (format_ == Format::Csv) {
      csv_row(r, f, l);
      continue;
    }
    nlohmann::json j{{"video", nullptr},
                     {"frame", f.frame_index},
                     {"time_s", f.time_s},
                     {"crop", {f.crop.x, f.crop.y, f.crop.width, f.crop.height}}};
    set_video(j, r.path);
    if (columns_.tracks) {
      j["track"] = f.track > 0 ? nlohmann::json(f.track) : nullptr;
      j["crop_angle"] = crop_degrees(f.crop.angle);
    }
    if (columns_.eval) j["truth"] = l.truth;
    j["label"] = classes_.at(f.label);
    nlohmann::json probs = nlohmann::json::object(), logits = nlohmann::json::object();
    for (size_t k = 0; k < classes_.size(); ++k) {
      probs[classes_[k]] = f.probs[k];
      if (columns_.logits) logits[classes_[k]] = f.logits[k];
    }
    j["probs"] = probs;
    if (columns_.logits) j["logits"] = logits;
    out_ << json_line(j) << "\n";
  }
}

}  // namespace fervid::cli
