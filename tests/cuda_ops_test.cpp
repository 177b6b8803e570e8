// The hand-written CUDA ops against the CPU reference ops on fresh random inputs, outputs
// poisoned first. Without a device every test skips and says why.
#include <cuda_runtime.h>

#include "check.h"
#include "cpu/ops.h"
#include "cuda/ops.h"
#include "fervid/cuda_probe.h"
#include "runtime.h"
#include "test_util.h"

namespace fervid::test {
namespace {

#define REQUIRE_CUDA_DEVICE()                              \
  do {                                                     \
    std::string why;                                       \
    if (!cuda_device_available(&why)) GTEST_SKIP() << why; \
  } while (0)

// A device copy of a host tensor, owned by the returned buffer.
struct DeviceTensor {
  Buffer buffer;
  Tensor tensor;
};

DeviceTensor upload(const Tensor& host) {
  DeviceTensor d{cuda::device_buffer(host.bytes()), {}};
  d.tensor = Tensor(d.buffer.data(), host.shape(), host.dtype(), host.layout(), Device::Cuda);
  FV_CUDA_CHECK(cudaMemcpy(d.buffer.data(), host.data(), host.bytes(), cudaMemcpyHostToDevice));
  return d;
}

void download(const Tensor& host, const Tensor& dev) {
  FV_CUDA_CHECK(cudaDeviceSynchronize());
  FV_CUDA_CHECK(cudaMemcpy(host.data(), dev.data(), host.bytes(), cudaMemcpyDeviceToHost));
}

TEST(CudaMaxpool2x2, MatchesCpuInF32AndF16) {
  REQUIRE_CUDA_DEVICE();
  SeedTrace trace;
  for (auto [n, h, w, c] : {std::array<int, 4>{1, 4, 4, 3}, {3, 13, 17, 64}, {2, 224, 224, 64}}) {
    auto x = host_tensor({n, h, w, c}, DType::F32);
    fill_uniform(x.tensor, -4, 4);
    auto ref = host_tensor({n, h / 2, w / 2, c}, DType::F32);
    cpu::maxpool2x2(x.tensor, ref.tensor);
    std::vector<double> want(ref.tensor.ptr<float>(), ref.tensor.ptr<float>() + ref.tensor.numel());
    // f32
    auto dx = upload(x.tensor);
    auto got = host_tensor({n, h / 2, w / 2, c}, DType::F32);
    poison(got.tensor);
    auto dy = upload(got.tensor);
    cuda::maxpool2x2(dx.tensor, dy.tensor, nullptr);
    download(got.tensor, dy.tensor);
    expect_close(got.tensor.ptr<float>(), want, {0, 0, 0}, "cuda maxpool2x2 f32");
    // f16: inputs rounded first, so the max is exact again
    auto xh = host_tensor({n, h, w, c}, DType::F16);
    for (int64_t i = 0; i < x.tensor.numel(); ++i) {
      uint16_t v = float_to_half(x.tensor.ptr<float>()[i]);
      xh.tensor.ptr<uint16_t>()[i] = v;
      x.tensor.ptr<float>()[i] = half_to_float(v);
    }
    cpu::maxpool2x2(x.tensor, ref.tensor);
    want.assign(ref.tensor.ptr<float>(), ref.tensor.ptr<float>() + ref.tensor.numel());
    auto dxh = upload(xh.tensor);
    auto goth = host_tensor({n, h / 2, w / 2, c}, DType::F16);
    poison(goth.tensor);
    auto dyh = upload(goth.tensor);
    cuda::maxpool2x2(dxh.tensor, dyh.tensor, nullptr);
    download(goth.tensor, dyh.tensor);
    std::vector<float> as_float(size_t(goth.tensor.numel()));
    for (size_t i = 0; i < as_float.size(); ++i)
      as_float[i] = half_to_float(goth.tensor.ptr<uint16_t>()[i]);
    expect_close(as_float.data(), want, {0, 0, 0}, "cuda maxpool2x2 f16");
  }
}

TEST(CudaBiasRelu, MatchesFloat64InEveryDtype) {
  REQUIRE_CUDA_DEVICE();
  SeedTrace trace;
  for (auto [rows, k] : {std::array<int, 2>{1, 3}, {13 * 17, 64}, {2 * 7 * 7, 513}}) {
    auto y = host_tensor({rows, k}, DType::F32);
    auto b = host_tensor({k}, DType::F32);
    fill_uniform(y.tensor, -3, 3);
    fill_uniform(b.tensor, -1, 1);
    for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
      // inputs rounded to dt first; the sum is exact in f32 then rounded once to dt
      auto round = [&](float v) {
        return dt == DType::F16    ? half_to_float(float_to_half(v))
               : dt == DType::BF16 ? bf16_to_float(float_to_bf16(v))
                                   : v;
      };
      auto encode = [&](const Tensor& src) {
        auto t = host_tensor(src.shape(), dt);
        for (int64_t i = 0; i < src.numel(); ++i) {
          const float v = src.ptr<float>()[i];
          if (dt == DType::F32) t.tensor.ptr<float>()[i] = v;
          if (dt == DType::F16) t.tensor.ptr<uint16_t>()[i] = float_to_half(v);
          if (dt == DType::BF16) t.tensor.ptr<uint16_t>()[i] = float_to_bf16(v);
        }
        return t;
      };
      std::vector<double> want(size_t(rows) * k);
      for (int r = 0; r < rows; ++r)
        for (int j = 0; j < k; ++j)
          want[size_t(r) * k + j] = round(std::max(
              round(y.tensor.ptr<float>()[r * k + j]) + round(b.tensor.ptr<float>()[j]), 0.0f));
      auto hy = encode(y.tensor), hb = encode(b.tensor);
      auto dy = upload(hy.tensor), db = upload(hb.tensor);
      cuda::bias_relu(dy.tensor, db.tensor, nullptr);
      // In place, so nothing to poison: an element left unwritten keeps y, which differs from
      // the reference wherever y + b != y or y < 0.
      auto got = host_tensor({rows, k}, dt);
      download(got.tensor, dy.tensor);
      std::vector<float> as_float(size_t(rows) * k);
      for (size_t i = 0; i < as_float.size(); ++i)
        as_float[i] = dt == DType::F32   ? got.tensor.ptr<float>()[i]
                      : dt == DType::F16 ? half_to_float(got.tensor.ptr<uint16_t>()[i])
                                         : bf16_to_float(got.tensor.ptr<uint16_t>()[i]);
      expect_close(as_float.data(), want, {0, 0, 0},
                   std::string("cuda bias_relu ") + std::string(dtype_name(dt)));
    }
  }
}

TEST(CudaSoftmaxArgmax, MatchesCpu) {
  REQUIRE_CUDA_DEVICE();
  SeedTrace trace;
  for (auto [n, c] : {std::array<int, 2>{1, 8}, {37, 8}, {5, 1000}}) {
    auto logits = host_tensor({n, c}, DType::F32);
    fill_uniform(logits.tensor, -20, 20);
    logits.tensor.ptr<float>()[1] = logits.tensor.ptr<float>()[0] = 25;  // a tie in frame 0
    auto probs = host_tensor({n, c}, DType::F32);
    auto labels = host_tensor({n}, DType::I32);
    cpu::softmax_argmax(logits.tensor, probs.tensor, labels.tensor);
    auto dl = upload(logits.tensor);
    auto gp = host_tensor({n, c}, DType::F32);
    auto gl = host_tensor({n}, DType::I32);
    poison(gp.tensor);
    poison(gl.tensor);
    auto dp = upload(gp.tensor);
    auto dlab = upload(gl.tensor);
    cuda::softmax_argmax(dl.tensor, dp.tensor, dlab.tensor, nullptr);
    download(gp.tensor, dp.tensor);
    download(gl.tensor, dlab.tensor);
    std::vector<double> want(probs.tensor.ptr<float>(), probs.tensor.ptr<float>() + n * c);
    expect_close(gp.tensor.ptr<float>(), want, {1e-7, 1e-5, 1e-6}, "cuda softmax");
    for (int i = 0; i < n; ++i)
      EXPECT_EQ(gl.tensor.ptr<int32_t>()[i], labels.tensor.ptr<int32_t>()[i]) << "frame " << i;
  }
}

TEST(CudaVote, IdenticalToCpuAcrossBatchesWithTies) {
  REQUIRE_CUDA_DEVICE();
  SeedTrace trace;
  const int classes = 8, slots = 4, frames = 16;
  for (VoteMode mode : {VoteMode::Majority, VoteMode::Confidence}) {
    auto counts = host_tensor({slots, classes}, DType::I32);
    auto sums = host_tensor({slots, classes}, DType::F64);
    std::memset(counts.tensor.data(), 0, counts.tensor.bytes());
    std::memset(sums.tensor.data(), 0, sums.tensor.bytes());
    auto dcounts = upload(counts.tensor);
    auto dsums = upload(sums.tensor);
    for (int batch = 0; batch < 3; ++batch) {
      auto probs = host_tensor({frames, classes}, DType::F32);
      auto labels = host_tensor({frames}, DType::I32);
      // probabilities from a small set so that sums and counts tie often
      for (int64_t i = 0; i < probs.tensor.numel(); ++i)
        probs.tensor.ptr<float>()[i] = 0.125f * float(rng()() % 3);
      for (int f = 0; f < frames; ++f) labels.tensor.ptr<int32_t>()[f] = int(rng()() % 3);
      std::vector<Segment> segs = {{0, 5, 1}, {5, 1, 3}, {6, 10, batch == 1 ? 0 : 2}};
      cpu::vote_accumulate(probs.tensor, labels.tensor, segs, counts.tensor, sums.tensor);
      auto dp = upload(probs.tensor);
      auto dl = upload(labels.tensor);
      auto seg_host = Tensor(segs.data(), {int64_t(segs.size() * sizeof(Segment))}, DType::U8);
      auto dseg = upload(seg_host);
      cuda::vote_accumulate(dp.tensor, dl.tensor, static_cast<const Segment*>(dseg.buffer.data()),
                            int(segs.size()), dcounts.tensor, dsums.tensor, nullptr);
      FV_CUDA_CHECK(cudaDeviceSynchronize());
    }
    std::vector<int> slot_list = {0, 1, 2, 3};
    auto w = host_tensor({slots}, DType::I32);
    auto oc = host_tensor({slots, classes}, DType::I32);
    auto os = host_tensor({slots, classes}, DType::F64);
    cpu::vote_finalize(counts.tensor, sums.tensor, slot_list, mode, w.tensor, oc.tensor, os.tensor);
    auto gw = host_tensor({slots}, DType::I32), goc = host_tensor({slots, classes}, DType::I32),
         gos = host_tensor({slots, classes}, DType::F64);
    poison(gw.tensor);
    poison(goc.tensor);
    poison(gos.tensor);
    auto dw = upload(gw.tensor), doc = upload(goc.tensor), dos = upload(gos.tensor);
    auto dslots = upload(Tensor(slot_list.data(), {slots}, DType::I32));
    cuda::vote_finalize(dcounts.tensor, dsums.tensor, dslots.tensor.ptr<int>(), slots, mode,
                        dw.tensor, doc.tensor, dos.tensor, nullptr);
    download(gw.tensor, dw.tensor);
    download(goc.tensor, doc.tensor);
    download(gos.tensor, dos.tensor);
    EXPECT_EQ(0, std::memcmp(gw.tensor.data(), w.tensor.data(), w.tensor.bytes()))
        << vote_name(mode);
    EXPECT_EQ(0, std::memcmp(goc.tensor.data(), oc.tensor.data(), oc.tensor.bytes()));
    EXPECT_EQ(0, std::memcmp(gos.tensor.data(), os.tensor.data(), os.tensor.bytes()))
        << "sums must be bit-identical";
    auto cleared = host_tensor({slots, classes}, DType::I32);
    download(cleared.tensor, dcounts.tensor);
    for (int64_t i = 0; i < cleared.tensor.numel(); ++i)
      EXPECT_EQ(cleared.tensor.ptr<int32_t>()[i], 0);
  }
}

}  // namespace
}  // namespace fervid::test
