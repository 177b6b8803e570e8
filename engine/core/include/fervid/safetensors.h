// Safetensors: 8-byte little-endian header length N, N bytes of JSON header, then raw tensor
// bytes. The reader memory-maps the file and checks everything before any tensor is used: header
// length against the file, JSON shape, every dtype, shape and offset, no overlap, no hole, and all
// data inside the file. The writer writes to a temporary name and renames when complete.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <span>
#include <string>
#include <vector>

namespace fervid {

enum class StDType {
  F64,
  F32,
  F16,
  BF16,
  I64,
  I32,
  I16,
  I8,
  U8,
  U64,
  U32,
  U16,
  BOOL,
  F8_E4M3,
  F8_E5M2
};

struct StTensorInfo {
  std::string name;
  StDType dtype = StDType::F32;
  std::string dtype_text;
  std::vector<int64_t> shape;
  size_t begin = 0;  // offsets into the data region
  size_t end = 0;
  int64_t numel() const;
};

class SafetensorsFile {
 public:
  // Throws fervid::Error "<path>: <reason>" for any malformed file.
  static SafetensorsFile open(const std::string& path);

  SafetensorsFile(SafetensorsFile&& other) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&& other) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  ~SafetensorsFile();

  const std::string& path() const { return path_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::vector<StTensorInfo>& tensors() const { return tensors_; }  // sorted by offset
  const StTensorInfo* find(const std::string& name) const;
  std::span<const std::byte> bytes(const StTensorInfo& info) const;
  size_t file_size() const { return size_; }

 private:
  void read_header(const nlohmann::json& header, size_t data_size);
  StTensorInfo tensor_entry(const std::string& name, const nlohmann::json& v,
                            size_t data_size) const;
  SafetensorsFile() = default;
  void unmap() noexcept;

  std::string path_;
  void* map_ = nullptr;
  size_t size_ = 0;
  const std::byte* data_ = nullptr;  // start of the data region
  std::map<std::string, std::string> metadata_;
  std::vector<StTensorInfo> tensors_;
};

size_t st_dtype_size(StDType dtype);
const char* st_dtype_name(StDType dtype);

struct StTensorOut {
  std::string name;
  StDType dtype = StDType::F32;
  std::vector<int64_t> shape;
  std::vector<std::byte> data;
};

void write_safetensors(const std::string& path, const std::vector<StTensorOut>& tensors,
                       const std::map<std::string, std::string>& metadata);

}  // namespace fervid
