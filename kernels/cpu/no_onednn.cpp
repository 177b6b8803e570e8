// A build without oneDNN (FERVID_ONEDNN=OFF or no libdnnl-dev): the CPU backend's convolutions
// run on OpenBLAS (cpu::conv3x3_bias_relu) only.
#include "cpu/check.h"
#include "cpu/onednn_conv.h"

namespace fervid::cpu {

bool onednn_built() { return false; }
std::string onednn_bf16_unavailable() { return "this build has no oneDNN (FERVID_ONEDNN)"; }
std::string onednn_bf16_dot_slow() { return ""; }
std::string bf16_dot_slow_on(bool, bool, bool) { return ""; }
std::string onednn_winograd_unavailable() { return "this build has no oneDNN (FERVID_ONEDNN)"; }
std::string onednn_int8_unavailable() { return "this build has no oneDNN (FERVID_ONEDNN)"; }

struct OnednnConv::Prim {};
struct OnednnConv::Wino {};
struct OnednnConv::Plan {};

OnednnConv::OnednnConv(Tensor w, OnednnMath math, float, Int8Io) : w_(std::move(w)), math_(math) {
  fail("conv3x3_bias_relu: this build has no oneDNN (FERVID_ONEDNN)");
}
OnednnConv::~OnednnConv() = default;
void OnednnConv::run(const Tensor&, const Tensor&, bool, const Tensor&) {
  fail("no oneDNN in this build");
}
bool OnednnConv::winograd(int, int, bool) { fail("no oneDNN in this build"); }

}  // namespace fervid::cpu
