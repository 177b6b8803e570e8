// The safetensors reader and the weights loader on any bytes: a file is refused with one line
// naming it, or every tensor it lists lies inside it and loads.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>

#include "fervid/safetensors.h"
#include "fervid/weights.h"
#include "fuzz_util.h"

using namespace fervid;

namespace {

// The small network the seed files hold (tools/fuzz.sh makes them with fervid make-weights).
ModelSpec tiny_spec() {
  ModelSpec s;
  s.name = "fuzz-tiny";
  s.config = {4, ModelSpec::kPool, 8, ModelSpec::kPool};
  s.input_size = 8;
  s.head = Head::Gap;
  s.dense = {6};
  s.classes = {"a", "b", "c"};
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::write_file("weights.safetensors", data, size);
  fuzz::expect_clean(path, [&] {
    const SafetensorsFile file = SafetensorsFile::open(path);
    uint64_t sum = 0;
    for (const StTensorInfo& t : file.tensors()) {
      const auto bytes = file.bytes(t);
      if (t.end < t.begin || bytes.size() != t.end - t.begin ||
          size_t(t.numel()) * st_dtype_size(t.dtype) != bytes.size())
        fuzz::finding("tensor " + t.name + " has " + std::to_string(bytes.size()) +
                      " bytes, not its shape's");
      for (std::byte b : bytes) sum += uint8_t(b);
    }
    if (sum == 1) std::fprintf(stderr, " ");  // keeps the reads
    std::optional<ModelSpec> carried = spec_from_metadata(file);
    check_against_spec(file, tiny_spec());
    if (carried) check_against_spec(file, *carried);
  });
  fuzz::expect_clean(path, [&] { Weights::load(path, tiny_spec(), "the fuzz target's spec"); });
  fuzz::expect_clean(path, [&] { Weights::load(path); });
  return 0;
}
