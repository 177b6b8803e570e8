// The CUDA backend's functions in a build without CUDA (FERVID_CUDA=OFF or no nvcc): no device,
// and a one-line refusal.
#include "backends/cuda/cuda_backend.h"
#include "backends/cuda/cuda_probe.h"
#include "fervid/error.h"

namespace fervid {

bool cuda_device_available(std::string* why) {
  if (why) *why = "this fervid was built without CUDA (FERVID_CUDA=OFF or no nvcc)";
  return false;
}
std::string cuda_device_summary() { return "none (built without CUDA)"; }
bool cuda_built() { return false; }
void* cuda_runtime_context(std::string* why) {
  cuda_device_available(why);
  return nullptr;
}
std::string cuda_library_versions() { return "none (built without CUDA)"; }

std::unique_ptr<Backend> make_cuda_backend(const BackendOptions&) {
  fail_device("{{device}} cuda: this fervid was built without CUDA (FERVID_CUDA=OFF or no nvcc)");
}

}  // namespace fervid
