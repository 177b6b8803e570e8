#include "rows.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "cli.h"
#include "fervid/error.h"
#include "output.h"

namespace fervid::cli {

std::string file_fingerprint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path + ": cannot read");
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

std::vector<nlohmann::json> read_rows(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail(path + ": cannot read");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  std::vector<nlohmann::json> rows;
  for (size_t i = 0; i < lines.size(); ++i) {
    nlohmann::json row = nlohmann::json::parse(lines[i], nullptr, false);
    if (row.is_discarded() && i + 1 == lines.size()) break;  // cut short
    if (row.is_discarded() || !row.is_object() || !row.contains("video") || !row.contains("run"))
      fail(path + ":" + std::to_string(i + 1) +
           ": not a row of fervid's JSON Lines output (--format jsonl)");
    rows.push_back(std::move(row));
  }
  return rows;
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

void write_file(const std::string& path, const std::string& text) {
  AtomicFile f(path);
  f.stream() << text;
  f.commit();
}

int merge_outputs(const std::string& output, const std::vector<std::string>& inputs) {
  if (inputs.empty()) fail("merge: give the shard outputs to join");
  std::vector<nlohmann::json> rows;
  nlohmann::json run;
  std::string run_from;
  std::map<std::string, std::string> seen;  // video -> the file it came from
  for (const std::string& path : inputs) {
    if (path.size() > 5 && path.compare(path.size() - 5, 5, ".part") == 0)
      fail(path + ": an unfinished output (finish it with --resume first)");
    for (nlohmann::json& row : read_rows(path)) {
      if (run.is_null()) {
        run = row["run"];
        run_from = path;
      }
      const std::string why = run_mismatch(run, row["run"]);
      if (!why.empty())
        fail(path + " was written with other settings than " + run_from + " (" + why + ")");
      const std::string video = row["video"].get<std::string>();
      auto [it, fresh] = seen.emplace(video, path);
      if (!fresh) fail(video + " is in both " + it->second + " and " + path);
      rows.push_back(std::move(row));
    }
  }
  std::stable_sort(rows.begin(), rows.end(), [](const nlohmann::json& x, const nlohmann::json& y) {
    return x["video"].get<std::string>() < y["video"].get<std::string>();
  });
  std::ostringstream text;
  for (const auto& row : rows) text << row.dump() << "\n";
  write_file(output, text.str());
  std::cerr << "fervid: merged " << rows.size() << " videos from " << inputs.size()
            << " files into " << output << "\n";
  return kExitOk;
}

}  // namespace fervid::cli
