#include "fervid/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string_view>
#include <utility>

#include "fervid/error.h"
#include "fervid/output_file.h"

namespace fervid {

using nlohmann::json;

namespace {

constexpr uint64_t kMaxHeaderBytes = 100u << 20;  // the limit the reference implementation uses

struct DTypeName {
  StDType dtype;
  const char* name;
  size_t size;
};
constexpr DTypeName kDTypes[] = {
    {StDType::F64, "F64", 8},   {StDType::F32, "F32", 4},         {StDType::F16, "F16", 2},
    {StDType::BF16, "BF16", 2}, {StDType::I64, "I64", 8},         {StDType::I32, "I32", 4},
    {StDType::I16, "I16", 2},   {StDType::I8, "I8", 1},           {StDType::U8, "U8", 1},
    {StDType::U64, "U64", 8},   {StDType::U32, "U32", 4},         {StDType::U16, "U16", 2},
    {StDType::BOOL, "BOOL", 1}, {StDType::F8_E4M3, "F8_E4M3", 1}, {StDType::F8_E5M2, "F8_E5M2", 1},
};

[[noreturn]] void bad(const std::string& path, const std::string& why) {
  fail(path + ": not a valid safetensors file: " + why);
}

}  // namespace

size_t st_dtype_size(StDType dtype) {
  for (const auto& d : kDTypes)
    if (d.dtype == dtype) return d.size;
  return 0;
}

const char* st_dtype_name(StDType dtype) {
  for (const auto& d : kDTypes)
    if (d.dtype == dtype) return d.name;
  return "?";
}

int64_t StTensorInfo::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&& o) noexcept { *this = std::move(o); }

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& o) noexcept {
  if (this != &o) {
    unmap();
    path_ = std::move(o.path_);
    map_ = std::exchange(o.map_, nullptr);
    size_ = std::exchange(o.size_, 0);
    data_ = std::exchange(o.data_, nullptr);
    metadata_ = std::move(o.metadata_);
    tensors_ = std::move(o.tensors_);
  }
  return *this;
}

SafetensorsFile::~SafetensorsFile() { unmap(); }

void SafetensorsFile::unmap() noexcept {
  if (map_) munmap(map_, size_);
  map_ = nullptr;
}

namespace {

// What a file that is not safetensors is, from its first bytes, and how to convert it: the
// weights people hand fervid by mistake are a framework's own files.
std::string other_format(const unsigned char* b, size_t size, const std::string& path) {
  auto starts = [&](std::string_view magic) {
    return size >= magic.size() && std::memcmp(b, magic.data(), magic.size()) == 0;
  };
  auto ends_with = [&](std::string_view ext) {
    return path.size() >= ext.size() &&
           std::equal(ext.rbegin(), ext.rend(), path.rbegin(), [](char a, char c) {
             return a == std::tolower(static_cast<unsigned char>(c));
           });
  };
  const std::string convert = "; convert it with tools/export_weights.py " + path +
                              " OUT.safetensors (docs: weights/README.md)";
  if (starts("\x89HDF\r\n\x1a\n")) return "a Keras HDF5 file (.h5), not safetensors" + convert;
  if (starts("PK\x03\x04"))
    return (ends_with(".keras") ? std::string("a Keras 3 file (.keras)")
                                : std::string("a PyTorch checkpoint (a zip: torch.save)")) +
           ", not safetensors" + convert;
  if (starts("\x80\x02") || starts("\x80\x04") || starts("\x80\x05"))
    return "a pickled PyTorch checkpoint (legacy torch.save), not safetensors" + convert;
  if (ends_with(".onnx")) return "an ONNX model, not safetensors" + convert;
  return "";
}

}  // namespace

// The header's tensors checked one by one (dtype, shape, offsets within the data) and the data
// region covered exactly, without gaps or overlaps.
void SafetensorsFile::read_header(const nlohmann::json& header, size_t data_size) {
  const std::string& path = path_;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) bad(path, "__metadata__ is not an object");
      for (auto m2 = v.begin(); m2 != v.end(); ++m2) {
        if (!m2.value().is_string())
          bad(path, "__metadata__ value '" + m2.key() + "' is not a string");
        metadata_[m2.key()] = m2.value().get<std::string>();
      }
      continue;
    }
    tensors_.push_back(tensor_entry(name, v, data_size));
  }
  std::sort(tensors_.begin(), tensors_.end(), [](const auto& a, const auto& b) {
    return a.begin < b.begin || (a.begin == b.begin && a.end < b.end);
  });
  size_t cursor = 0;
  for (const auto& t : tensors_) {
    if (t.begin < cursor) bad(path, "tensor '" + t.name + "' overlaps the tensor before it");
    if (t.begin > cursor)
      bad(path, "bytes " + std::to_string(cursor) + ".." + std::to_string(t.begin) +
                    " before tensor '" + t.name + "' belong to no tensor");
    cursor = t.end;
  }
  if (cursor != data_size)
    bad(path, std::to_string(data_size - cursor) + " trailing bytes belong to no tensor");
}

