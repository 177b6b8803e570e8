#include "fervid/cuda_probe.h"

namespace fervid {

bool cuda_device_available(std::string* why) {
  if (why) *why = "this fervid was built without CUDA (FERVID_CUDA=OFF or no nvcc)";
  return false;
}
std::string cuda_device_summary() { return "none (built without CUDA)"; }
bool cuda_built() { return false; }

}  // namespace fervid
