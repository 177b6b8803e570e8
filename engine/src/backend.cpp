#include "fervid/backend.h"

#include <iostream>

#include "cpu/ops.h"
#include "fervid/cuda_backend.h"
#include "fervid/cuda_probe.h"
#include "fervid/error.h"

namespace fervid {

void check_conv_impl(const BackendOptions& options) {
  const std::string& impl = options.conv_impl;
  if (impl != "auto" && impl != "cudnn" && impl != "fervid")
    fail("--conv-impl " + impl + ": expected auto, cudnn or fervid");
  if (impl == "fervid" && (options.precision == "fp32" || options.precision == "tf32"))
    fail("--conv-impl fervid: fervid's conv3x3 computes in fp16 or bf16, not " + options.precision +
         " (use --conv-impl cudnn or --precision fp16|bf16)");
}

std::unique_ptr<Backend> make_backend(const BackendOptions& options) {
  const std::string& d = options.device;
  if (d != "auto" && d != "cpu" && d != "cuda")
    fail("--device " + d + ": expected auto, cpu or cuda");
  check_conv_impl(options);
  const std::string& impl = options.conv_impl;
  std::string why;
  const bool gpu = d != "cpu" && cuda_device_available(&why);
  if (d == "cuda") {
    if (!gpu) fail("--device cuda: " + why);
    return make_cuda_backend(options);
  }
  const bool gpu_precision =
      options.precision == "tf32" || options.precision == "fp16" || options.precision == "bf16";
  if (!options.precision.empty() && options.precision != "fp32" && !gpu_precision)
    fail("--precision " + options.precision + ": expected fp32, tf32, fp16 or bf16");
  if (d == "auto" && gpu) return make_cuda_backend(options);
  if (d == "auto") {
    std::cerr << "fervid: notice: " << why << "; using the CPU backend";
    if (gpu_precision) std::cerr << " (fp32; --precision " << options.precision << " is for GPUs)";
    if (impl != "auto") std::cerr << " (--conv-impl " << impl << " is for GPUs)";
    std::cerr << "\n";
  } else if (gpu_precision) {
    fail("--precision " + options.precision + ": the CPU backend computes in fp32 only");
  } else if (impl != "auto") {
    fail("--conv-impl " + impl + ": the CPU backend has one conv3x3 (choose with --device cuda)");
  }
  return cpu::make_cpu_backend(options.threads);
}

}  // namespace fervid
