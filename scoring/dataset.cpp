#include "dataset.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <sstream>

#include "fervid/error.h"
#include "fervid/input_file.h"

namespace fervid::scoring {

namespace fs = std::filesystem;

namespace {

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t\r\n") - a + 1);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(s);
  while (std::getline(in, part, sep)) parts.push_back(trim(part));
  return parts;
}

int parse_int(const std::string& s, const std::string& what) {
  size_t used = 0;
  int v = 0;
  try {
    v = std::stoi(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != s.size()) fail(what + ": '" + s + "' is not a number");
  return v;
}

// "1,3,5-7" -> {1, 3, 5, 6, 7}, each within [lo, hi].
std::vector<int> parse_ranges(const std::string& text, int lo, int hi, const std::string& what) {
  std::vector<int> out;
  for (const std::string& part : split(text, ',')) {
    const size_t dash = part.find('-', 1);
    const int a = parse_int(part.substr(0, dash), what);
    const int b = dash == std::string::npos ? a : parse_int(part.substr(dash + 1), what);
    if (a < lo || b > hi || a > b)
      fail(what + " " + text + ": expected numbers or ranges within " + std::to_string(lo) + ".." +
           std::to_string(hi));
    for (int v = a; v <= b; ++v) out.push_back(v);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace

std::optional<RavdessName> parse_ravdess(const std::string& path) {
  std::string name = fs::path(path).filename().string();
  if (name.empty()) name = fs::path(path).parent_path().filename().string();  // "dir/"
  // Seven two-digit fields separated by '-', then the extension or any suffix.
  if (name.size() < 20) return std::nullopt;
  int f[7];
  for (int i = 0; i < 7; ++i) {
    const char a = name[3 * i], b = name[3 * i + 1];
    if (a < '0' || a > '9' || b < '0' || b > '9') return std::nullopt;
    if (i < 6 && name[3 * i + 2] != '-') return std::nullopt;
    f[i] = (a - '0') * 10 + (b - '0');
  }
  if (name.size() > 20 && std::isdigit(static_cast<unsigned char>(name[20]))) return std::nullopt;
  RavdessName r{f[0], f[1], f[2], f[3], f[4], f[5], f[6]};
  if (r.modality < 1 || r.modality > 3 || r.channel < 1 || r.channel > 2 || r.emotion < 1 ||
      r.emotion > 8 || r.intensity < 1 || r.intensity > 2 || r.statement < 1 || r.statement > 2 ||
      r.repetition < 1 || r.repetition > 2 || r.actor < 1 || r.actor > 24)
    return std::nullopt;
  return r;
}

RavdessFilter RavdessFilter::parse(const std::string& actors, const std::string& emotions,
                                   const std::string& modality, const std::string& channel) {
  RavdessFilter f;
  if (!actors.empty()) f.actors = parse_ranges(actors, 1, 24, "{{actors}}");
  if (!emotions.empty()) {
    for (const std::string& e : split(emotions, ',')) {
      auto it = std::find(kRavdessEmotions.begin(), kRavdessEmotions.end(), e);
      if (it != kRavdessEmotions.end()) {
        f.emotions.push_back(int(it - kRavdessEmotions.begin()) + 1);
      } else if (!e.empty() && std::isdigit(static_cast<unsigned char>(e[0]))) {
        std::vector<int> codes = parse_ranges(e, 1, 8, "{{emotions}} (names or codes 1-8)");
        f.emotions.insert(f.emotions.end(), codes.begin(), codes.end());
      } else {
        std::string names;
        for (const auto& n : kRavdessEmotions) names += (names.empty() ? "" : ", ") + n;
        fail_option("{{emotions}} " + emotions + ": '" + e + "' is not a RAVDESS emotion (" +
                    names + ", or their codes 1-8)");
      }
    }
  }
  if (modality == "av") {
    f.modality = 1;
  } else if (modality == "video") {
    f.modality = 2;
  } else if (!modality.empty()) {
    fail_option("{{modality}} " + modality + ": expected video (video-only) or av (audio-video)");
  }
  if (channel == "speech") {
    f.channel = 1;
  } else if (channel == "song") {
    f.channel = 2;
  } else if (!channel.empty()) {
    fail_option("{{channel}} " + channel + ": expected speech or song");
  }
  return f;
}

bool RavdessFilter::keep(const RavdessName& n) const {
  if (n.modality == 3) return false;  // audio only: nothing to see
  if (modality && n.modality != modality) return false;
  if (channel && n.channel != channel) return false;
  if (!actors.empty() && !std::binary_search(actors.begin(), actors.end(), n.actor)) return false;
  if (!emotions.empty() && std::find(emotions.begin(), emotions.end(), n.emotion) == emotions.end())
    return false;
  return true;
}

namespace {

std::string first_few(const std::vector<std::string>& items, size_t shown = 5) {
  std::string s;
  for (size_t i = 0; i < items.size() && i < shown; ++i) s += (i ? ", " : "") + items[i];
  if (items.size() > shown) s += " and " + std::to_string(items.size() - shown) + " more";
  return s;
}

// path -> class index, from a CSV of path,label rows.
std::map<std::string, int> read_labels_csv(const std::string& csv,
                                           const std::vector<std::string>& classes) {
  const std::string text = read_text_file(csv, "labels file", kMaxListBytes);
  std::map<std::string, int> labels;
  std::map<std::string, int> line_of;
  std::vector<std::string> unknown;
  int lineno = 0;
  for (std::string_view text_line : text_lines(text)) {
    const std::string line(text_line);
    ++lineno;
    if (trim(line).empty()) continue;
    const std::optional<ListedRow> row = split_listed_row(csv, line, 1);
    if (!row) fail(csv + ":" + std::to_string(lineno) + ": expected path,label");
    const std::string& label = row->fields[0];
    if (lineno == 1 && row->path == "path" && label == "label") continue;  // header
    auto it = std::find(classes.begin(), classes.end(), label);
    if (it == classes.end()) {
      unknown.push_back("'" + label + "' (line " + std::to_string(lineno) + ")");
      continue;
    }
    const int label_index = int(it - classes.begin());
    auto [had, fresh] = labels.emplace(row->key, label_index);
    if (!fresh && had->second != label_index)
      fail(csv + ":" + std::to_string(lineno) + ": " + row->path + " is labelled " + label +
           " here and " + classes[size_t(had->second)] + " on line " +
           std::to_string(line_of[row->key]));
    line_of.emplace(row->key, lineno);
  }
  if (!unknown.empty()) {
    std::string known;
    for (const auto& c : classes) known += (known.empty() ? "" : ", ") + c;
    fail(csv + ": labels that are not classes of the model (" + known + "): " + first_few(unknown));
  }
  return labels;
}

// The inputs labelled by a --labels CSV: every input must be listed.
std::vector<LabelledInput> label_by_csv(const std::vector<InputItem>& inputs,
                                        const std::vector<std::string>& classes,
                                        const std::string& labels_csv) {
  const std::map<std::string, int> labels = read_labels_csv(labels_csv, classes);
  std::vector<LabelledInput> out;
  std::vector<std::string> missing;
  for (const InputItem& item : inputs) {
    if (item.kind == InputKind::Invalid) {
      out.push_back({item, -1, 0});
      continue;
    }
    auto it = labels.find(canonical_path(item.path));
    if (it == labels.end()) {
      missing.push_back(item.path);
      continue;
    }
    out.push_back({item, it->second, 0});
  }
  if (!missing.empty())
    fail(labels_csv + " does not label " + std::to_string(missing.size()) +
         " of the inputs: " + first_few(missing));
  return out;
}

// The inputs labelled by their RAVDESS names, the filters applied, audio-only clips left out.
std::vector<LabelledInput> label_by_ravdess_names(const std::vector<InputItem>& inputs,
                                                  const std::vector<std::string>& classes,
                                                  const RavdessFilter& filter,
                                                  std::string* notice) {
  std::vector<int> class_of(9, -1);  // RAVDESS emotion code -> model class
  for (int e = 1; e <= 8; ++e) {
    auto it = std::find(classes.begin(), classes.end(), kRavdessEmotions[e - 1]);
    if (it != classes.end()) class_of[e] = int(it - classes.begin());
  }
  std::vector<LabelledInput> out;
  std::vector<std::string> unnamed, not_a_class;
  int audio = 0, filtered = 0;
  for (const InputItem& item : inputs) {
    if (item.kind == InputKind::Invalid) {
      out.push_back({item, -1, 0});
      continue;
    }
    const std::optional<RavdessName> n = parse_ravdess(item.path);
    if (!n)
      unnamed.push_back(item.path);
    else if (n->modality == 3)
      ++audio;
    else if (!filter.keep(*n))
      ++filtered;
    else if (class_of[n->emotion] < 0)
      not_a_class.push_back(item.path + " (" + kRavdessEmotions[n->emotion - 1] + ")");
    else
      out.push_back({item, class_of[n->emotion], n->actor});
  }
  if (!unnamed.empty())
    fail(std::to_string(unnamed.size()) +
         " inputs have no RAVDESS name (MM-CC-EE-II-SS-RR-AA, e.g. 02-01-06-01-02-01-12.mp4); "
         "give {{labels}} FILE.csv for other datasets: " +
         first_few(unnamed));
  if (!not_a_class.empty())
    fail("emotions that are not classes of the model (filter them with {{emotions}}): " +
         first_few(not_a_class));
  if (notice && (audio || filtered)) {
    *notice = std::to_string(out.size()) + " inputs selected";
    if (audio) *notice += ", " + std::to_string(audio) + " audio-only clips skipped";
    if (filtered) *notice += ", " + std::to_string(filtered) + " left out by the filters";
  }
  return out;
}

}  // namespace

std::vector<LabelledInput> label_inputs(const std::vector<InputItem>& inputs,
                                        const std::vector<std::string>& classes,
                                        const std::string& labels_csv, const RavdessFilter& filter,
                                        std::string* notice) {
  if (labels_csv.empty()) return label_by_ravdess_names(inputs, classes, filter, notice);
  if (filter.any())
    fail(
        "{{actors}}, {{emotions}}, {{modality}} and {{channel}} read RAVDESS names; with "
        "{{labels}} "
        "list the inputs to evaluate in the CSV instead");
  return label_by_csv(inputs, classes, labels_csv);
}

Shard Shard::parse(const std::string& text) {
  Shard s;
  const size_t slash = text.find('/');
  if (slash == std::string::npos) fail("{{shard}} " + text + ": expected K/N, e.g. 1/4");
  s.index = parse_int(text.substr(0, slash), "{{shard}}");
  s.count = parse_int(text.substr(slash + 1), "{{shard}}");
  if (s.count < 1 || s.index < 1 || s.index > s.count)
    fail("{{shard}} " + text + ": expected K/N with 1 <= K <= N");
  return s;
}

std::vector<size_t> shard_positions(const std::vector<std::string>& paths, const Shard& shard) {
  std::vector<size_t> order(paths.size());
  std::iota(order.begin(), order.end(), size_t(0));
  if (shard.count == 1) return order;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return paths[a] < paths[b]; });
  std::vector<size_t> mine;
  for (size_t i = 0; i < order.size(); ++i)
    if (int(i % size_t(shard.count)) == shard.index - 1) mine.push_back(order[i]);
  return mine;
}

}  // namespace fervid::scoring
