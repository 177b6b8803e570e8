// Buffer owns memory (host, pinned host or device) and frees it; Tensor is a non-owning view
// (shape, dtype, layout, device) over a Buffer. Tensors are dense and row-major in their layout.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace fervid {

enum class DType : uint8_t { F32, F16, BF16, U8, I32, F64 };
enum class Layout : uint8_t { Plain, NCHW, NHWC };
enum class Device : uint8_t { Host, PinnedHost, Cuda };

size_t dtype_size(DType dtype);
std::string_view dtype_name(DType dtype);
std::string_view device_name(Device device);

// Owns one allocation. The deleter knows how the memory was obtained (aligned host allocation,
// cudaMallocHost, cudaMalloc), so code outside kernels/cuda never frees device memory by hand.
class Buffer {
 public:
  using Deleter = std::function<void(void*)>;

  Buffer() = default;
  Buffer(void* data, size_t bytes, Device device, Deleter deleter);
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& other) noexcept;
  Buffer& operator=(Buffer&& other) noexcept;
  ~Buffer();

  // 64-byte aligned host memory (one AVX-512 line), uninitialised.
  static Buffer host(size_t bytes);

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void release() noexcept;

  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_ = Device::Host;
  Deleter deleter_;
};

class Tensor {
 public:
  Tensor() = default;
  Tensor(void* data, std::vector<int64_t> shape, DType dtype, Layout layout = Layout::Plain,
         Device device = Device::Host);
  // A view of the first bytes of `buffer`; fails when the buffer is too small.
  static Tensor view(const Buffer& buffer, std::vector<int64_t> shape, DType dtype,
                     Layout layout = Layout::Plain);

  void* data() const { return data_; }
  template <typename T>
  T* ptr() const {
    return static_cast<T*>(data_);
  }
  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t dim(size_t i) const { return shape_.at(i); }
  size_t rank() const { return shape_.size(); }
  int64_t numel() const;
  size_t bytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  DType dtype() const { return dtype_; }
  Layout layout() const { return layout_; }
  Device device() const { return device_; }
  std::string describe() const;  // e.g. "f32[8,64,224,224] NCHW host"

  // The same memory seen with another shape of equal element count.
  Tensor reshaped(std::vector<int64_t> shape, Layout layout = Layout::Plain) const;
  // Frames [first, first+count) of the leading dimension.
  Tensor slice(int64_t first, int64_t count) const;

 private:
  void* data_ = nullptr;
  std::vector<int64_t> shape_;
  DType dtype_ = DType::F32;
  Layout layout_ = Layout::Plain;
  Device device_ = Device::Host;
};

// A buffer together with the one tensor that fills it: what weight preparation returns.
struct OwnedTensor {
  Buffer buffer;
  Tensor tensor;
};

OwnedTensor host_tensor(std::vector<int64_t> shape, DType dtype, Layout layout = Layout::Plain);

// Counts the bytes of the buffers handed to track(), while they live; peak() is the most held
// at once. Copies share one count.
class MemoryMeter {
 public:
  Buffer track(Buffer buffer) const;
  size_t current() const { return state_->current.load(); }
  size_t peak() const { return state_->peak.load(); }

 private:
  struct State {
    std::atomic<size_t> current{0}, peak{0};
  };
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

// Scalar conversions used by the weight loader, the kernels and the tests (round to nearest
// even). The bf16 pair is inline so that a loop over them vectorises.
float half_to_float(uint16_t h);
uint16_t float_to_half(float f);
inline float bf16_to_float(uint16_t b) {
  return std::bit_cast<float>(static_cast<uint32_t>(b) << 16);
}
inline uint16_t float_to_bf16(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // NaN
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

}  // namespace fervid
