// Weights and ModelSpec: cards, torchvision names, checks against the spec, dtype conversion,
// NaN/Inf rejection and deterministic make-weights.
#include "fervid/weights.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "fervid/error.h"
#include "test_util.h"

namespace fervid::test {
namespace {

std::string temp_path(const std::string& name) { return (temp_dir("w") / name).string(); }

ModelSpec small_spec(Head head = Head::Gap) {
  ModelSpec s;
  s.name = "tiny";
  s.config = {4, ModelSpec::kPool, 8, 8, ModelSpec::kPool};
  s.input_size = 8;
  s.head = head;
  s.dense = {6};
  s.classes = {"a", "b", "c"};
  return s;
}

std::string card(const std::string& file) {
  return std::string(FERVID_SOURCE_DIR) + "/weights/" + file;
}

TEST(ModelSpec, Vgg16CardsHaveTorchvisionNamesAndSizes) {
  ModelSpec tv = ModelSpec::load_card(card("torchvision-vgg16.json"));
  auto names = tv.expected_tensors();
  ASSERT_EQ(names.size(), 32u);
  EXPECT_EQ(names[0].first, "features.0.weight");
  EXPECT_EQ(names[2].first, "features.2.weight");
  EXPECT_EQ(names[4].first, "features.5.weight");
  EXPECT_EQ(names[24].first, "features.28.weight");
  EXPECT_EQ(names[26].first, "classifier.0.weight");
  EXPECT_EQ(names[26].second, (std::vector<int64_t>{4096, 25088}));
  EXPECT_EQ(names[30].first, "classifier.6.weight");
  // torchvision.models.vgg16(num_classes=8): 138,357,544 - 4096*992 - 992
  EXPECT_EQ(tv.parameter_count(), 134293320);
  EXPECT_EQ(tv.vote, VoteMode::Majority);
  EXPECT_NEAR(tv.macs_per_frame() / 1e9, 15.47, 0.01);

  ModelSpec study = ModelSpec::load_card(card("ravdess-vgg16.json"));
  EXPECT_EQ(study.head, Head::Gap);
  EXPECT_EQ(study.dense_layers()[0].in_features, 512);
  EXPECT_EQ(study.dense_layers()[2].out_features, 8);
  EXPECT_EQ(study.vote, VoteMode::Confidence);
  EXPECT_EQ(study.conv_layers()[12].name, "conv5_3");
  EXPECT_TRUE(study.conv_layers()[12].pool);
  EXPECT_FALSE(study.conv_layers()[11].pool);
  EXPECT_FLOAT_EQ(study.preprocess.scale, 1.0f / 255.0f);
}

// A good card with `change` merged over it fails, naming the card and `reason`.
void expect_bad_card(const char* change, const std::string& reason) {
  nlohmann::json card = nlohmann::json::parse(
      R"({"config":[4,"M"], "input_size":8, "head":"gap", "dense":[], "classes":["a","b"]})");
  card.merge_patch(nlohmann::json::parse(change));
  try {
    ModelSpec::from_json(card, "card.json");
    ADD_FAILURE() << change << ": accepted";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.rfind("card.json: ", 0), 0u) << m;
    EXPECT_NE(m.find(reason), std::string::npos) << change << ": " << m;
    EXPECT_EQ(m.find("card.json: card.json"), std::string::npos) << m;
  }
}

TEST(ModelSpec, RejectsBadCardsNamingTheCardAndTheReason) {
  ModelSpec::from_json(nlohmann::json::parse(R"({"config":[4,"M"], "input_size":8.0,
      "head":"gap", "dense":[], "classes":["a","b"]})"),
                       "card.json");  // 8.0 is 8
  expect_bad_card(R"({"config":[]})", "config is empty");
  expect_bad_card(R"({"head":"avg"})", "head must be gap or flatten");
  expect_bad_card(R"({"classes":["a"]})", "at least 2 classes");
  expect_bad_card(R"({"classes":["a","a"]})", "appears twice");
  expect_bad_card(R"({"input_size":7})", "not divisible");
  expect_bad_card(R"({"dense":[0]})", "'dense' must be a whole number in 1..");
  expect_bad_card(R"({"vote":"mean"})", "unknown vote 'mean'");
  expect_bad_card(R"({"preprocess":"imagenet"})", "unknown preprocessing preset");
  expect_bad_card(R"({"config":["M", 4]})", "starts with a pool");
}

