#include "fervid/backend.h"

#include <iostream>

#include "cpu/ops.h"
#include "fervid/cuda_backend.h"
#include "fervid/cuda_probe.h"
#include "fervid/error.h"

namespace fervid {

std::unique_ptr<Backend> make_backend(const BackendOptions& options) {
  const std::string& d = options.device;
  if (d != "auto" && d != "cpu" && d != "cuda")
    fail("--device " + d + ": expected auto, cpu or cuda");
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
    std::cerr << "\n";
  } else if (gpu_precision) {
    fail("--precision " + options.precision + ": the CPU backend computes in fp32 only");
  }
  return cpu::make_cpu_backend(options.threads);
}

}  // namespace fervid
