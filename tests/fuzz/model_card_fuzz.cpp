// Model cards (JSON) on any bytes: refused with one line naming the file, or a spec that is
// consistent, sized without overflow and written back to the same card.
#include <cstdint>
#include <nlohmann/json.hpp>

#include "fervid/model_spec.h"
#include "fuzz_util.h"

using namespace fervid;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::write_file("card.json", data, size);
  fuzz::expect_clean(path, [&] {
    const ModelSpec spec = ModelSpec::load_card(path);
    spec.validate(path);
    const nlohmann::json card = spec.to_json();
    const ModelSpec again = ModelSpec::from_json(card, path);
    if (again.to_json() != card)
      fuzz::finding("a card does not read back as written: " + card.dump());
    if (spec.parameter_count() <= 0 || !(spec.macs_per_frame() > 0))
      fuzz::finding("a valid card with no parameters or work: " + card.dump());
    for (const auto& [name, shape] : spec.expected_tensors())
      for (int64_t d : shape)
        if (d <= 0) fuzz::finding("tensor " + name + " of a valid card has a dimension <= 0");
  });
  return 0;
}