StTensorInfo SafetensorsFile::tensor_entry(const std::string& name, const nlohmann::json& v,
                                           size_t data_size) const {
  const std::string& path = path_;
  auto where = "tensor '" + name + "': ";
  if (!v.is_object()) bad(path, where + "entry is not an object");
  if (!v.contains("dtype") || !v["dtype"].is_string()) bad(path, where + "no dtype string");
  if (!v.contains("shape") || !v["shape"].is_array()) bad(path, where + "no shape list");
  if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2)
    bad(path, where + "data_offsets must be a list of two offsets");
  StTensorInfo t;
  t.name = name;
  t.dtype_text = v["dtype"].get<std::string>();
  const DTypeName* dt = nullptr;
  for (const auto& d : kDTypes)
    if (t.dtype_text == d.name) dt = &d;
  if (!dt) bad(path, where + "unknown dtype '" + t.dtype_text + "'");
  t.dtype = dt->dtype;
  uint64_t numel = 1;
  for (const auto& d : v["shape"]) {
    if (!d.is_number_unsigned()) bad(path, where + "shape entries must be non-negative integers");
    uint64_t x = d.get<uint64_t>();
    if (x != 0 && numel > (uint64_t(1) << 48) / x) bad(path, where + "shape is too large");
    numel *= x;
    t.shape.push_back(static_cast<int64_t>(x));
  }
  for (const auto& o : v["data_offsets"])
    if (!o.is_number_unsigned()) bad(path, where + "data_offsets must be non-negative integers");
  uint64_t b = v["data_offsets"][0].get<uint64_t>(), e = v["data_offsets"][1].get<uint64_t>();
  if (b > e) bad(path, where + "data_offsets begin after they end");
  if (e > data_size)
    bad(path, where + "data ends at " + std::to_string(e) + ", past the " +
                  std::to_string(data_size) + " data bytes in the file (truncated?)");
  if (e - b != numel * dt->size)
    bad(path, where + "holds " + std::to_string(e - b) + " bytes but its shape and dtype need " +
                  std::to_string(numel * dt->size));
  t.begin = b;
  t.end = e;
  return t;
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile f;
  f.path_ = path;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path + ": not a regular file");
  }
  f.size_ = static_cast<size_t>(st.st_size);
  if (f.size_ < 8) {
    ::close(fd);
    bad(path,
        "file is " + std::to_string(f.size_) + " bytes, shorter than the 8-byte header length");
  }
  void* m = mmap(nullptr, f.size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (m == MAP_FAILED) fail(path + ": cannot map the file: " + std::strerror(errno));
  f.map_ = m;
  const auto* base = static_cast<const unsigned char*>(m);
  if (const std::string other = other_format(base, f.size_, path); !other.empty())
    fail(path + ": " + other);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | base[i];
  if (n == 0) bad(path, "header length is 0");
  if (n > kMaxHeaderBytes) bad(path, "header length " + std::to_string(n) + " exceeds 100 MiB");
  if (n > f.size_ - 8)
    bad(path, "header length " + std::to_string(n) + " runs past the end of the file (" +
                  std::to_string(f.size_) + " bytes)");
  const char* text = reinterpret_cast<const char*>(base + 8);
  json header;
  try {
    header = json::parse(text, text + n);
  } catch (const json::exception& e) {
    bad(path, "header is not valid JSON");
  }
  if (!header.is_object()) bad(path, "header is not a JSON object");
  f.data_ = reinterpret_cast<const std::byte*>(base + 8 + n);
  f.read_header(header, f.size_ - 8 - n);
  return f;
}

const StTensorInfo* SafetensorsFile::find(const std::string& name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

std::span<const std::byte> SafetensorsFile::bytes(const StTensorInfo& info) const {
  return {data_ + info.begin, info.end - info.begin};
}

void write_safetensors(const std::string& path, const std::vector<StTensorOut>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  size_t offset = 0;
  for (const auto& t : tensors) {
    int64_t numel = 1;
    for (auto d : t.shape) numel *= d;
    if (t.data.size() != static_cast<size_t>(numel) * st_dtype_size(t.dtype))
      fail(path + ": tensor '" + t.name + "' has " + std::to_string(t.data.size()) +
           " bytes, its shape needs " + std::to_string(numel * st_dtype_size(t.dtype)));
    header[t.name] = {{"dtype", st_dtype_name(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.data.size()}}};
    offset += t.data.size();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps tensor data 8-byte aligned
  OutputFile file(OutputTarget::at(path, "--out"));
  std::ostream& out = file.stream();
  uint64_t n = text.size();
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  out.write(reinterpret_cast<const char*>(len), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto& t : tensors)
    out.write(reinterpret_cast<const char*>(t.data.data()),
              static_cast<std::streamsize>(t.data.size()));
  file.commit();
}

}  // namespace fervid
