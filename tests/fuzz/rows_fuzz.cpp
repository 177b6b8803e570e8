// The JSON Lines rows that --resume and merge read back, on any bytes: refused with one line
// naming the file, or rows that score and merge.
#include <cstdint>

#include "fuzz_util.h"
#include "rows.h"

using namespace fervid;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<std::string> classes = {"neutral", "calm",    "happy",   "sad",
                                                   "angry",   "fearful", "disgust", "surprised"};
  const std::string path = fuzz::write_file("rows.jsonl", data, size);
  fuzz::expect_clean(path, [&] {
    for (const nlohmann::json& row : cli::read_rows(path)) {
      cli::eval_row(row, classes);
      cli::run_mismatch(row["run"], row["run"]);
    }
  });
  // merge, as a one-shard run, writes what it read (sorted) and scores eval rows.
  const std::string out = fuzz::work_dir() + "/merged.jsonl";
  const std::string summary = fuzz::work_dir() + "/summary.json";
  fuzz::expect_clean(path, [&] {
    cli::MergeArgs m;
    m.inputs = {path};
    m.output = out;
    m.summary = summary;
    m.quiet = true;
    cli::merge_outputs(m);
  });
  std::filesystem::remove(out);
  std::filesystem::remove(summary);
  return 0;
}
