// Shape and dtype checks shared by the CPU ops.
#pragma once

#include <string>
#include <vector>

#include "fervid/error.h"
#include "fervid/tensor.h"

namespace fervid::cpu {

inline void expect(const Tensor& t, const std::vector<int64_t>& shape, DType dtype, const char* op,
                   const char* what) {
  Tensor want(nullptr, shape, dtype);
  if (t.shape() != shape || t.dtype() != dtype || t.device() == Device::Cuda || !t.data())
    fail(std::string(op) + ": " + what + " is " + t.describe() + ", expected " + want.describe());
}

}  // namespace fervid::cpu
