#include "rows.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "cli.h"
#include "dataset.h"
#include "fervid/error.h"
#include "fervid/input_file.h"
#include "fervid/output_file.h"
#include "output.h"

namespace fervid::cli {

using scoring::compute_metrics;
using scoring::EvalMetrics;
using scoring::EvalRow;
using scoring::report_metrics;
using scoring::Shard;

std::string file_fingerprint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path + ": cannot read: " + unreadable_reason(path));
  constexpr uint64_t kPrime = 1099511628211ull;
  uint64_t h = 1469598103934665603ull;
  std::vector<uint64_t> buf((1 << 20) / 8);
  while (in) {
    in.read(reinterpret_cast<char*>(buf.data()), std::streamsize(buf.size() * 8));
    const size_t got = size_t(in.gcount());
    for (size_t i = 0; i < got / 8; ++i) h = (h ^ buf[i]) * kPrime;
    const auto* tail = reinterpret_cast<const uint8_t*>(buf.data()) + got / 8 * 8;
    for (size_t i = 0; i < got % 8; ++i) h = (h ^ tail[i]) * kPrime;
  }
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

namespace {

// What is wrong with `row` as one of fervid's per-video JSON Lines rows, or "" (the fields that
// --resume and merge read, with their types).
std::string row_problem(const nlohmann::json& row) {
  if (!row.is_object()) return "not a JSON object";
  if (!row_video_checked(row)) return "no video path";
  const auto run = row.find("run");
  if (run == row.end() || !run->is_object()) return "no run settings";
  const auto classes = run->find("classes");
  if (classes == run->end() || !classes->is_array() || classes->empty()) return "no classes";
  for (const auto& c : *classes)
    if (!c.is_string()) return "a class that is not a name";
  if (run->contains("model") && !(*run)["model"].is_string()) return "a model that is not a name";
  const auto label = row.find("label");
  if (label == row.end() || !(label->is_string() || label->is_null())) return "no label";
  for (const char* key : {"status", "truth", "shard", "warning"})
    if (row.contains(key) && !row[key].is_string()) return std::string(key) + " is not text";
  if (row.contains("actor") && !row["actor"].is_number_integer()) return "actor is not a number";
  if (row.contains("shard")) {
    try {
      Shard::parse(row["shard"].get<std::string>());
    } catch (const Error& e) {
      return std::string("shard is not K/N: ") + e.what();
    }
  }
  if (row.contains("counts")) {
    if (!row["counts"].is_object()) return "counts are not an object";
    for (const auto& [name, n] : row["counts"].items())
      if (!n.is_number_integer()) return "a count that is not a whole number";
  }
  return "";
}

}  // namespace

std::vector<nlohmann::json> read_rows(const std::string& path) {
  std::vector<nlohmann::json> rows;
  const std::vector<std::string> lines = complete_lines(path);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    nlohmann::json row = nlohmann::json::parse(lines[i], nullptr, false);
    const std::string why = row.is_discarded() ? "not JSON" : row_problem(row);
    if (!why.empty())
      fail(path + ":" + std::to_string(i + 1) +
           ": not a row of fervid's JSON Lines output (--format jsonl): " + why);
    rows.push_back(std::move(row));
  }
  return rows;
}

std::vector<std::string> complete_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path + ": cannot read: " + unreadable_reason(path));
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line))
    if (!in.eof()) lines.push_back(line);
  return lines;
}

bool is_faces_output(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string line;
  if (!std::getline(in, line) || in.eof()) return false;  // no complete row
  const nlohmann::json row = nlohmann::json::parse(line, nullptr, false);
  if (!row.is_object()) return false;
  if (row.contains("frame")) return true;
  const auto run = row.find("run");
  return run != row.end() && run->is_object() && run->value("command", "") == "faces";
}

std::string run_mismatch(const nlohmann::json& had, const nlohmann::json& now) {
  for (const auto& [key, value] : now.items()) {
    if (!had.contains(key)) return key + " missing";
    if (had[key] != value) return key + " " + had[key].dump() + ", this run has " + value.dump();
  }
  for (const auto& [key, value] : had.items())
    if (!now.contains(key)) return key + " " + value.dump() + ", this run has none";
  return "";
}

