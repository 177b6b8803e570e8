// A dense layer the CUDA backend prepares (cuBLASLt with its epilogues, the flatten head) against
// the CPU reference on fresh random inputs, outputs poisoned first. Without a device every test
// skips and says why.
#include "backends/cpu/cpu_backend.h"
#include "cpu/ops.h"
#include "cuda_test_util.h"
#include "layer_util.h"

namespace fervid::test {
namespace {

TEST(CudaBackend, LinearWithEpiloguesAndFlattenMatchesCpu) {
  REQUIRE_CUDA_DEVICE();
  SeedTrace trace;
  struct Shape {
    std::vector<int64_t> x;  // [N, in] or [N, H, W, C] (flattened in CHW order)
    int out;
    bool relu, logits;
  };
  const std::vector<Shape> shapes = {{{1, 512}, 512, true, false},
                                     {{37, 512}, 256, true, false},
                                     {{5, 256}, 8, false, true},
                                     {{3, 3, 5, 16}, 33, true, false},
                                     {{2, 7, 7, 64}, 7, false, true}};
  for (const char* precision : kPrecisions) {
    auto gpu = make_cuda_backend(gpu_options(precision));
    const DType dt = gpu->compute_dtype();
    for (const Shape& s : shapes) {
      const bool flat = s.x.size() == 2;
      auto x = host_tensor(s.x, DType::F32, flat ? Layout::Plain : Layout::NHWC);
      const int64_t n = s.x[0], in = x.tensor.numel() / n;
      auto w = host_tensor({s.out, in}, DType::F32);
      auto b = host_tensor({s.out}, DType::F32);
      fill_uniform(x.tensor, -1, 1);
      fill_uniform(w.tensor, -1.0f / std::sqrt(float(in)), 1.0f / std::sqrt(float(in)));
      fill_uniform(b.tensor, -0.5f, 0.5f);
      round_to(x.tensor, dt);
      round_to(w.tensor, dt);
      if (!s.logits) round_to(b.tensor, dt);
      auto ref = host_tensor({n, s.out}, DType::F32);
      cpu::linear(x.tensor, w.tensor, b.tensor, s.relu, ref.tensor);

      const Flatten flatten =
          flat ? Flatten{} : Flatten{s.x[1], s.x[2], s.x[3]};  // fc1 after the flatten head
      auto layer = prepare_dense(*gpu, w.tensor, b.tensor, s.relu, s.logits, flatten);
      auto gx = to_device(*gpu, x.tensor, dt);
      auto gy = to_device(*gpu, ref.tensor, s.logits ? DType::F32 : dt, true);
      run_layer(*layer, gx.tensor, gy.tensor);
      std::vector<float> got = to_host(*gpu, gy.tensor);
      std::vector<double> want = as_f64(ref.tensor);
      expect_close(got.data(), want, op_tolerance(precision, rms(want)),
                   std::string("cuda linear ") + precision + " " + x.tensor.describe() + " -> " +
                       std::to_string(s.out) + (s.relu ? " relu" : "") +
                       (s.logits ? " (f32 logits)" : ""));
    }
  }
}

}  // namespace
}  // namespace fervid::test