TEST(ModelSpec, NumbersAreWholeAndInRangeNeverTruncated) {
  expect_bad_card(R"({"input_size":32.7})", "'input_size' must be a whole number in 1..8192");
  expect_bad_card(R"({"input_size":"32"})", "'input_size' must be a whole number");
  expect_bad_card(R"({"config":[4294967304,"M"]})", "'config' must be a whole number");
  expect_bad_card(R"({"config":[-4,"M"]})", "'config' must be a whole number");
  expect_bad_card(R"({"dense":[4294967304]})", "'dense' must be a whole number");
  expect_bad_card(R"({"preprocess":{"resize":1e10}})", "'preprocess.resize' must be a whole");
  expect_bad_card(R"({"preprocess":{"scale":1e300}})", "'scale' must be a finite float32");
  expect_bad_card(R"({"preprocess":{"std":[1e-45,1,1]}})", "1/std overflows");
  expect_bad_card(R"({"preprocess":{"mean":[1,2]}})", "a list of 3 numbers");
}

TEST(ModelSpec, AMissingInputSizeIsAnErrorNot224) {
  nlohmann::json card =
      nlohmann::json::parse(R"({"config":[4,"M"], "head":"gap", "dense":[], "classes":["a","b"]})");
  EXPECT_THROW(
      {
        try {
          ModelSpec::from_json(card, "card.json");
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("has no 'input_size'"), std::string::npos);
          throw;
        }
      },
      Error);
}

TEST(ModelSpec, FieldsOfTheWrongTypeNameTheField) {
  expect_bad_card(R"({"vote":7})", "'vote' must be a string, not 7");
  expect_bad_card(R"({"name":["x"]})", "'name' must be a string");
  expect_bad_card(R"({"crop":{}})", "'crop' must be a string");
  expect_bad_card(R"({"preprocess":{"channel_order":1}})", "'channel_order' must be a string");
  expect_bad_card(R"({"classes":"ab"})", "'classes' must be a list");
  expect_bad_card(R"({"config":{"a":1}})", "'config' must be a list");
}

TEST(ModelSpec, SizesThatOverflowOrExhaustMemoryAreRefused) {
  // A flatten head over a 4096x4096 map of 512 channels: 8.6e9 inputs to the first dense layer.
  expect_bad_card(R"({"config":[512,"M"], "input_size":8192, "head":"flatten", "dense":[4096]})",
                  "would hold");
  expect_bad_card(R"({"dense":[1048576, 1048576]})", "would hold");
  expect_bad_card(R"({"config":[65536, 65536, "M"]})", "would hold");
  std::string many = R"({"config":[)";
  for (int i = 0; i < 300; ++i) many += "4,";
  many += R"("M"]})";
  expect_bad_card(many.c_str(), "at most 256 entries");
}

TEST(ModelSpec, ClassNamesWithControlCharactersAndCropsInTheCardAreChecked) {
  expect_bad_card(R"({"classes":["a","b\r"]})", "control character");
  expect_bad_card(R"({"classes":["a","b\nc"]})", "control character");
  expect_bad_card(R"({"classes":["a","b,c"]})", "a comma");
  expect_bad_card(R"({"crop":"box=1,2,3"})", "crop 'box=1,2,3' must be");
  expect_bad_card(R"({"crop":"box=2147483647,0,1,1x"})", "must be full, center or box");
  expect_bad_card(R"({"crop":"box=0,0,99999999999,1"})", "must be full, center or box");
}

