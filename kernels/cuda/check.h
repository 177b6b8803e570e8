// Checked calls for CUDA, cuDNN and cuBLAS: a failing status throws fervid::Error naming the
// expression, the status, the file and the line. A kernel launch is followed by
// FV_CUDA_CHECK(cudaGetLastError()).
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <string>

#include "fervid/error.h"

namespace fervid::cuda {

[[noreturn]] inline void throw_call_error(const char* lib, const char* expr,
                                          const std::string& status, const char* file, int line) {
  fail_device(std::string(lib) + " call " + expr + " failed: " + status + " at " + file + ":" +
              std::to_string(line));
}

}  // namespace fervid::cuda

#define FV_CUDA_CHECK(expr)                                                                        \
  do {                                                                                             \
    cudaError_t fv_status_ = (expr);                                                               \
    if (fv_status_ != cudaSuccess)                                                                 \
      ::fervid::cuda::throw_call_error(                                                            \
          "CUDA", #expr,                                                                           \
          std::string(cudaGetErrorName(fv_status_)) + " (" + cudaGetErrorString(fv_status_) + ")", \
          __FILE__, __LINE__);                                                                     \
  } while (0)

#define FV_CUDNN_CHECK(expr)                                                                      \
  do {                                                                                            \
    cudnnStatus_t fv_status_ = (expr);                                                            \
    if (fv_status_ != CUDNN_STATUS_SUCCESS)                                                       \
      ::fervid::cuda::throw_call_error("cuDNN", #expr, cudnnGetErrorString(fv_status_), __FILE__, \
                                       __LINE__);                                                 \
  } while (0)

#define FV_CUBLAS_CHECK(expr)                                                                \
  do {                                                                                       \
    cublasStatus_t fv_status_ = (expr);                                                      \
    if (fv_status_ != CUBLAS_STATUS_SUCCESS)                                                 \
      ::fervid::cuda::throw_call_error("cuBLAS", #expr, cublasLtGetStatusString(fv_status_), \
                                       __FILE__, __LINE__);                                  \
  } while (0)