EvalRow eval_row(const nlohmann::json& row, const std::vector<std::string>& classes, int truth,
                 int actor) {
  EvalRow r;
  r.path = row_video(row);
  auto index_of = [&](const std::string& name) {
    auto it = std::find(classes.begin(), classes.end(), name);
    return it == classes.end() ? -1 : int(it - classes.begin());
  };
  r.truth = truth >= 0 ? truth : row.contains("truth") ? index_of(row["truth"]) : -1;
  r.actor = actor ? actor : row.value("actor", 0);
  if (row["label"].is_string()) {
    r.predicted = index_of(row["label"].get<std::string>());
    for (const auto& c : classes)
      r.counts.push_back(row.contains("counts") ? row["counts"].value(c, int64_t(0)) : 0);
  } else {
    r.error = row.value("status", "error");
  }
  return r;
}

namespace {

// Every shard of one K/N split, or no shards at all; fails naming what is missing or mixed.
// "a, b, c": the files given, for a message about all of them.
std::string names_of(const std::vector<std::string>& paths) {
  std::string names;
  for (const std::string& p : paths) names += (names.empty() ? "" : ", ") + p;
  return names;
}

void check_shards(const std::vector<nlohmann::json>& rows, const std::vector<std::string>& from,
                  const std::vector<std::string>& inputs) {
  std::set<int> seen;
  int count = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const bool has = rows[i].contains("shard");
    if (i > 0 && has != rows[0].contains("shard"))
      fail_option("merge: " + from[i] + " mixes rows of --shard runs with rows of a run without");
    if (!has) continue;
    const Shard s = Shard::parse(rows[i]["shard"].get<std::string>());
    if (count && s.count != count)
      fail_option("merge: " + from[i] + " holds shard " + std::to_string(s.index) + "/" +
                  std::to_string(s.count) + ", others are of " + std::to_string(count) + " shards");
    count = s.count;
    seen.insert(s.index);
  }
  for (int k = 1; k <= count; ++k)
    if (!seen.count(k))
      fail_option("merge: shard " + std::to_string(k) + "/" + std::to_string(count) +
                  " is missing from " + names_of(inputs) + " (give the output of --shard " +
                  std::to_string(k) + "/" + std::to_string(count) + ")");
}

// merge of `fervid faces` outputs: each file's rows in blocks, a video's face rows and its closing
// row (the one with "run"); the blocks sorted by video. A block without its closing row is an
// unfinished output. The text to write, and the closing rows in video order (what merge scores).
struct MergedFaces {
  std::string text;
  std::vector<nlohmann::json> closing;
};

MergedFaces merge_faces(const MergeArgs& a) {
  struct Block {
    std::string video, text;
  };
  std::vector<Block> blocks;
  std::vector<nlohmann::json> closing;  // in the order of blocks
  std::vector<std::string> closing_from;
  std::map<std::string, std::string> seen;
  for (const std::string& path : a.inputs) {
    Block block;
    const std::vector<std::string> lines = complete_lines(path);
    for (size_t i = 0; i < lines.size(); ++i) {
      const nlohmann::json row = nlohmann::json::parse(lines[i], nullptr, false);
      const std::optional<std::string> video =
          row.is_object() ? row_video_checked(row) : std::nullopt;
      if (!video)
        fail(path + ":" + std::to_string(i + 1) + ": not a row of fervid faces' JSON Lines output");
      if (!block.text.empty() && block.video != *video)
        fail_option(path + ":" + std::to_string(i + 1) + ": the rows of " + block.video +
                    " end without their closing row (an unfinished output?)");
      block.video = *video;
      block.text += lines[i] + "\n";
      if (!row.contains("run")) continue;
      if (!closing.empty()) {
        const std::string why = run_mismatch(closing[0]["run"], row["run"]);
        if (!why.empty())
          fail_option(path + " was written with other settings than " + closing_from[0] + " (" +
                      why + ")");
      }
      auto [it, fresh] = seen.emplace(*video, path);
      if (!fresh) fail_option(*video + " is in both " + it->second + " and " + path);
      closing.push_back(row);
      closing_from.push_back(path);
      blocks.push_back(std::move(block));
      block = Block{};
    }
    if (!block.text.empty())
      fail_option(path + ": the rows of " + block.video +
                  " end without their closing row (an unfinished output?)");
  }
  check_shards(closing, closing_from, a.inputs);
  std::vector<size_t> order(blocks.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t x, size_t y) { return blocks[x].video < blocks[y].video; });
  MergedFaces m;
  for (size_t i : order) {
    m.text += blocks[i].text;
    m.closing.push_back(std::move(closing[i]));
  }
  return m;
}

