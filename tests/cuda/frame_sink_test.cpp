// NVDEC frames in the CUDA backend's frame sink against libavcodec's on the CPU. Without a device
// (or without NVDEC) the test skips and says why.
#include "cuda_test_util.h"
#include "video.h"

namespace fervid::test {
namespace {

// NVDEC through ClipDecoder: H.264 decoding is exact, so the NV12 frames NVDEC leaves on the
// device equal libavcodec's yuv420p planes on the CPU byte for byte, clip after clip in one
// continuous stream; a codec NVDEC does not take (MS-MPEG4) falls back to the CPU with a remark.
TEST(CudaBackend, NvdecFramesEqualCpuDecode) {
  REQUIRE_CUDA_DEVICE();
  auto gpu = make_cuda_backend(gpu_options("fp16"));
  std::string notice;
  if (choose_decoder(DecoderChoice::Auto, true, false, &notice) != DecoderKind::Nvdec)
    GTEST_SKIP() << notice;
  const std::string data = test_data_dir();
  const std::vector<std::string> clips = {
      data + "/ravdess/modified/01-01-07-02-02-01-01_1.mp4", data + "/video/astronaut-720p.mp4",
      data + "/ravdess/modified/01-01-07-02-02-01-01_1.mp4", data + "/video/vtest.avi"};
  const SamplingOptions sampling{5, 12, true};
  auto sink = gpu->frame_sinks()->make_frame_sink(64);
  auto decode = [&](DecoderKind kind) {
    DecodeOptions options;
    options.kind = kind;
    options.sink = sink.get();
    auto d = ClipDecoder::create(sampling, options);
    for (size_t i = 0; i < clips.size(); ++i) d->add(int(i), clips[i]);
    d->flush();
    std::vector<ClipEvent> events;
    ClipEvent ev;
    while (d->next(ev)) events.push_back(std::move(ev));
    return events;
  };
  const std::vector<ClipEvent> cpu = decode(DecoderKind::Cpu), nv = decode(DecoderKind::Nvdec);
  ASSERT_EQ(cpu.size(), nv.size());
  for (size_t e = 0; e < cpu.size(); ++e) {
    const ClipEvent &a = cpu[e], &b = nv[e];
    ASSERT_EQ(a.end, b.end);
    ASSERT_EQ(a.clip, b.clip);
    SCOPED_TRACE(clips[a.clip]);
    if (a.end) {
      EXPECT_EQ(a.error, b.error);
      if (a.clip == 3) {
        EXPECT_NE(b.warning.find("NVDEC does not take"), std::string::npos) << b.warning;
      }
      continue;
    }
    ASSERT_EQ(a.frame.index, b.frame.index);
    ASSERT_TRUE(a.frame.is_yuv && b.frame.is_yuv);
    if (a.clip == 3) {  // decoded on the CPU
      EXPECT_FALSE(b.frame.on_device());
      continue;
    }
    ASSERT_TRUE(b.frame.on_device());
    const YuvView d = b.frame.device;
    ASSERT_EQ(d.width, a.frame.width);
    ASSERT_EQ(d.height, a.frame.height);
    const int w = d.width, h = d.height, cw = (w + 1) / 2, ch = (h + 1) / 2;
    const size_t bytes = size_t(d.y_stride) * h + size_t(d.uv_stride) * ch;
    std::vector<uint8_t> host(bytes);
    Buffer view(const_cast<uint8_t*>(d.y), bytes, Device::Cuda, [](void*) {});
    gpu->copy_to_host(host.data(), Tensor::view(view, {int64_t(bytes)}, DType::U8));
    const YuvView want = a.frame.yuv_view();
    int64_t diff = 0;
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) diff += host[size_t(y) * d.y_stride + x] != want.y[y * w + x];
    const uint8_t* uv = host.data() + (d.u - d.y);
    for (int y = 0; y < ch; ++y)
      for (int x = 0; x < cw; ++x) {
        diff += uv[size_t(y) * d.uv_stride + 2 * x] != want.u[y * cw + x];
        diff += uv[size_t(y) * d.uv_stride + 2 * x + 1] != want.v[y * cw + x];
      }
    EXPECT_EQ(diff, 0) << "frame " << a.frame.index << ": " << diff << " samples differ";
  }
}

}  // namespace
}  // namespace fervid::test
