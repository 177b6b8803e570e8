// The CUDA vote kernels, alone and through the backend, against the CPU reference on fresh random
// inputs, outputs poisoned first. Without a device every test skips and says why.
#include "backends/cpu/cpu_backend.h"
#include "cpu/ops.h"
#include "cuda/ops.h"
#include "cuda_test_util.h"

namespace fervid::test {
namespace {

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

TEST(CudaBackend, VoteThroughTheBackendIsIdenticalToCpu) {
  REQUIRE_CUDA_DEVICE();
  SeedTrace trace;
  auto cpu_be = cpu::make_cpu_backend(0);
  auto gpu = make_cuda_backend(gpu_options("fp16"));
  const int classes = 8, slots = 5, frames = 11;
  for (VoteMode mode : {VoteMode::Majority, VoteMode::Confidence}) {
    auto counts = host_tensor({slots, classes}, DType::I32);
    auto sums = host_tensor({slots, classes}, DType::F64);
    std::memset(counts.tensor.data(), 0, counts.tensor.bytes());
    std::memset(sums.tensor.data(), 0, sums.tensor.bytes());
    auto gcounts = raw_to_device(*gpu, counts.tensor), gsums = raw_to_device(*gpu, sums.tensor);
    // Four batches; slot 2's video spans all of them, others start and end in between. Labels
    // and probabilities from small sets, so that counts and sums tie.
    const std::vector<std::vector<Segment>> batches = {{{0, 4, 2}, {4, 7, 0}},
                                                       {{0, 11, 2}},
                                                       {{0, 3, 2}, {3, 1, 4}, {4, 7, 1}},
                                                       {{0, 2, 2}, {2, 9, 3}}};
    for (const auto& segs : batches) {
      auto probs = host_tensor({frames, classes}, DType::F32);
      auto labels = host_tensor({frames}, DType::I32);
      for (int64_t i = 0; i < probs.tensor.numel(); ++i)
        probs.tensor.ptr<float>()[i] = 0.25f * float(rng()() % 3);
      for (int f = 0; f < frames; ++f) labels.tensor.ptr<int32_t>()[f] = int(rng()() % 3);
      cpu_be->vote_accumulate(probs.tensor, labels.tensor, segs, counts.tensor, sums.tensor);
      auto gp = raw_to_device(*gpu, probs.tensor), gl = raw_to_device(*gpu, labels.tensor);
      gpu->vote_accumulate(gp.tensor, gl.tensor, segs, gcounts.tensor, gsums.tensor);
    }
    const std::vector<int> finished = {2, 0, 4};  // in an order that is not the slots'
    const int n = int(finished.size());
    auto w = host_tensor({n}, DType::I32), oc = host_tensor({n, classes}, DType::I32);
    auto os = host_tensor({n, classes}, DType::F64);
    cpu_be->vote_finalize(counts.tensor, sums.tensor, finished, mode, w.tensor, oc.tensor,
                          os.tensor);
    auto gw = host_tensor({n}, DType::I32), goc = host_tensor({n, classes}, DType::I32);
    auto gos = host_tensor({n, classes}, DType::F64);
    poison(gw.tensor);
    poison(goc.tensor);
    poison(gos.tensor);
    auto dw = raw_to_device(*gpu, gw.tensor), doc = raw_to_device(*gpu, goc.tensor),
         dos = raw_to_device(*gpu, gos.tensor);
    gpu->vote_finalize(gcounts.tensor, gsums.tensor, finished, mode, dw.tensor, doc.tensor,
                       dos.tensor);
    gpu->copy_to_host(gw.tensor.data(), dw.tensor);
    gpu->copy_to_host(goc.tensor.data(), doc.tensor);
    gpu->copy_to_host(gos.tensor.data(), dos.tensor);
    for (int i = 0; i < n; ++i)
      EXPECT_EQ(gw.tensor.ptr<int32_t>()[i], w.tensor.ptr<int32_t>()[i])
          << "slot " << finished[i] << ", " << vote_name(mode);
    EXPECT_EQ(0, std::memcmp(goc.tensor.data(), oc.tensor.data(), oc.tensor.bytes()));
    EXPECT_EQ(0, std::memcmp(gos.tensor.data(), os.tensor.data(), os.tensor.bytes()))
        << "sums must be bit-identical";
    // The finished slots are cleared on both; the open ones (1, 3) still hold the same tallies.
    auto after_c = host_tensor({slots, classes}, DType::I32);
    auto after_s = host_tensor({slots, classes}, DType::F64);
    gpu->copy_to_host(after_c.tensor.data(), gcounts.tensor);
    gpu->copy_to_host(after_s.tensor.data(), gsums.tensor);
    EXPECT_EQ(0, std::memcmp(after_c.tensor.data(), counts.tensor.data(), counts.tensor.bytes()));
    EXPECT_EQ(0, std::memcmp(after_s.tensor.data(), sums.tensor.data(), sums.tensor.bytes()));
  }
}

}  // namespace
}  // namespace fervid::test
