#include "fervid/model_spec.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "fervid/error.h"

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

template <typename T>
T field(const json& j, const char* key, const std::string& origin) {
  if (!j.contains(key)) fail(origin + ": model card has no '" + key + "'");
  try {
    return j.at(key).get<T>();
  } catch (const json::exception&) {
    fail(origin + ": model card field '" + key + "' has the wrong type");
  }
}

std::array<float, 3> triple(const json& j, const char* key, const std::string& origin) {
  auto v = field<std::vector<float>>(j, key, origin);
  if (v.size() != 3) fail(origin + ": preprocess." + key + " must have 3 values");
  return {v[0], v[1], v[2]};
}

}  // namespace

void ModelSpec::validate(const std::string& origin) const {
  auto bad = [&](const std::string& what) { fail(origin + ": " + what); };
  if (config.empty()) bad("config is empty");
  if (config.front() == kPool) bad("config starts with a pool");
  int pools = 0;
  for (int c : config) {
    if (c == kPool) {
      ++pools;
    } else if (c <= 0 || c > 65536) {
      bad("config has an invalid channel count " + std::to_string(c));
    }
  }
  if (input_size < 1 || input_size > 8192) bad("input_size must be in 1..8192");
  if (input_size % (1 << pools) != 0)
    bad("input_size " + std::to_string(input_size) + " is not divisible by 2^" +
        std::to_string(pools) + " (one halving per pool)");
  if (classes.size() < 2) bad("a model needs at least 2 classes");
  std::set<std::string> seen;
  for (const auto& c : classes) {
    if (c.empty()) bad("a class name is empty");
    if (c.find_first_of(",\"\n") != std::string::npos)
      bad("class name '" + c + "' has , \" or newline");
    if (!seen.insert(c).second) bad("class '" + c + "' appears twice");
  }
  for (int d : dense)
    if (d <= 0) bad("dense widths must be positive");
  if (preprocess.resize != 0 && preprocess.resize < input_size)
    bad("preprocess.resize must be 0 or at least input_size (" + std::to_string(input_size) + ")");
  if (!(std::isfinite(preprocess.scale) && preprocess.scale != 0))
    bad("preprocess.scale must be finite and non-zero");
  for (int c = 0; c < 3; ++c)
    if (!(std::isfinite(preprocess.mean[c]) && std::isfinite(preprocess.std[c]) &&
          preprocess.std[c] != 0))
      bad("preprocess mean/std must be finite, std non-zero");
  if (!(crop == "full" || crop == "center" || crop.rfind("box=", 0) == 0))
    bad("crop must be full, center or box=x,y,w,h");
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
  return json{{"name", name},
              {"config", cfg},
              {"input_size", input_size},
              {"head", head_name(head)},
              {"dense", dense},
              {"classes", classes},
              {"preprocess", pp},
              {"crop", crop},
              {"vote", vote_name(vote)}};
}

ModelSpec ModelSpec::from_json(const json& j, const std::string& origin) {
  if (!j.is_object()) fail(origin + ": a model card must be a JSON object");
  ModelSpec s;
  s.name = j.value("name", std::string("unnamed"));
  const json& cfg = j.contains("config") ? j.at("config") : json();
  if (!cfg.is_array()) fail(origin + ": model card has no 'config' list");
  for (const auto& c : cfg) {
    if (c.is_string() && c.get<std::string>() == "M") {
      s.config.push_back(kPool);
    } else if (c.is_number_integer()) {
      s.config.push_back(c.get<int>());
    } else {
      fail(origin + ": config entries must be channel counts or \"M\"");
    }
  }
  s.input_size = j.value("input_size", 224);
  std::string head = field<std::string>(j, "head", origin);
  if (head == "gap") {
    s.head = Head::Gap;
  } else if (head == "flatten") {
    s.head = Head::Flatten;
  } else {
    fail(origin + ": head must be gap or flatten, not '" + head + "'");
  }
  s.dense = field<std::vector<int>>(j, "dense", origin);
  s.classes = field<std::vector<std::string>>(j, "classes", origin);
  if (j.contains("preprocess")) {
    const json& p = j.at("preprocess");
    if (p.is_string()) {
      s.preprocess = preset(p.get<std::string>(), origin);
    } else if (p.is_object()) {
      std::string order = p.value("channel_order", std::string("rgb"));
      if (order != "rgb" && order != "bgr") fail(origin + ": channel_order must be rgb or bgr");
      s.preprocess.bgr = order == "bgr";
      s.preprocess.scale = p.value("scale", 1.0f / 255.0f);
      if (p.contains("mean")) s.preprocess.mean = triple(p, "mean", origin);
      if (p.contains("std")) s.preprocess.std = triple(p, "std", origin);
      if (p.contains("resize")) s.preprocess.resize = field<int>(p, "resize", origin);
    } else {
      fail(origin + ": preprocess must be a preset name or an object");
    }
  }
  s.crop = j.value("crop", std::string("full"));
  try {
    s.vote = parse_vote(j.value("vote", std::string("confidence")));
  } catch (const Error& e) {
    fail(origin + ": " + e.what());
  }
  s.validate(origin);
  return s;
}

ModelSpec ModelSpec::load_card(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail(path + ": cannot open the model card");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    fail(path + ": the model card is not valid JSON (" + std::string(e.what()) + ")");
  }
  return from_json(j, path);
}

}  // namespace fervid