TEST(ModelSpec, CardFilesThatCannotBeReadSayWhy) {
  const std::string dir = temp_path("card-folder");
  std::filesystem::create_directories(dir);
  auto reason = [](const std::string& path) {
    try {
      ModelSpec::load_card(path);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_EQ(reason(dir), dir + ": cannot read the model card: is a folder");
  const std::string a = temp_path("loop-a"), b = temp_path("loop-b");
  std::filesystem::create_symlink(b, a);
  std::filesystem::create_symlink(a, b);
  EXPECT_EQ(reason(a), a + ": cannot read the model card: too many levels of symbolic links");
  EXPECT_EQ(reason(temp_path("none.json")),
            temp_path("none.json") + ": cannot read the model card: no such file or directory");
  const std::string big = temp_path("big.json");
  std::ofstream(big) << std::string(2 << 20, ' ');
  EXPECT_NE(reason(big).find("larger than 1048576 bytes"), std::string::npos) << reason(big);
  const std::string bom = temp_path("bom.json");
  std::ofstream(bom) << "\xEF\xBB\xBF"
                     << R"({"config":[4,"M"], "input_size":8, "head":"gap", "dense":[],
                           "classes":["a","b"]})";
  EXPECT_EQ(ModelSpec::load_card(bom).input_size, 8);
}

TEST(Weights, MakeWeightsIsDeterministicAndLoads) {
  const ModelSpec s = small_spec();
  const std::string a = temp_path("a.safetensors"), b = temp_path("b.safetensors");
  make_weights(s, 7, StDType::F32, a);
  make_weights(s, 7, StDType::F32, b);
  Weights wa = Weights::load(a), wb = Weights::load(b);
  EXPECT_EQ(wa.metadata.at("untrained"), "true");
  EXPECT_EQ(wa.spec.name, "tiny");
  ASSERT_EQ(wa.conv.size(), 3u);
  ASSERT_EQ(wa.dense.size(), 2u);
  EXPECT_EQ(0, std::memcmp(wa.conv[1].weight.tensor.data(), wb.conv[1].weight.tensor.data(),
                           wa.conv[1].weight.tensor.bytes()));
  bool nonzero_bias = false;
  for (int i = 0; i < 8; ++i) nonzero_bias |= wa.conv[1].bias.tensor.ptr<float>()[i] != 0.0f;
  EXPECT_TRUE(nonzero_bias);
  make_weights(s, 8, StDType::F32, b);
  wb = Weights::load(b);
  EXPECT_NE(0, std::memcmp(wa.conv[1].weight.tensor.data(), wb.conv[1].weight.tensor.data(),
                           wa.conv[1].weight.tensor.bytes()));
}

TEST(Weights, HalfAndBfloatLoadAsTheirF32Values) {
  const ModelSpec s = small_spec(Head::Flatten);
  const std::string f32 = temp_path("f32.safetensors"), f16 = temp_path("f16.safetensors"),
                    bf16 = temp_path("bf16.safetensors");
  make_weights(s, 3, StDType::F32, f32);
  make_weights(s, 3, StDType::F16, f16);
  make_weights(s, 3, StDType::BF16, bf16);
  Weights w32 = Weights::load(f32), w16 = Weights::load(f16), wb = Weights::load(bf16);
  EXPECT_EQ(w16.stored_dtype, "F16");
  const Tensor& ref = w32.dense[0].weight.tensor;
  EXPECT_EQ(ref.dim(1), 8 * 2 * 2);  // flatten head: channels * feature size^2
  for (int64_t i = 0; i < ref.numel(); ++i) {
    float v = ref.ptr<float>()[i];
    EXPECT_EQ(w16.dense[0].weight.tensor.ptr<float>()[i], half_to_float(float_to_half(v)));
    EXPECT_EQ(wb.dense[0].weight.tensor.ptr<float>()[i], bf16_to_float(float_to_bf16(v)));
  }
}

