#include "fervid/backend.h"

#include <iostream>

#include "cpu/ops.h"
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
    fail("--device cuda: this build has no CUDA backend yet (the CPU backend is --device cpu)");
  }
  if (d == "auto" && gpu)
    std::cerr << "fervid: notice: a CUDA device is present but this build has no CUDA backend "
                 "yet; using the CPU backend\n";
  else if (d == "auto")
    std::cerr << "fervid: notice: " << why << "; using the CPU backend\n";
  if (!options.precision.empty() && options.precision != "fp32")
    fail("--precision " + options.precision + ": the CPU backend computes in fp32 only");
  return cpu::make_cpu_backend(options.threads);
}

}  // namespace fervid
