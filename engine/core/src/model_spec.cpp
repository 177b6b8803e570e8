#include "fervid/model_spec.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>

#include "fervid/error.h"
#include "fervid/frame.h"
#include "fervid/input_file.h"

namespace fervid {

using nlohmann::json;

const char* head_name(Head head) { return head == Head::Gap ? "gap" : "flatten"; }
const char* vote_name(VoteMode vote) {
  return vote == VoteMode::Majority ? "majority" : "confidence";
}

VoteMode parse_vote(const std::string& text) {
  if (text == "majority") return VoteMode::Majority;
  if (text == "confidence") return VoteMode::Confidence;
  fail_option("unknown vote '" + text + "' (expected majority or confidence)");
}

int vote_winner(const int32_t* counts, const double* sums, int classes, VoteMode mode) {
  int best = 0;
  for (int j = 1; j < classes; ++j) {
    bool better;
    if (mode == VoteMode::Majority) {
      better = counts[j] > counts[best] || (counts[j] == counts[best] && sums[j] > sums[best]);
    } else {
      better = sums[j] > sums[best];
    }
    if (better) best = j;  // equal on every key: the lower index stays
  }
  return best;
}

namespace {

Preprocess preset(const std::string& name, const std::string& origin) {
  Preprocess p;
  if (name == "study") return p;
  if (name == "torchvision") {
    p.mean = {0.485f, 0.456f, 0.406f};
    p.std = {0.229f, 0.224f, 0.225f};
    return p;
  }
  if (name == "caffe") {
    p.bgr = true;
    p.scale = 1.0f;
    p.mean = {103.939f, 116.779f, 123.68f};
    return p;
  }
  fail(origin + ": unknown preprocessing preset '" + name +
       "' (expected study, torchvision or caffe)");
}

// Limits of a card: far beyond any VGG (VGG19 has 21 config entries, ImageNet 1,000 classes),
// so that a damaged or hostile card fails in one line instead of exhausting memory.
constexpr size_t kMaxCardBytes = size_t(1) << 20;
constexpr size_t kMaxConfig = 256, kMaxDense = 16, kMaxClasses = 4096, kMaxNameBytes = 256;
constexpr int kMaxChannels = 65536, kMaxWidth = 1 << 20, kMaxInputSize = 8192;
// The most elements one tensor may have (2^31 - 1: 8 GiB in f32) and the whole model.
constexpr int64_t kMaxTensor = (int64_t(1) << 31) - 1, kMaxParameters = int64_t(1) << 32;

[[noreturn]] void bad_field(const std::string& origin, const std::string& key,
                            const std::string& expected, const json& v) {
  std::string got = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (got.size() > 40) got = got.substr(0, 37) + "...";
  fail(origin + ": model card field '" + key + "' must be " + expected + ", not " + got);
}

const json& required(const json& j, const char* key, const std::string& origin) {
  if (!j.contains(key)) fail(origin + ": model card has no '" + key + "'");
  return j.at(key);
}

// A whole number in lo..hi: fractions, strings and numbers outside the range are refused
// (never truncated; 224.0 is 224).
int whole(const json& v, const std::string& key, int lo, int hi, const std::string& origin) {
  const std::string expected =
      "a whole number in " + std::to_string(lo) + ".." + std::to_string(hi);
  double d = 0;
  if (v.is_number_unsigned()) {
    if (v.get<uint64_t>() > uint64_t(hi)) bad_field(origin, key, expected, v);
    d = double(v.get<uint64_t>());
  } else if (v.is_number_integer()) {
    d = double(v.get<int64_t>());
  } else if (v.is_number_float()) {
    d = v.get<double>();
  } else {
    bad_field(origin, key, expected, v);
  }
  if (!(d >= lo && d <= hi) || d != std::floor(d)) bad_field(origin, key, expected, v);
  return int(d);
}

std::string text(const json& v, const std::string& key, const std::string& origin) {
  if (!v.is_string()) bad_field(origin, key, "a string", v);
  std::string s = v.get<std::string>();
  if (s.size() > kMaxNameBytes)
    bad_field(origin, key, "at most " + std::to_string(kMaxNameBytes) + " bytes long", v);
  return s;
}

std::string text_or(const json& j, const char* key, const std::string& fallback,
                    const std::string& origin) {
  return j.contains(key) ? text(j.at(key), key, origin) : fallback;
}

float finite_number(const json& v, const std::string& key, const std::string& origin) {
  if (!v.is_number()) bad_field(origin, key, "a number", v);
  const double d = v.get<double>();
  if (!std::isfinite(float(d))) bad_field(origin, key, "a finite float32 number", v);
  return float(d);
}

std::array<float, 3> triple(const json& p, const char* key, const std::string& origin) {
  const json& v = p.at(key);
  const std::string name = std::string("preprocess.") + key;
  if (!v.is_array() || v.size() != 3) bad_field(origin, name, "a list of 3 numbers", v);
  return {finite_number(v[0], name, origin), finite_number(v[1], name, origin),
          finite_number(v[2], name, origin)};
}

// A list of at most `most` entries.
const json& list(const json& j, const char* key, size_t most, const std::string& origin) {
  const json& v = required(j, key, origin);
  if (!v.is_array() || v.size() > most)
    bad_field(origin, key, "a list of at most " + std::to_string(most) + " entries", v);
  return v;
}

using Bad = std::function<void(const std::string&)>;

// Class names: at least two, distinct, none empty, none that breaks a CSV header.
void check_classes(const std::vector<std::string>& classes, const Bad& bad) {
  if (classes.size() < 2) bad("a model needs at least 2 classes");
  std::set<std::string> seen;
  for (const auto& c : classes) {
    if (c.empty()) bad("a class name is empty");
    const bool control = std::any_of(c.begin(), c.end(), [](char ch) {
      return static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f;
    });
    if (control || c.find_first_of(",\"") != std::string::npos)
      bad("class name " + nlohmann::json(c).dump(-1, ' ', false, json::error_handler_t::replace) +
          " has a comma, a quote or a control character (they break CSV headers)");
    if (!seen.insert(c).second) bad("class '" + c + "' appears twice");
  }
}

void check_preprocess(const Preprocess& pp, int input_size, const Bad& bad) {
  if (pp.resize != 0 && pp.resize < input_size)
    bad("preprocess.resize must be 0 or at least input_size (" + std::to_string(input_size) + ")");
  if (!(std::isfinite(pp.scale) && pp.scale != 0))
    bad("preprocess.scale must be finite and non-zero");
  for (int c = 0; c < 3; ++c)
    if (!(std::isfinite(pp.mean[c]) && std::isfinite(pp.std[c]) && std::isfinite(1.0f / pp.std[c])))
      bad("preprocess mean/std must be finite, std non-zero and not so small that 1/std "
          "overflows");
}

// Tensor sizes in 64-bit: a flatten head over a large feature map or huge widths must not wrap
// around an int; each tensor and the whole model are bounded.
void check_sizes(const ModelSpec& s, const Bad& bad) {
  int64_t total = 0;
  int64_t in = s.feature_channels();
  int size = s.input_size;
  for (int c : s.config) size = c == ModelSpec::kPool ? size / 2 : size;
  if (s.head == Head::Flatten) in *= int64_t(size) * size;
  auto count = [&](const std::string& what, int64_t elements) {
    if (elements > kMaxTensor)
      bad(what + " would hold " + std::to_string(elements) + " weights, more than " +
          std::to_string(kMaxTensor));
    total += elements;
  };
  int in_channels = 3;
  for (int c : s.config)
    if (c != ModelSpec::kPool) {
      count("a conv layer " + std::to_string(in_channels) + "->" + std::to_string(c),
            int64_t(in_channels) * c * 9);
      in_channels = c;
    }
  for (size_t i = 0; i <= s.dense.size(); ++i) {
    const int64_t out = i < s.dense.size() ? s.dense[i] : int64_t(s.classes.size());
    count("dense layer " + std::to_string(i + 1) + " (" + std::to_string(in) + "->" +
              std::to_string(out) + ")",
          in * out);
    in = out;
  }
  if (total > kMaxParameters)
    bad("the model would have " + std::to_string(total) + " parameters, more than " +
        std::to_string(kMaxParameters));
}

}  // namespace

void ModelSpec::validate(const std::string& origin) const {
  const Bad bad = [&](const std::string& what) { fail(origin + ": " + what); };
  if (config.empty()) bad("config is empty");
  if (config.front() == kPool) bad("config starts with a pool");
  int pools = 0;
  for (int c : config) {
    if (c == kPool) {
      ++pools;
    } else if (c <= 0 || c > kMaxChannels) {
      bad("config has an invalid channel count " + std::to_string(c));
    }
  }
  if (input_size < 1 || input_size > kMaxInputSize) bad("input_size must be in 1..8192");
  if (input_size % (1 << pools) != 0)
    bad("input_size " + std::to_string(input_size) + " is not divisible by 2^" +
        std::to_string(pools) + " (one halving per pool)");
  check_classes(classes, bad);
  for (int d : dense)
    if (d <= 0) bad("dense widths must be positive");
  check_sizes(*this, bad);
  check_preprocess(preprocess, input_size, bad);
  if (!(crop == "full" || crop == "center" ||
        (crop.rfind("box=", 0) == 0 && parse_box(std::string_view(crop).substr(4)))))
    bad("crop '" + crop + "' must be full, center or box=x,y,w,h (x,y >= 0, w,h > 0)");
  if (!int8_scales.empty()) {
    const std::vector<ConvLayer> convs = conv_layers();
    for (const auto& entry : int8_scales) {
      // (A structured binding would do, but clang before 16 cannot capture one in a lambda.)
      const std::string& layer = entry.first;
      const float scale = entry.second;
      if (std::none_of(convs.begin(), convs.end(),
                       [&](const ConvLayer& l) { return l.name == layer; }))
        bad("int8.input_scales names " + layer + ", which is not a conv layer of this network");
      if (!(scale > 0) || !std::isfinite(scale))
        bad("int8.input_scales." + layer + " must be a positive number");
    }
  }
}

std::vector<ConvLayer> ModelSpec::conv_layers() const {
  std::vector<ConvLayer> layers;
  int in = 3, index = 0, block = 1, in_block = 0;
  for (int c : config) {
    if (c == kPool) {
      if (!layers.empty()) layers.back().pool = true;
      ++index;  // MaxPool2d occupies one features index
      ++block;
      in_block = 0;
      continue;
    }
    ConvLayer l;
    l.in_channels = in;
    l.out_channels = c;
    l.feature_index = index;
    l.name = "conv" + std::to_string(block) + "_" + std::to_string(++in_block);
    layers.push_back(l);
    in = c;
    index += 2;  // Conv2d, ReLU
  }
  return layers;
}

int ModelSpec::feature_channels() const {
  for (auto it = config.rbegin(); it != config.rend(); ++it)
    if (*it != kPool) return *it;
  return 0;
}

int ModelSpec::feature_size() const {
  int s = input_size;
  for (int c : config)
    if (c == kPool) s /= 2;
  return s;
}

std::vector<DenseLayer> ModelSpec::dense_layers() const {
  std::vector<DenseLayer> layers;
  int in = feature_channels();
  if (head == Head::Flatten) in *= feature_size() * feature_size();
  for (size_t i = 0; i <= dense.size(); ++i) {
    DenseLayer l;
    l.in_features = in;
    l.out_features = i < dense.size() ? dense[i] : num_classes();
    l.relu = i < dense.size();
    l.classifier_index = static_cast<int>(3 * i);  // Linear, ReLU, Dropout
    layers.push_back(l);
    in = l.out_features;
  }
  return layers;
}

std::vector<std::pair<std::string, std::vector<int64_t>>> ModelSpec::expected_tensors() const {
  std::vector<std::pair<std::string, std::vector<int64_t>>> t;
  for (const auto& l : conv_layers()) {
    std::string p = "features." + std::to_string(l.feature_index);
    t.push_back({p + ".weight", {l.out_channels, l.in_channels, 3, 3}});
    t.push_back({p + ".bias", {l.out_channels}});
  }
  for (const auto& l : dense_layers()) {
    std::string p = "classifier." + std::to_string(l.classifier_index);
    t.push_back({p + ".weight", {l.out_features, l.in_features}});
    t.push_back({p + ".bias", {l.out_features}});
  }
  return t;
}

int64_t ModelSpec::parameter_count() const {
  int64_t n = 0;
  for (const auto& [name, shape] : expected_tensors()) {
    int64_t e = 1;
    for (auto d : shape) e *= d;
    n += e;
  }
  return n;
}

double ModelSpec::macs_per_frame() const {
  double macs = 0;
  int s = input_size;
  for (const auto& l : conv_layers()) {
    macs += 9.0 * l.in_channels * l.out_channels * s * s;
    if (l.pool) s /= 2;
  }
  for (const auto& l : dense_layers()) macs += double(l.in_features) * l.out_features;
  return macs;
}

json ModelSpec::to_json() const {
  json cfg = json::array();
  for (int c : config) cfg.push_back(c == kPool ? json("M") : json(c));
  json pp{{"channel_order", preprocess.bgr ? "bgr" : "rgb"},
          {"scale", preprocess.scale},
          {"mean", preprocess.mean},
          {"std", preprocess.std}};
  if (preprocess.resize) pp["resize"] = preprocess.resize;
  json card{{"name", name},
            {"config", cfg},
            {"input_size", input_size},
            {"head", head_name(head)},
            {"dense", dense},
            {"classes", classes},
            {"preprocess", pp},
            {"crop", crop},
            {"vote", vote_name(vote)}};
  if (face_margin != kDefaultFaceMargin) card["face_margin"] = face_margin;
  if (!int8_scales.empty())
    card["int8"] = json{{"input_scales", int8_scales}, {"frames", int8_frames}};
  return card;
}

ModelSpec ModelSpec::from_json(const json& j, const std::string& origin) {
  if (!j.is_object()) fail(origin + ": a model card must be a JSON object");
  ModelSpec s;
  s.name = text_or(j, "name", "unnamed", origin);
  for (const json& c : list(j, "config", kMaxConfig, origin))
    s.config.push_back(c == "M" ? kPool : whole(c, "config", 1, kMaxChannels, origin));
  s.input_size = whole(required(j, "input_size", origin), "input_size", 1, kMaxInputSize, origin);
  const std::string head = text(required(j, "head", origin), "head", origin);
  if (head == "gap") {
    s.head = Head::Gap;
  } else if (head == "flatten") {
    s.head = Head::Flatten;
  } else {
    fail(origin + ": head must be gap or flatten, not '" + head + "'");
  }
  for (const json& d : list(j, "dense", kMaxDense, origin))
    s.dense.push_back(whole(d, "dense", 1, kMaxWidth, origin));
  for (const json& c : list(j, "classes", kMaxClasses, origin))
    s.classes.push_back(text(c, "classes", origin));
  if (j.contains("preprocess")) {
    const json& p = j.at("preprocess");
    if (p.is_string()) {
      s.preprocess = preset(p.get<std::string>(), origin);
    } else if (p.is_object()) {
      const std::string order = text_or(p, "channel_order", "rgb", origin);
      if (order != "rgb" && order != "bgr") fail(origin + ": channel_order must be rgb or bgr");
      s.preprocess.bgr = order == "bgr";
      if (p.contains("scale")) s.preprocess.scale = finite_number(p["scale"], "scale", origin);
      if (p.contains("mean")) s.preprocess.mean = triple(p, "mean", origin);
      if (p.contains("std")) s.preprocess.std = triple(p, "std", origin);
      if (p.contains("resize"))
        s.preprocess.resize = whole(p["resize"], "preprocess.resize", 0, kMaxInputSize, origin);
    } else {
      fail(origin + ": preprocess must be a preset name or an object");
    }
  }
  s.crop = text_or(j, "crop", "full", origin);
  if (j.contains("face_margin")) {
    const json& m = j["face_margin"];
    if (!m.is_number()) bad_field(origin, "face_margin", "a number", m);
    s.face_margin = m.get<double>();
    if (!(s.face_margin >= 0 && s.face_margin <= kMaxFaceMargin))
      bad_field(origin, "face_margin", "a number in 0..2 (a share of the face's size a side)", m);
  }
  if (j.contains("int8")) {
    const json& q = j["int8"];
    if (!q.is_object() || !q.contains("input_scales") || !q["input_scales"].is_object())
      bad_field(origin, "int8", "an object with input_scales (written by fervid calibrate)", q);
    for (const auto& [layer, v] : q["input_scales"].items()) {
      if (!v.is_number() || !(v.get<double>() > 0) || !std::isfinite(v.get<double>()))
        bad_field(origin, "int8.input_scales." + layer, "a positive number", v);
      s.int8_scales[layer] = v.get<float>();
    }
    if (q.contains("frames")) s.int8_frames = whole(q["frames"], "int8.frames", 0, 1 << 30, origin);
  }
  const std::string vote = text_or(j, "vote", "confidence", origin);
  try {
    s.vote = parse_vote(vote);
  } catch (const Error& e) {
    fail(origin + ": " + e.what());
  }
  s.validate(origin);
  return s;
}

ModelSpec ModelSpec::load_card(const std::string& path) {
  const std::string bytes = read_text_file(path, "model card", kMaxCardBytes);
  json j;
  try {
    j = json::parse(bytes);
  } catch (const json::exception& e) {
    fail(path + ": the model card is not valid JSON (" + std::string(e.what()) + ")");
  }
  return from_json(j, path);
}

}  // namespace fervid