void expect_load_error(const std::string& path, const std::string& reason,
                       const std::optional<ModelSpec>& spec = {}) {
  try {
    Weights::load(path, spec, "card");
    ADD_FAILURE() << "loaded " << path;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(reason), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(Weights, RejectsFilesThatDoNotFitTheSpec) {
  const ModelSpec s = small_spec();
  const std::string good = temp_path("good.safetensors");
  make_weights(s, 1, StDType::F32, good);
  SafetensorsFile f = SafetensorsFile::open(good);
  auto rewrite = [&](const std::string& name, auto edit) {
    std::vector<StTensorOut> ts;
    for (const auto& t : f.tensors()) {
      auto bytes = f.bytes(t);
      ts.push_back({t.name, t.dtype, t.shape, {bytes.begin(), bytes.end()}});
    }
    edit(ts);
    std::string p = temp_path(name);
    write_safetensors(p, ts, f.metadata());
    return p;
  };
  expect_load_error(rewrite("missing.safetensors", [](auto& ts) { ts.erase(ts.begin() + 1); }),
                    "tensor 'features.0.bias' is missing");
  expect_load_error(rewrite("extra.safetensors",
                            [](auto& ts) {
                              ts.push_back({"extra", StDType::F32, {1}, std::vector<std::byte>(4)});
                            }),
                    "tensor 'extra' is not part of the spec");
  expect_load_error(rewrite("shape.safetensors",
                            [](auto& ts) {
                              ts[1].shape = {2, 2};
                            }),
                    "has shape [2,2], the spec needs [4]");
  expect_load_error(rewrite("dtype.safetensors", [](auto& ts) { ts[1].dtype = StDType::I32; }),
                    "has dtype I32");
  expect_load_error(rewrite("nan.safetensors",
                            [](auto& ts) {
                              float nan = NAN;
                              std::memcpy(ts[2].data.data() + 8, &nan, 4);
                            }),
                    "holds NaN at element 2");
  expect_load_error(rewrite("inf.safetensors",
                            [](auto& ts) {
                              float inf = INFINITY;
                              std::memcpy(ts[0].data.data(), &inf, 4);
                            }),
                    "holds Inf");
  ModelSpec other = s;
  other.classes.push_back("d");
  expect_load_error(good, "classifier.3.weight' has shape [3,6], the spec needs [4,6]", other);
  // no metadata and no card
  std::string bare = temp_path("bare.safetensors");
  write_safetensors(bare, {{"x", StDType::F32, {1}, std::vector<std::byte>(4)}}, {});
  expect_load_error(bare, "no model card");
}

TEST(Tensor, HalfConversionsRoundToNearestEven) {
  EXPECT_EQ(float_to_half(1.0f), 0x3c00);
  EXPECT_EQ(float_to_half(65504.0f), 0x7bff);
  EXPECT_EQ(float_to_half(1e6f), 0x7c00);
  EXPECT_EQ(float_to_half(5.9604645e-8f), 0x0001);  // smallest subnormal
  EXPECT_EQ(half_to_float(0x0001), 5.9604645e-8f);
  EXPECT_EQ(float_to_half(1.0f + 1.0f / 2048), 0x3c00);  // tie -> even
  EXPECT_EQ(float_to_half(1.0f + 3.0f / 2048), 0x3c02);  // tie -> even
  EXPECT_EQ(float_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(bf16_to_float(0x3f80), 1.0f);
  EXPECT_TRUE(std::isnan(half_to_float(float_to_half(NAN))));
  for (float v : {-2.5f, 0.333f, 1e-5f, 1234.5f}) {
    EXPECT_NEAR(half_to_float(float_to_half(v)), v, std::fabs(v) * 1e-3 + 1e-7);
    EXPECT_NEAR(bf16_to_float(float_to_bf16(v)), v, std::fabs(v) * 8e-3);
  }
}

TEST(ModelSpec, TheFaceMarginIsReadCheckedAndWrittenBackOnlyWhenSet) {
  const nlohmann::json base = nlohmann::json::parse(
      R"({"config":[4,"M"], "input_size":8, "head":"gap", "dense":[], "classes":["a","b"]})");
  const ModelSpec plain = ModelSpec::from_json(base, "card.json");
  EXPECT_EQ(plain.face_margin, ModelSpec::kDefaultFaceMargin);
  EXPECT_FALSE(plain.to_json().contains("face_margin"));  // cards written before stay the same
  nlohmann::json wide = base;
  wide["face_margin"] = 0.4;
  const ModelSpec set = ModelSpec::from_json(wide, "card.json");
  EXPECT_EQ(set.face_margin, 0.4);
  EXPECT_EQ(ModelSpec::from_json(set.to_json(), "again").face_margin, 0.4);
  expect_bad_card(R"({"face_margin":-0.1})", "'face_margin' must be a number in 0..2");
  expect_bad_card(R"({"face_margin":2.5})", "'face_margin' must be a number in 0..2");
  expect_bad_card(R"({"face_margin":"0.3"})", "'face_margin' must be a number");
}

}  // namespace
}  // namespace fervid::test
