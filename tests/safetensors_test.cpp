// The safetensors reader on valid files and on malformed ones: each must fail with one line that
// names the file and the reason.
#include "fervid/safetensors.h"

#include <filesystem>
#include <fstream>

#include "fervid/error.h"
#include "test_util.h"

namespace fervid::test {
namespace {

std::string temp_path(const std::string& name) { return (temp_dir("st") / name).string(); }

// Writes an 8-byte length (the header's own unless `length` is given), the header and `data`.
std::string write_raw(const std::string& name, const std::string& header, size_t data_bytes,
                      std::optional<uint64_t> length = {}) {
  std::string path = temp_path(name);
  std::ofstream out(path, std::ios::binary);
  uint64_t n = length.value_or(header.size());
  for (int i = 0; i < 8; ++i) out.put(char(n >> (8 * i)));
  out << header;
  for (size_t i = 0; i < data_bytes; ++i) out.put(char(i));
  return path;
}

void expect_rejected(const std::string& path, const std::string& reason) {
  try {
    SafetensorsFile::open(path);
    ADD_FAILURE() << path << " was accepted; expected: " << reason;
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(reason), std::string::npos)
        << "message '" << msg << "' lacks '" << reason << "'";
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "not one line: " << msg;
  }
}

TEST(Safetensors, RoundTripsTensorsAndMetadata) {
  SeedTrace trace;
  std::vector<StTensorOut> ts;
  ts.push_back({"a", StDType::F32, {2, 3}, std::vector<std::byte>(24)});
  ts.push_back({"b.bias", StDType::F16, {5}, std::vector<std::byte>(10)});
  ts.push_back({"empty", StDType::BF16, {0, 4}, {}});
  for (auto& t : ts)
    for (auto& b : t.data) b = std::byte(rng()() & 0xff);
  const std::string path = temp_path("ok.safetensors");
  write_safetensors(path, ts, {{"note", "hello"}});
  EXPECT_FALSE(std::filesystem::exists(path + ".part"));
  SafetensorsFile f = SafetensorsFile::open(path);
  EXPECT_EQ(f.metadata().at("note"), "hello");
  ASSERT_EQ(f.tensors().size(), 3u);
  for (const auto& t : ts) {
    const StTensorInfo* info = f.find(t.name);
    ASSERT_NE(info, nullptr) << t.name;
    EXPECT_EQ(info->shape, t.shape);
    EXPECT_EQ(info->dtype, t.dtype);
    auto bytes = f.bytes(*info);
    ASSERT_EQ(bytes.size(), t.data.size());
    EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), t.data.begin()));
  }
}

TEST(Safetensors, RejectsMalformedFiles) {
  const std::string one = R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  expect_rejected(temp_path("missing.safetensors"), "cannot open");
  expect_rejected(std::filesystem::temp_directory_path().string(), "not a regular file");
  {
    std::string p = temp_path("short.safetensors");
    std::ofstream(p) << "abc";
    expect_rejected(p, "shorter than the 8-byte header length");
  }
  expect_rejected(write_raw("zero.safetensors", one, 8, 0), "header length is 0");
  expect_rejected(write_raw("beyond.safetensors", one, 8, 1000), "runs past the end of the file");
  expect_rejected(write_raw("huge.safetensors", one, 8, uint64_t(1) << 40), "exceeds 100 MiB");
  expect_rejected(write_raw("notjson.safetensors", "{\"t\": [1, 2", 0), "not valid JSON");
  expect_rejected(write_raw("array.safetensors", "[1, 2, 3]", 0), "not a JSON object");
  expect_rejected(write_raw("dtype.safetensors",
                            R"({"t":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", 8),
                  "unknown dtype 'F33'");
  expect_rejected(write_raw("shape.safetensors",
                            R"({"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8),
                  "non-negative integers");
  expect_rejected(write_raw("offsets.safetensors",
                            R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8),
                  "two offsets");
  expect_rejected(write_raw("reversed.safetensors",
                            R"({"t":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", 8),
                  "begin after they end");
  expect_rejected(
      write_raw("size.safetensors", R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8),
      "shape and dtype need 12");
  expect_rejected(write_raw("truncated.safetensors", one, 5), "past the 5 data bytes");
  expect_rejected(
      write_raw(
          "overlap.safetensors",
          R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
          12),
      "overlaps");
  expect_rejected(
      write_raw(
          "hole.safetensors",
          R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
          12),
      "belong to no tensor");
  expect_rejected(write_raw("trailing.safetensors", one, 16), "trailing bytes");
  expect_rejected(write_raw("meta.safetensors", R"({"__metadata__":{"k":3}})", 0),
                  "is not a string");
  expect_rejected(write_raw("entry.safetensors", R"({"t":[0,1]})", 0), "entry is not an object");
}

// A framework's own weights given by mistake are named for what they are, with the command that
// converts them (not "header length 578712552184433488 exceeds 100 MiB").
TEST(Safetensors, NamesOtherFrameworksFilesAndTheExporter) {
  const std::pair<std::string, std::string> files[] = {
      {std::string("PK\x03\x04", 4) + std::string(60, 'x'), "a PyTorch checkpoint"},
      {std::string("\x80\x02\x8a\x0alz", 6) + std::string(60, 'x'), "a pickled PyTorch checkpoint"},
      {std::string("\x89HDF\r\n\x1a\n", 8) + std::string(60, 'x'), "a Keras HDF5 file"}};
  const char* names[] = {"model.pth", "legacy.pt", "model.h5"};
  for (size_t i = 0; i < std::size(files); ++i) {
    const std::string path = temp_path(names[i]);
    std::ofstream(path, std::ios::binary) << files[i].first;
    expect_rejected(path, files[i].second);
    expect_rejected(path, "not safetensors; convert it with tools/export_weights.py " + path);
  }
  const std::string keras = temp_path("model.keras");
  std::ofstream(keras, std::ios::binary) << std::string("PK\x03\x04", 4) << std::string(60, 'x');
  expect_rejected(keras, "a Keras 3 file (.keras)");
  const std::string onnx = temp_path("model.onnx");
  std::ofstream(onnx, std::ios::binary)
      << std::string("\x08\x07\x12\x04", 4) << std::string(60, 'x');
  expect_rejected(onnx, "an ONNX model");
}

}  // namespace
}  // namespace fervid::test
