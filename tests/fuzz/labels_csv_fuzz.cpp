// eval's labels CSV (path,label) on any bytes: refused with one line naming the CSV, or every
// input labelled with one of the model's classes.
#include <cstdint>
#include <fstream>

#include "dataset.h"
#include "fuzz_util.h"

using namespace fervid;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<InputItem> inputs = [] {
    // The inputs the seed CSVs label: a video beside the CSV, one in a folder below it.
    std::filesystem::create_directories(fuzz::work_dir() + "/clips");
    std::vector<InputItem> items;
    for (const char* name : {"a.mp4", "clips/b.mp4"}) {
      const std::string path = fuzz::work_dir() + "/" + name;
      std::ofstream(path) << "x";
      items.emplace_back(path, InputKind::Video);
    }
    items.emplace_back(fuzz::work_dir() + "/missing.mp4", InputKind::Invalid, "no such file");
    return items;
  }();
  static const std::vector<std::string> classes = {"neutral", "calm", "happy", "sad"};
  const std::string csv = fuzz::write_file("labels.csv", data, size);
  fuzz::expect_clean(csv, [&] {
    std::string notice;
    const auto labelled = scoring::label_inputs(inputs, classes, csv, {}, &notice);
    if (labelled.size() != inputs.size())
      fuzz::finding("labels for " + std::to_string(labelled.size()) + " of " +
                    std::to_string(inputs.size()) + " inputs without an error");
    for (const scoring::LabelledInput& l : labelled)
      if (l.item.kind != InputKind::Invalid && (l.truth < 0 || l.truth >= int(classes.size())))
        fuzz::finding("input " + l.item.path + " labelled " + std::to_string(l.truth));
  });
  return 0;
}
