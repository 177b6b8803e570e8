// A global average pool layer the CUDA backend prepares, and the maxpool2x2 kernel, against the CPU
// reference on fresh random inputs, outputs poisoned first. Without a device every test skips and
// says why.
#include "backends/cpu/cpu_backend.h"
#include "cpu/ops.h"
#include "cuda/ops.h"
#include "cuda_test_util.h"
#include "layer_util.h"

namespace fervid::test {
namespace {

TEST(CudaBackend, GlobalAvgpoolAndMaxpoolThroughTheBackend) {
  REQUIRE_CUDA_DEVICE();
  SeedTrace trace;
  for (const char* precision : {"fp32", "fp16", "bf16"}) {
    auto gpu = make_cuda_backend(gpu_options(precision));
    const DType dt = gpu->compute_dtype();
    for (auto [n, h, w, c] : {std::array<int, 4>{1, 7, 7, 512}, {5, 13, 17, 65}, {2, 1, 1, 3}}) {
      auto x = host_tensor({n, h, w, c}, DType::F32, Layout::NHWC);
      fill_uniform(x.tensor, 0, 4);
      round_to(x.tensor, dt);
      auto ref = host_tensor({n, c}, DType::F32);
      cpu::global_avgpool(x.tensor, ref.tensor);
      auto gx = to_device(*gpu, x.tensor, dt);
      auto gy = to_device(*gpu, ref.tensor, dt, true);
      run_layer(*prepare_global_avgpool(*gpu, c), gx.tensor, gy.tensor);
      std::vector<float> got = to_host(*gpu, gy.tensor);
      std::vector<double> want = as_f64(ref.tensor);
      expect_close(got.data(), want, op_tolerance(precision, rms(want)),
                   std::string("cuda gap ") + precision + " " + x.tensor.describe());
      if (h < 2) continue;
      auto pref = host_tensor({n, h / 2, w / 2, c}, DType::F32, Layout::NHWC);
      cpu::maxpool2x2(x.tensor, pref.tensor);
      auto gp = to_device(*gpu, pref.tensor, dt, true);
      cuda::maxpool2x2(gx.tensor, gp.tensor, nullptr);
      FV_CUDA_CHECK(cudaDeviceSynchronize());  // the default stream, not the backend's
      got = to_host(*gpu, gp.tensor);
      expect_close(got.data(), as_f64(pref.tensor), {0, 0, 0},
                   std::string("cuda maxpool ") + precision + " " + x.tensor.describe());
    }
  }
}

}  // namespace
}  // namespace fervid::test
