// Shared by the CUDA tests (tests/cuda/): the device check that skips with the reason, backends
// for a precision, device copies of host tensors (poisoned on request) and back, and the
// tolerances of docs/design.md per precision.
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/cuda/cuda_backend.h"
#include "backends/cuda/cuda_probe.h"
#include "cuda/check.h"
#include "cuda/runtime.h"
#include "test_util.h"

namespace fervid::test {

#define REQUIRE_CUDA_DEVICE()                              \
  do {                                                     \
    std::string why;                                       \
    if (!cuda_device_available(&why)) GTEST_SKIP() << why; \
  } while (0)

// The CUDA backend's options for `precision` and `conv_impl` (their flag texts).
inline BackendOptions gpu_options(const std::string& precision,
                                  const std::string& conv_impl = "auto", bool graphs = true) {
  BackendOptions o;
  o.device = DeviceChoice::Cuda;
  o.precision = parse_precision(precision);
  o.conv_impl = parse_conv_impl(conv_impl);
  o.cuda_graphs = graphs;
  return o;
}

// A device copy of a host tensor, owned by the returned buffer.
struct DeviceTensor {
  Buffer buffer;
  Tensor tensor;
};

inline DeviceTensor upload(const Tensor& host) {
  DeviceTensor d{cuda::device_buffer(host.bytes()), {}};
  d.tensor = Tensor(d.buffer.data(), host.shape(), host.dtype(), host.layout(), Device::Cuda);
  FV_CUDA_CHECK(cudaMemcpy(d.buffer.data(), host.data(), host.bytes(), cudaMemcpyHostToDevice));
  return d;
}

inline void download(const Tensor& host, const Tensor& dev) {
  FV_CUDA_CHECK(cudaDeviceSynchronize());
  FV_CUDA_CHECK(cudaMemcpy(host.data(), dev.data(), host.bytes(), cudaMemcpyDeviceToHost));
}

inline const char* kPrecisions[] = {"fp32", "tf32", "fp16", "bf16"};

inline DType dtype_of(const std::string& precision) {
  return precision == "fp16" ? DType::F16 : precision == "bf16" ? DType::BF16 : DType::F32;
}

// Per-op bounds (docs/design.md's relative L2 per precision); the element-wise atol is relative to
// the reference's RMS so that it means the same at every magnitude.
inline Tolerance op_tolerance(const std::string& precision, double rms) {
  if (precision == "fp32") return {1e-5 * rms, 1e-4, 1e-5};
  if (precision == "tf32") return {5e-3 * rms, 5e-3, 5e-3};
  if (precision == "fp16") return {4e-3 * rms, 4e-3, 2e-2};
  return {3e-2 * rms, 3e-2, 2e-2};  // bf16: 8 mantissa bits
}

inline double rms(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return v.empty() ? 0 : std::sqrt(s / double(v.size()));
}

// Rounds host f32 values to what `dtype` can hold (the reference then sees the same inputs).
inline void round_to(const Tensor& t, DType dtype) {
  float* p = t.ptr<float>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (dtype == DType::F16) p[i] = half_to_float(float_to_half(p[i]));
    if (dtype == DType::BF16) p[i] = bf16_to_float(float_to_bf16(p[i]));
  }
}

// A device tensor of `dtype` holding the host f32 values (NaN everywhere when `poisoned`).
inline OwnedTensor to_device(Backend& be, const Tensor& host, DType dtype, bool poisoned = false) {
  OwnedTensor t;
  t.buffer = be.allocate(size_t(host.numel()) * dtype_size(dtype));
  t.tensor = Tensor::view(t.buffer, host.shape(), dtype, host.layout());
  std::vector<uint8_t> bytes(t.tensor.bytes());
  for (int64_t i = 0; i < host.numel(); ++i) {
    const float v = poisoned ? std::nanf("") : host.ptr<const float>()[i];
    if (dtype == DType::F32) std::memcpy(bytes.data() + 4 * i, &v, 4);
    if (dtype == DType::F16) reinterpret_cast<uint16_t*>(bytes.data())[i] = float_to_half(v);
    if (dtype == DType::BF16) reinterpret_cast<uint16_t*>(bytes.data())[i] = float_to_bf16(v);
  }
  be.copy_from_host(t.tensor, bytes.data());
  return t;
}

// Writes NaN over every element of a device tensor (f32, f16 or bf16).
inline void poison_device(Backend& be, const Tensor& dev) {
  std::vector<uint8_t> bytes(dev.bytes());
  const float nan = std::nanf("");
  for (int64_t i = 0; i < dev.numel(); ++i) {
    if (dev.dtype() == DType::F32) std::memcpy(bytes.data() + 4 * i, &nan, 4);
    if (dev.dtype() == DType::F16)
      reinterpret_cast<uint16_t*>(bytes.data())[i] = float_to_half(nan);
    if (dev.dtype() == DType::BF16)
      reinterpret_cast<uint16_t*>(bytes.data())[i] = float_to_bf16(nan);
  }
  be.copy_from_host(dev, bytes.data());
}

inline std::vector<float> to_host(Backend& be, const Tensor& dev) {
  std::vector<uint8_t> bytes(dev.bytes());
  be.copy_to_host(bytes.data(), dev);
  std::vector<float> out(size_t(dev.numel()));
  for (size_t i = 0; i < out.size(); ++i) {
    if (dev.dtype() == DType::F32) std::memcpy(&out[i], bytes.data() + 4 * i, 4);
    if (dev.dtype() == DType::F16)
      out[i] = half_to_float(reinterpret_cast<uint16_t*>(bytes.data())[i]);
    if (dev.dtype() == DType::BF16)
      out[i] = bf16_to_float(reinterpret_cast<uint16_t*>(bytes.data())[i]);
  }
  return out;
}

inline std::vector<double> as_f64(const Tensor& t) {
  return std::vector<double>(t.ptr<const float>(), t.ptr<const float>() + t.numel());
}

// f32 reference values as the device stores them in `precision`'s compute type.
inline std::vector<double> rounded_like(const std::string& precision, std::vector<double> v) {
  if (precision == "fp16")
    for (double& x : v) x = half_to_float(float_to_half(float(x)));
  if (precision == "bf16")
    for (double& x : v) x = bf16_to_float(float_to_bf16(float(x)));
  return v;
}

// A device copy of a host tensor of any dtype, bytes as they are.
inline OwnedTensor raw_to_device(Backend& be, const Tensor& host) {
  OwnedTensor t;
  t.buffer = be.allocate(host.bytes());
  t.tensor = Tensor::view(t.buffer, host.shape(), host.dtype(), host.layout());
  be.copy_from_host(t.tensor, host.data());
  return t;
}

}  // namespace fervid::test