// The rows of classify's or eval's shard outputs, checked (one run, every shard, no video twice)
// and sorted by video.
std::vector<nlohmann::json> merged_rows(const std::vector<std::string>& inputs) {
  std::vector<nlohmann::json> rows;
  std::vector<std::string> row_from;
  nlohmann::json run;
  std::string run_from;
  std::map<std::string, std::string> seen;  // video -> the file it came from
  for (const std::string& path : inputs) {
    for (nlohmann::json& row : read_rows(path)) {
      if (run.is_null()) {
        run = row["run"];
        run_from = path;
      }
      const std::string why = run_mismatch(run, row["run"]);
      if (!why.empty())
        fail_option(path + " was written with other settings than " + run_from + " (" + why + ")");
      const std::string video = row_video(row);
      auto [it, fresh] = seen.emplace(video, path);
      if (!fresh) fail_option(video + " is in both " + it->second + " and " + path);
      rows.push_back(std::move(row));
      row_from.push_back(path);
    }
  }
  check_shards(rows, row_from, inputs);
  std::stable_sort(rows.begin(), rows.end(), [](const nlohmann::json& x, const nlohmann::json& y) {
    return row_video(x) < row_video(y);
  });
  return rows;
}

}  // namespace

int merge_outputs(const MergeArgs& a) {
  if (a.inputs.empty()) fail_option("merge: give the shard outputs to join");
  std::vector<OutputTarget> targets{OutputTarget::at(a.output, "--output")};
  std::optional<OutputTarget> summary, confusion;
  if (!a.summary.empty()) targets.push_back(*(summary = OutputTarget::at(a.summary, "--summary")));
  if (!a.confusion.empty())
    targets.push_back(*(confusion = OutputTarget::at(a.confusion, "--confusion")));
  check_distinct(targets, a.inputs);
  for (const std::string& path : a.inputs)
    if (path.size() > 5 && path.compare(path.size() - 5, 5, ".part") == 0)
      fail_option(path + ": an unfinished output (finish it with --resume first)");
  const bool faces = std::any_of(a.inputs.begin(), a.inputs.end(), is_faces_output);
  MergedFaces face_rows;
  if (faces) face_rows = merge_faces(a);
  const std::vector<nlohmann::json> rows = faces ? face_rows.closing : merged_rows(a.inputs);
  const bool scored = !rows.empty() && rows[0].contains("truth");
  if ((summary || confusion) && !scored)
    fail_option("merge: --summary and --confusion score eval rows; the rows of " +
                names_of(a.inputs) + " carry no truth (write them with fervid eval" +
                (faces ? ", or fervid faces --labels/--summary" : "") + ")");
  std::string text = std::move(face_rows.text);
  if (!faces)
    for (const auto& row : rows) text += json_line(row) + "\n";
  write_output(targets[0], text);
  if (!a.quiet)
    std::cerr << "fervid: merged " << (faces ? "the faces of " : "") << rows.size()
              << " videos from " << a.inputs.size() << " files into " << a.output << "\n";
  const nlohmann::json run = rows.empty() ? nlohmann::json() : rows[0]["run"];
  if (!scored) return kExitOk;
  const std::vector<std::string> classes = run["classes"].get<std::vector<std::string>>();
  std::vector<EvalRow> eval;
  for (const auto& row : rows) eval.push_back(eval_row(row, classes));
  const EvalMetrics m = compute_metrics(eval, classes);
  nlohmann::json extra{{"run", run}, {"labels", "the rows' truth"}, {"merged", a.inputs}};
  const bool rows_on_stdout = targets[0].kind() == OutputTarget::Kind::Stdout;
  report_metrics(m, rows_on_stdout ? std::cerr : std::cout, summary, extra, confusion,
                 run.value("model", std::string("merged rows")));
  return kExitOk;  // failed videos are in the rows (and the metrics); the merge itself is done
}

}  // namespace fervid::cli
