// Grad-CAM on the device (the CUDA backend's DeviceGradcam: kernels/cuda/gradcam.cu and
// GradcamHead's cuBLASLt GEMMs) against the CPU reference cpu::gradcam (float64) on fresh random
// activations, both heads, named classes and the top one; maps and logits poisoned first.
// f16/bf16 activations are rounded first, so the reference sees what the device holds and the
// bound is the f32 arithmetic's. Without a device every test skips and says why.
#include "backends/cpu/cpu_backend.h"
#include "cpu/ops.h"
#include "cuda_test_util.h"

namespace fervid::test {
namespace {

struct HostLayer {
  OwnedTensor w, b;
  bool relu;
};

TEST(CudaGradcam, MapsAndLogitsMatchTheCpuReference) {
  REQUIRE_CUDA_DEVICE();
  SeedTrace trace;
  for (const char* precision : {"fp32", "fp16", "bf16"}) {
    auto gpu = make_cuda_backend(gpu_options(precision));
    const DType dt = gpu->compute_dtype();
    DeviceGradcam* device = gpu->device_gradcam();
    ASSERT_NE(device, nullptr);
    for (Head head : {Head::Gap, Head::Flatten}) {
      // Shapes like VGG's end, smaller: acts [n,h,w,k], pooled [h/2,w/2], dense in -> 24 -> 5;
      // an odd size drops a row and a column to the pool.
      for (auto [n, h, w, k] : {std::array<int, 4>{3, 6, 6, 16}, {2, 7, 9, 40}}) {
        SCOPED_TRACE(std::string(precision) + (head == Head::Gap ? " gap " : " flatten ") +
                     std::to_string(h) + "x" + std::to_string(w) + "x" + std::to_string(k));
        const int features = head == Head::Gap ? k : k * (h / 2) * (w / 2), classes = 5;
        std::vector<HostLayer> layers;
        int in = features;
        for (auto [out, relu] : {std::pair{24, true}, std::pair{classes, false}}) {
          HostLayer l{host_tensor({out, in}, DType::F32), host_tensor({out}, DType::F32), relu};
          fill_uniform(l.w.tensor, -0.5f, 0.5f);
          fill_uniform(l.b.tensor, -0.1f, 0.3f);
          layers.push_back(std::move(l));
          in = out;
        }
        std::vector<DenseWeights> ref_dense;
        std::vector<DenseWeights> dev_dense;
        for (const HostLayer& l : layers) {
          ref_dense.push_back({&l.w.tensor, &l.b.tensor, l.relu});
          dev_dense.push_back({&l.w.tensor, &l.b.tensor, l.relu});
        }
        auto acts = host_tensor({n, h, w, k}, DType::F32, Layout::NHWC);
        fill_uniform(acts.tensor, 0, 2);  // activated outputs: >= 0
        round_to(acts.tensor, dt);
        const int S = 20;
        std::vector<int> want_cls(size_t(n), -1), got_cls(size_t(n), -1);
        want_cls[0] = got_cls[0] = 2;  // a named class; the others the top one
        auto want_maps = host_tensor({n, S, S}, DType::F32);
        auto want_logits = host_tensor({n, classes}, DType::F32);
        cpu::gradcam(acts.tensor, head, ref_dense, want_cls, want_maps.tensor, want_logits.tensor);
        auto got_maps = host_tensor({n, S, S}, DType::F32);
        auto got_logits = host_tensor({n, classes}, DType::F32);
        poison(got_maps.tensor);
        poison(got_logits.tensor);
        auto dev_acts = to_device(*gpu, acts.tensor, dt);
        device->gradcam(dev_acts.tensor, head, dev_dense, got_cls, got_maps.tensor,
                        got_logits.tensor);
        EXPECT_EQ(got_cls, want_cls);
        const std::vector<double> lg = as_f64(want_logits.tensor), maps = as_f64(want_maps.tensor);
        expect_close(got_logits.tensor.ptr<const float>(), lg, op_tolerance("fp32", rms(lg)),
                     "cuda gradcam logits");
        expect_close(got_maps.tensor.ptr<const float>(), maps, op_tolerance("fp32", rms(maps)),
                     "cuda gradcam maps");
      }
    }
  }
}

}  // namespace
}  // namespace fervid::test
