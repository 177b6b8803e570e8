#include "fervid/tensor.h"

#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>
#include <utility>

#include "fervid/error.h"

namespace fervid {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return 4;
    case DType::F16:
      return 2;
    case DType::BF16:
      return 2;
    case DType::U8:
      return 1;
    case DType::I32:
      return 4;
    case DType::F64:
      return 8;
  }
  return 0;
}

std::string_view dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return "f32";
    case DType::F16:
      return "f16";
    case DType::BF16:
      return "bf16";
    case DType::U8:
      return "u8";
    case DType::I32:
      return "i32";
    case DType::F64:
      return "f64";
  }
  return "?";
}

std::string_view device_name(Device device) {
  switch (device) {
    case Device::Host:
      return "host";
    case Device::PinnedHost:
      return "pinned";
    case Device::Cuda:
      return "cuda";
  }
  return "?";
}

Buffer::Buffer(void* data, size_t bytes, Device device, Deleter deleter)
    : data_(data), bytes_(bytes), device_(device), deleter_(std::move(deleter)) {}

Buffer::Buffer(Buffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      bytes_(std::exchange(other.bytes_, 0)),
      device_(other.device_),
      deleter_(std::move(other.deleter_)) {}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
    device_ = other.device_;
    deleter_ = std::move(other.deleter_);
  }
  return *this;
}

Buffer::~Buffer() { release(); }

void Buffer::release() noexcept {
  if (data_ && deleter_) {
    try {
      deleter_(data_);
    } catch (const std::exception& e) {
      std::cerr << "fervid: freeing a buffer failed: " << e.what() << "\n";
    }
  }
  data_ = nullptr;
  bytes_ = 0;
}

Buffer Buffer::host(size_t bytes) {
  constexpr size_t kAlign = 64;
  size_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
  if (rounded == 0) rounded = kAlign;
  void* p = std::aligned_alloc(kAlign, rounded);
  if (!p) fail("out of host memory allocating " + std::to_string(bytes) + " bytes");
  return Buffer(p, bytes, Device::Host, [](void* q) { std::free(q); });
}

Buffer MemoryMeter::track(Buffer buffer) const {
  const size_t bytes = buffer.bytes();
  void* data = buffer.data();
  const Device device = buffer.device();
  auto owner = std::make_shared<Buffer>(std::move(buffer));
  const size_t now = state_->current.fetch_add(bytes) + bytes;
  size_t peak = state_->peak.load();
  while (now > peak && !state_->peak.compare_exchange_weak(peak, now)) {
  }
  return Buffer(data, bytes, device, [owner, state = state_, bytes](void*) mutable {
    owner.reset();
    state->current.fetch_sub(bytes);
  });
}

Tensor::Tensor(void* data, std::vector<int64_t> shape, DType dtype, Layout layout, Device device)
    : data_(data), shape_(std::move(shape)), dtype_(dtype), layout_(layout), device_(device) {
  for (int64_t d : shape_)
    if (d < 0) fail("negative tensor dimension in " + describe());
}

Tensor Tensor::view(const Buffer& buffer, std::vector<int64_t> shape, DType dtype, Layout layout) {
  Tensor t(buffer.data(), std::move(shape), dtype, layout, buffer.device());
  if (t.bytes() > buffer.bytes())
    fail("tensor " + t.describe() + " does not fit its buffer of " +
         std::to_string(buffer.bytes()) + " bytes");
  return t;
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape_) n *= d;
  return n;
}

std::string Tensor::describe() const {
  std::ostringstream s;
  s << dtype_name(dtype_) << "[";
  for (size_t i = 0; i < shape_.size(); ++i) s << (i ? "," : "") << shape_[i];
  s << "]";
  if (layout_ == Layout::NCHW) s << " NCHW";
  if (layout_ == Layout::NHWC) s << " NHWC";
  s << " " << device_name(device_);
  return s.str();
}

Tensor Tensor::reshaped(std::vector<int64_t> shape, Layout layout) const {
  Tensor t(data_, std::move(shape), dtype_, layout, device_);
  if (t.numel() != numel()) fail("cannot reshape " + describe() + " to " + t.describe());
  return t;
}

Tensor Tensor::slice(int64_t first, int64_t count) const {
  if (shape_.empty() || first < 0 || count < 0 || first + count > shape_[0])
    fail("slice [" + std::to_string(first) + ", +" + std::to_string(count) + ") outside " +
         describe());
  std::vector<int64_t> shape = shape_;
  shape[0] = count;
  size_t row = shape_[0] ? bytes() / static_cast<size_t>(shape_[0]) : 0;
  return Tensor(static_cast<char*>(data_) + row * first, shape, dtype_, layout_, device_);
}

OwnedTensor host_tensor(std::vector<int64_t> shape, DType dtype, Layout layout) {
  Tensor probe(nullptr, shape, dtype, layout);
  OwnedTensor out;
  out.buffer = Buffer::host(probe.bytes());
  out.tensor = Tensor::view(out.buffer, std::move(shape), dtype, layout);
  return out;
}

float half_to_float(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400u) == 0);
      bits = sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (mant & 0x3ffu) << 13;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | mant << 13;
  } else {
    bits = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  return std::bit_cast<float>(bits);
}

uint16_t float_to_half(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u)
    return static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0));
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to infinity
  if (abs < 0x38800000u) {  // result is subnormal or zero: round abs / 2^-24 to an integer
    float v = std::bit_cast<float>(abs) * 16777216.0f;  // exact scaling by 2^24
    uint32_t m = static_cast<uint32_t>(std::nearbyint(v));
    return static_cast<uint16_t>(sign | m);
  }
  uint32_t mant = abs & 0x7fffffu;
  uint32_t exp = (abs >> 23) - 127 + 15;
  uint32_t h = exp << 10 | mant >> 13;
  uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // round to nearest even
  return static_cast<uint16_t>(sign | h);
}

}  // namespace fervid
