#include "fervid/weights.h"

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>

#include "fervid/error.h"
#include "fervid/output_file.h"

namespace fervid {

namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? "," : "") << shape[i];
  s << "]";
  return s.str();
}

bool is_float(StDType t) { return t == StDType::F32 || t == StDType::F16 || t == StDType::BF16; }

// splitmix64: a small, portable, well-mixed generator, so weights are the same everywhere.
struct Rng {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return (next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double normal() {
    double u1 = 1.0 - uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  }
};

}  // namespace

OwnedTensor read_f32(const SafetensorsFile& file, const StTensorInfo& info) {
  OwnedTensor out = host_tensor(info.shape, DType::F32);
  float* dst = out.tensor.ptr<float>();
  auto src = file.bytes(info);
  int64_t n = info.numel();
  if (info.dtype == StDType::F32) {
    std::memcpy(dst, src.data(), src.size());
  } else {
    for (int64_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, src.data() + 2 * i, 2);
      dst[i] = info.dtype == StDType::F16 ? half_to_float(h) : bf16_to_float(h);
    }
  }
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(dst[i]))
      fail(file.path() + ": tensor '" + info.name + "' holds " +
           (std::isnan(dst[i]) ? "NaN" : "Inf") + " at element " + std::to_string(i));
  return out;
}

std::optional<ModelSpec> spec_from_metadata(const SafetensorsFile& file) {
  auto it = file.metadata().find(kSpecMetadataKey);
  if (it == file.metadata().end()) return std::nullopt;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception&) {
    fail(file.path() + ": metadata '" + kSpecMetadataKey + "' is not valid JSON");
  }
  return ModelSpec::from_json(j, "metadata of " + file.path());
}

std::vector<std::string> check_against_spec(const SafetensorsFile& file, const ModelSpec& spec) {
  std::vector<std::string> problems;
  auto expected = spec.expected_tensors();
  for (const auto& [name, shape] : expected) {
    const StTensorInfo* t = file.find(name);
    if (!t) {
      problems.push_back("tensor '" + name + "' is missing (the spec needs " + shape_text(shape) +
                         ")");
      continue;
    }
    if (t->shape != shape)
      problems.push_back("tensor '" + name + "' has shape " + shape_text(t->shape) +
                         ", the spec needs " + shape_text(shape));
    if (!is_float(t->dtype))
      problems.push_back("tensor '" + name + "' has dtype " + t->dtype_text +
                         " (expected F32, F16 or BF16)");
  }
  for (const auto& t : file.tensors()) {
    bool known = false;
    for (const auto& e : expected) known = known || e.first == t.name;
    if (!known) problems.push_back("tensor '" + t.name + "' is not part of the spec");
  }
  return problems;
}

Weights Weights::load(const std::string& path, const std::optional<ModelSpec>& spec,
                      const std::string& origin) {
  SafetensorsFile file = SafetensorsFile::open(path);
  Weights w;
  w.path = path;
  w.metadata = file.metadata();
  if (spec) {
    w.spec = *spec;
    w.spec_origin = origin.empty() ? "the given model card" : origin;
    w.classes_assumed = !spec_from_metadata(file);
  } else if (auto s = spec_from_metadata(file)) {
    w.spec = *s;
    w.spec_origin = "metadata of " + path;
  } else {
    fail(path +
         ": no model card in the file's metadata; name one with {{card}} weights/<card>.json");
  }
  auto problems = check_against_spec(file, w.spec);
  if (!problems.empty()) {
    std::string more = problems.size() > 1
                           ? " (and " + std::to_string(problems.size() - 1) + " more problems)"
                           : "";
    fail(path + ": does not match " + w.spec_origin + ": " + problems.front() + more);
  }
  auto load_pair = [&](const std::string& prefix) {
    LayerWeights lw;
    lw.weight = read_f32(file, *file.find(prefix + ".weight"));
    lw.bias = read_f32(file, *file.find(prefix + ".bias"));
    return lw;
  };
  for (const auto& l : w.spec.conv_layers())
    w.conv.push_back(load_pair("features." + std::to_string(l.feature_index)));
  for (const auto& l : w.spec.dense_layers())
    w.dense.push_back(load_pair("classifier." + std::to_string(l.classifier_index)));
  w.stored_dtype = file.tensors().empty() ? "" : file.tensors().front().dtype_text;
  for (const auto& t : file.tensors())
    if (t.dtype_text != w.stored_dtype) w.stored_dtype = "mixed";
  return w;
}

void make_weights(const ModelSpec& spec, uint64_t seed, StDType dtype, const std::string& out) {
  OutputTarget::at(out, "--out");  // refused before any work: a folder, a missing folder
  if (!is_float(dtype)) fail(out + ": make-weights writes F32, F16 or BF16 only");
  std::vector<StTensorOut> tensors;
  uint64_t index = 0;
  for (const auto& [name, shape] : spec.expected_tensors()) {
    Rng rng{seed * 0x100000001b3ull + ++index};
    int64_t numel = 1;
    for (auto d : shape) numel *= d;
    bool is_bias = shape.size() == 1;
    // He (Kaiming) normal for weights, fan_in = in * kh * kw; small non-zero biases so that a
    // kernel that forgets the bias is caught.
    double fan_in = 1;
    for (size_t i = 1; i < shape.size(); ++i) fan_in *= double(shape[i]);
    double sd = std::sqrt(2.0 / fan_in);
    StTensorOut t{name, dtype, shape, {}};
    t.data.resize(numel * st_dtype_size(dtype));
    for (int64_t i = 0; i < numel; ++i) {
      float v = is_bias ? float(0.1 * (rng.uniform() - 0.5)) : float(sd * rng.normal());
      if (dtype == StDType::F32) {
        std::memcpy(t.data.data() + 4 * i, &v, 4);
      } else {
        uint16_t h = dtype == StDType::F16 ? float_to_half(v) : float_to_bf16(v);
        std::memcpy(t.data.data() + 2 * i, &h, 2);
      }
    }
    tensors.push_back(std::move(t));
  }
  std::map<std::string, std::string> meta{
      {kSpecMetadataKey, spec.to_json().dump()},
      {"untrained", "true"},
      {"seed", std::to_string(seed)},
      {"source", "fervid make-weights"},
      {"format", "pt"},
  };
  write_safetensors(out, tensors, meta);
}

}  // namespace fervid
