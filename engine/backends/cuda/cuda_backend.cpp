// The CUDA backend: every op of the Backend table on device 0, on the stream of its lane (Frames,
// Network, Vote: three streams, ordered by fences), the frame stage as replayed CUDA graphs.
// Activations are NHWC in the compute precision (f32 for fp32/tf32, f16, bf16); the logits,
// probabilities and vote tallies are f32/f64 as on the CPU. Host data enters through pinned staging
// buffers: frames (two slots, so the host fills one while the device reads the other; uploaded on a
// stream of their own, so that a batch's upload overlaps the previous batch's frame stage) and the
// small segment and slot tables of the vote. Nothing here synchronises except copies to the host
// (but copy_to_host_async), synchronize(), planning, and FERVID_SYNC_CHECK=1 (a synchronise after
// every op).
#include "backends/cuda/cuda_backend.h"

#include <omp.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <tuple>
#include <vector>

#include "backends/cuda/capture_guard.h"
#include "backends/cuda/cuda_probe.h"
#include "backends/cuda/frame_sink.h"
#include "cuda/check.h"
#include "cuda/library_ops.h"
#include "cuda/ops.h"
#include "cuda/plan_rules.h"
#include "cuda/runtime.h"
#include "fervid/weight_layout.h"

namespace fervid {

namespace {

// A precision as the kernels see it: the activations' dtype, and whether f32 GEMMs may use the
// tensor cores (tf32).
struct Arithmetic {
  Precision precision;
  DType dtype;
  bool tf32;
};

Arithmetic arithmetic_of(Precision p) {
  switch (p) {
    case Precision::Bf16:
      return {p, DType::BF16, false};
    case Precision::Fp32:
      return {p, DType::F32, false};
    case Precision::Tf32:
      return {p, DType::F32, true};
    case Precision::Default:
    case Precision::Fp16:
      break;
  }
  return {Precision::Fp16, DType::F16, false};
}

// Host f32 values converted to `dtype`, as bytes.
std::vector<uint8_t> convert(const float* src, size_t n, DType dtype) {
  std::vector<uint8_t> out(n * dtype_size(dtype));
  if (dtype == DType::F32) {
    std::memcpy(out.data(), src, n * 4);
    return out;
  }
  auto* dst = reinterpret_cast<uint16_t*>(out.data());
  for (size_t i = 0; i < n; ++i)
    dst[i] = dtype == DType::F16 ? float_to_half(src[i]) : float_to_bf16(src[i]);
  return out;
}

// A pinned host buffer paired with the event after the last device read of it: the host waits
// for that event before it writes the buffer again.
struct Staging {
  Buffer host;
  cuda::Event done;
  bool pending = false;

  void* reserve(size_t bytes) {
    if (pending) done.synchronize();
    pending = false;
    if (host.bytes() < bytes) {
      host = Buffer();
      host = cuda::pinned_buffer(bytes + bytes / 4);
    }
    return host.data();
  }
  void release(cudaStream_t stream) {
    done.record(stream);
    pending = true;
  }
};

// `lane` points at the backend's current lane stream: marks go where the work goes.
class CudaTimeline final : public Timeline {
 public:
  explicit CudaTimeline(const cudaStream_t* lane) : lane_(lane) {}
  void mark() override {
    if (count_ == events_.size()) events_.push_back(std::make_unique<cuda::Event>());
    events_[count_++]->record(*lane_);
  }
  std::vector<double> take_ms() override {
    std::vector<double> ms;
    for (size_t i = 1; i < count_; ++i) ms.push_back(events_[i]->since(*events_[i - 1]));
    count_ = 0;
    return ms;
  }

 private:
  const cudaStream_t* lane_;
  std::vector<std::unique_ptr<cuda::Event>> events_;
  size_t count_ = 0;
};

class CudaFence final : public Fence {
 public:
  explicit CudaFence(const cudaStream_t* lane) : lane_(lane) {}
  void record() override { event_.record(*lane_); }
  void wait() override { event_.synchronize(); }
  cudaEvent_t get() const { return event_.get(); }

 private:
  const cudaStream_t* lane_;
  cuda::Event event_;
};

class CudaBackend final : public Backend,
                          Lanes,
                          GraphReplay,
                          Timelines,
                          FrameSinks,
                          ConvPlanLog,
                          ReferenceGemm,
                          DeviceGradcam {
 public:
  CudaBackend(const Arithmetic& precision, ConvImpl conv_impl, bool graphs)
      : precision_(precision),
        conv_impl_(conv_impl),
        graphs_enabled_(graphs),
        conv_(stream_.get(), precision.tf32, meter_),
        linear_(stream_.get(), precision.tf32, meter_) {
    cudaDeviceProp p{};
    FV_CUDA_CHECK(cudaGetDeviceProperties(&p, 0));
    device_name_ =
        std::string(p.name) + " (sm_" + std::to_string(p.major) + std::to_string(p.minor) + ")";
    const char* sync = std::getenv("FERVID_SYNC_CHECK");
    sync_check_ = sync && std::string(sync) == "1";
    if (sync_check_) graphs_enabled_ = false;  // a check after every op needs the ops one by one
    lane_stream_ = stream_.get();
  }
  std::string name() const override { return "cuda"; }
  Layout activation_layout() const override { return Layout::NHWC; }
  DType compute_dtype() const override { return precision_.dtype; }
  Precision precision() const override { return precision_.precision; }
  // 4:2:0 video goes up as YUV and is converted here (half the bytes, no swscale on the CPU).
  bool prefers_yuv_frames() const override { return true; }
  std::string device_name() const override { return device_name_; }

  Lanes* lanes() override { return this; }
  GraphReplay* graph_replay() override { return this; }
  Timelines* timelines() override { return this; }
  FrameSinks* frame_sinks() override { return this; }
  const ConvPlanLog* conv_plan_log() const override { return this; }
  ReferenceGemm* reference_gemm() override { return this; }
  DeviceGradcam* device_gradcam() override { return this; }

  Buffer allocate(size_t bytes) override { return meter_.track(cuda::device_buffer(bytes)); }
  void copy_from_host(const Tensor& dst, const void* src) override {
    FV_CUDA_CHECK(
        cudaMemcpyAsync(dst.data(), src, dst.bytes(), cudaMemcpyHostToDevice, lane_stream_));
    FV_CUDA_CHECK(cudaStreamSynchronize(lane_stream_));
  }
  void copy_to_host(void* dst, const Tensor& src) override {
    copy_to_host_async(dst, src);
    FV_CUDA_CHECK(cudaStreamSynchronize(lane_stream_));
  }
  Buffer allocate_host(size_t bytes) override { return cuda::pinned_buffer(bytes); }
  void copy_to_host_async(void* dst, const Tensor& src) override {
    FV_CUDA_CHECK(
        cudaMemcpyAsync(dst, src.data(), src.bytes(), cudaMemcpyDeviceToHost, lane_stream_));
  }
  void synchronize() override {
    for (const cuda::Stream* s : {&frames_stream_, &stream_, &vote_stream_}) s->synchronize();
  }
  void use_lane(Lane lane) override {
    lane_ = lane;
    lane_stream_ = lane == Lane::Frames    ? frames_stream_.get()
                   : lane == Lane::Network ? stream_.get()
                                           : vote_stream_.get();
  }
  std::unique_ptr<Fence> make_fence() override {
    return std::make_unique<CudaFence>(&lane_stream_);
  }
  void wait_for(const Fence& fence) override {
    const auto* f = dynamic_cast<const CudaFence*>(&fence);
    if (!f) fail("internal error: a fence of another backend");
    FV_CUDA_CHECK(cudaStreamWaitEvent(lane_stream_, f->get(), 0));
  }
  size_t peak_memory_bytes() const override { return meter_.peak(); }
  std::unique_ptr<Timeline> make_timeline() override {
    return std::make_unique<CudaTimeline>(&lane_stream_);
  }

  OwnedTensor prepare_weight(const Tensor& host_f32, const WeightUse& use) override {
    if (host_f32.dtype() != DType::F32)
      fail("prepare_weight: expected f32, got " + host_f32.describe());
    OwnedTensor staged;
    const Tensor* src = &host_f32;
    if (use.role == WeightRole::Conv) {
      staged = conv_weight_ohwi(host_f32);  // OIHW -> KRSC, cuDNN's NHWC filter layout
      src = &staged.tensor;
    } else if (use.role == WeightRole::Linear && use.flatten_channels > 0) {
      staged = flatten_columns_hwc(host_f32, use.flatten_channels);
      src = &staged.tensor;
    }
    const DType dtype =
        use.role == WeightRole::LinearBias && use.logits ? DType::F32 : precision_.dtype;
    std::vector<uint8_t> bytes = convert(src->ptr<const float>(), size_t(src->numel()), dtype);
    OwnedTensor t;
    t.buffer = allocate(bytes.size());
    t.tensor = Tensor::view(t.buffer, src->shape(), dtype, src->layout());
    copy_from_host(t.tensor, bytes.data());
    return t;
  }

  void preprocess(std::span<const ImageView> frames, std::span<const CropRect> crops,
                  const Preprocess& pp, const Tensor& out) override {
    const int n = int(frames.size());
    if (int(crops.size()) != n) fail("cuda preprocess: one crop per frame is needed");
    // The frames' crops, packed tightly after a table of StagedFrame.
    const size_t table = (size_t(n) * sizeof(cuda::StagedFrame) + 255) / 256 * 256;
    std::vector<cuda::StagedFrame> staged(n);
    size_t bytes = table;
    for (int i = 0; i < n; ++i) {
      const ImageView& f = frames[i];
      const CropRect& c = crops[i];
      if (!f.data || !crop_fits(c, f.width, f.height))
        fail("preprocess: " + crop_outside(c, f.width, f.height));
      staged[i] = {(long long)bytes, c.width, c.height, c.width * 3,
                   resize_window(c.width, c.height, int(out.dim(1)), pp.resize)};
      bytes += size_t(c.height) * c.width * 3;
    }
    FrameUpload& u = next_upload(bytes);
    auto* host = static_cast<uint8_t*>(u.host.reserve(bytes));
    std::memcpy(host, staged.data(), n * sizeof(cuda::StagedFrame));
#pragma omp parallel for schedule(dynamic)
    for (int i = 0; i < n; ++i) {
      const ImageView& f = frames[i];
      const CropRect& c = crops[i];
      const size_t row = size_t(c.width) * 3;
      for (int y = 0; y < c.height; ++y)
        std::memcpy(host + staged[i].offset + y * row,
                    f.data + int64_t(c.y + y) * f.stride + int64_t(c.x) * 3, row);
    }
    upload(u, host, bytes);
    auto* dev = static_cast<uint8_t*>(u.device.data());
    cuda::preprocess(dev, reinterpret_cast<const cuda::StagedFrame*>(dev), n, pp, out,
                     lane_stream_);
    read_upload(u);
    after_op("preprocess");
  }

  void preprocess_yuv420(std::span<const YuvView> frames, std::span<const CropRect> crops,
                         const ColorSpec& cs, const Preprocess& pp, const Tensor& out) override {
    const int n = int(frames.size());
    if (int(crops.size()) != n) fail("cuda preprocess_yuv420: one crop per frame is needed");
    // Each frame's planes around its crop, from an even origin (so chroma rows and columns keep
    // their parity), packed after a table of DeviceYuv that points into the device copy.
    struct Region {
      int ex, ey, w, h, cw, ch;
      size_t y_off, u_off, v_off;
    };
    std::vector<Region> regions(n);
    const size_t table = (size_t(n) * sizeof(cuda::DeviceYuv) + 255) / 256 * 256;
    size_t bytes = table;
    for (int i = 0; i < n; ++i) {
      const YuvView& f = frames[i];
      const CropRect& c = crops[i];
      if (!f.y || !f.u || !f.v || (f.uv_step != 1 && f.uv_step != 2) ||
          !crop_fits(c, f.width, f.height))
        fail("preprocess_yuv420: " + crop_outside(c, f.width, f.height));
      Region& r = regions[i];
      if (f.on_device) continue;  // read where it is (an NVDEC frame in the frame sink's pool)
      r.ex = c.x & ~1;
      r.ey = c.y & ~1;
      r.w = c.x + c.width - r.ex;
      r.h = c.y + c.height - r.ey;
      r.cw = (r.w + 1) / 2 * f.uv_step;  // chroma bytes per row
      r.ch = (r.h + 1) / 2;
      r.y_off = bytes;
      bytes += size_t(r.w) * r.h;
      r.u_off = bytes;
      bytes += size_t(r.cw) * r.ch;
      r.v_off = bytes;
      if (f.uv_step == 1) bytes += size_t(r.cw) * r.ch;
    }
    FrameUpload& u = next_upload(bytes);
    auto* dev = static_cast<uint8_t*>(u.device.data());
    auto* host = static_cast<uint8_t*>(u.host.reserve(bytes));
    auto* tbl = reinterpret_cast<cuda::DeviceYuv*>(host);
    for (int i = 0; i < n; ++i) {
      const Region& r = regions[i];
      const YuvView& f = frames[i];
      if (f.on_device) {
        tbl[i] = {f.y,
                  f.u,
                  f.v,
                  f.y_stride,
                  f.uv_stride,
                  f.uv_step,
                  crops[i],
                  resize_window(crops[i].width, crops[i].height, int(out.dim(1)), pp.resize)};
        continue;
      }
      tbl[i].y = dev + r.y_off;
      tbl[i].u = dev + r.u_off;
      tbl[i].v = frames[i].uv_step == 1 ? dev + r.v_off : dev + r.u_off + 1;
      tbl[i].y_stride = r.w;
      tbl[i].uv_stride = r.cw;
      tbl[i].uv_step = frames[i].uv_step;
      tbl[i].crop = {crops[i].x - r.ex, crops[i].y - r.ey, crops[i].width, crops[i].height};
      tbl[i].window = resize_window(crops[i].width, crops[i].height, int(out.dim(1)), pp.resize);
    }
#pragma omp parallel for schedule(dynamic)
    for (int i = 0; i < n; ++i) {
      const YuvView& f = frames[i];
      const Region& r = regions[i];
      if (f.on_device) continue;
      for (int y = 0; y < r.h; ++y)
        std::memcpy(host + r.y_off + size_t(y) * r.w, f.y + int64_t(r.ey + y) * f.y_stride + r.ex,
                    size_t(r.w));
      const int64_t cx = int64_t(r.ex / 2) * f.uv_step;
      for (int y = 0; y < r.ch; ++y) {
        const int64_t row = int64_t(r.ey / 2 + y) * f.uv_stride + cx;
        std::memcpy(host + r.u_off + size_t(y) * r.cw, f.u + row, size_t(r.cw));
        if (f.uv_step == 1) std::memcpy(host + r.v_off + size_t(y) * r.cw, f.v + row, size_t(r.cw));
      }
    }
    upload(u, host, bytes);
    cuda::preprocess_yuv420(reinterpret_cast<const cuda::DeviceYuv*>(dev), n, cs, pp, out,
                            lane_stream_);
    read_upload(u);
    frames_read_.record(lane_stream_);  // the frame sink's buffers read so far (NVDEC frames)
    after_op("preprocess_yuv420");
  }

  void conv3x3_bias_relu(const Tensor& x, const Tensor& w, const Tensor& b, bool pool,
                         const Tensor& y) override {
    on_network("conv3x3_bias_relu");
    if (choose_conv(x, w, b, pool, y).impl == "fervid")
      cuda::conv3x3_igemm_pool(x, w, b, pool, y, stream_.get());
    else
      conv_cudnn(x, w, b, pool, y);
    after_op("conv3x3_bias_relu");
  }
  std::vector<ConvPlanInfo> conv_plans() const override { return conv_plans_; }

  void replay(const void* owner, int64_t key, const std::function<void()>& work) override {
    on_network("the frame stage");
    if (!graphs_enabled_) return work();
    Graph& g = graphs_[{owner, key}];
    const Placement now = placement();
    if (g.exec && g.placement == now) {
      g.exec.launch(stream_.get());
      ++replays_;
      return;
    }
    if (g.exec) {  // a buffer the graph uses has moved: plan and capture again
      g.exec.reset();
      g.planned = false;
    }
    if (!g.planned) {  // the first run plans (cuDNN's search, the conv timing) and synchronises
      work();
      g.planned = true;
      return;
    }
    capture(g, work);
    g.placement = placement();
  }
  void forget_replays(const void* owner) override {
    for (auto it = graphs_.begin(); it != graphs_.end();) {
      if (it->first.first != owner) {
        ++it;
        continue;
      }
      it = graphs_.erase(it);  // its GraphExec destroys the executable graph
    }
  }
  ReplayStats replay_stats() const override {
    ReplayStats s;
    s.enabled = graphs_enabled_;
    for (const auto& [key, g] : graphs_) s.graphs += bool(g.exec);
    s.replays = replays_;
    s.failure = graph_failure_;
    return s;
  }
  std::shared_ptr<DeviceFrameSink> make_frame_sink(int max_frames) override {
    return cuda::make_frame_sink(frames_read_.get(), meter_, max_frames);
  }
  double gemm_tflops(int size, int iters) override {
    cuda::Stream stream;
    cuda::LinearCublasLt gemm(stream.get(), precision_.tf32, MemoryMeter());
    return gemm.gemm_tflops(precision_.dtype, size, iters);
  }
  void gradcam(const Tensor& acts, Head head, std::span<const HeadLayer> dense,
               std::span<int> classes, const Tensor& maps, const Tensor& logits) override {
    if (!gradcam_) gradcam_ = std::make_unique<cuda::GradcamHead>(stream_.get(), meter_);
    std::vector<cuda::GradcamLayer> layers;
    for (const HeadLayer& d : dense) layers.push_back({d.w, d.b, d.relu});
    gradcam_->run(acts, head == Head::Gap, layers, classes, maps, logits);
  }
  void maxpool2x2(const Tensor& x, const Tensor& y) override {
    on_network("maxpool2x2");
    cuda::maxpool2x2(x, y, stream_.get());
    after_op("maxpool2x2");
  }
  void global_avgpool(const Tensor& x, const Tensor& y) override {
    on_network("global_avgpool");
    cuda::global_avgpool(x, y, stream_.get());
    after_op("global_avgpool");
  }
  void linear(const Tensor& x, const Tensor& w, const Tensor& b, bool relu,
              const Tensor& y) override {
    on_network("linear");
    // A rank-4 input is flattened as stored (HWC); prepare_weight permuted the columns to match.
    Tensor flat = x.rank() == 4
                      ? Tensor(x.data(), {x.dim(0), x.numel() / std::max<int64_t>(x.dim(0), 1)},
                               x.dtype(), Layout::Plain, x.device())
                      : x;
    linear_.run(flat, w, b, relu, y);
    after_op("linear");
  }
  void softmax_argmax(const Tensor& logits, const Tensor& probs, const Tensor& labels) override {
    on_network("softmax_argmax");
    cuda::softmax_argmax(logits, probs, labels, stream_.get());
    after_op("softmax_argmax");
  }
  void vote_accumulate(const Tensor& probs, const Tensor& labels, std::span<const Segment> segments,
                       const Tensor& counts, const Tensor& sums) override {
    if (segments.empty()) return;
    const void* dev =
        upload_table(segment_staging_, segment_device_, segments.data(), segments.size_bytes());
    cuda::vote_accumulate(probs, labels, static_cast<const Segment*>(dev), int(segments.size()),
                          counts, sums, lane_stream_);
    after_op("vote_accumulate");
  }
  void vote_finalize(const Tensor& counts, const Tensor& sums, std::span<const int> slots,
                     VoteMode mode, const Tensor& winners, const Tensor& out_counts,
                     const Tensor& out_sums) override {
    if (slots.empty()) return;
    const void* dev = upload_table(slot_staging_, slot_device_, slots.data(), slots.size_bytes());
    cuda::vote_finalize(counts, sums, static_cast<const int*>(dev), int(slots.size()), mode,
                        winners, out_counts, out_sums, lane_stream_);
    after_op("vote_finalize");
  }

 private:
  Tensor scratch(std::vector<int64_t> shape, DType dtype) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    const size_t bytes = size_t(n) * dtype_size(dtype);
    if (scratch_.bytes() < bytes) {
      stream_.synchronize();
      scratch_ = Buffer();
      scratch_ = allocate(bytes);
    }
    return Tensor::view(scratch_, std::move(shape), dtype, Layout::NHWC);
  }

  void conv_cudnn(const Tensor& x, const Tensor& w, const Tensor& b, bool pool, const Tensor& y) {
    if (!pool) return conv_.run(x, w, b, y);
    // cuDNN does not pool: the full-resolution output goes to scratch, then the pool kernel.
    Tensor full = scratch({x.dim(0), x.dim(1), x.dim(2), w.dim(0)}, x.dtype());
    conv_.run(x, w, b, full);
    cuda::maxpool2x2(full, y, stream_.get());
  }

  // The implementation of this layer shape at this batch size: the one asked for, or with auto
  // the faster of cuDNN (+ pool kernel) and fervid's kernel, timed on the real buffers the first
  // time the shape runs at a batch size that no earlier timing covers: a choice timed at one
  // batch serves smaller ones (plan_batch_for), a larger batch is timed afresh. A batch size's
  // choice never changes once made, so a captured graph and the same batch op by op agree. f32
  // always runs on cuDNN.
  const ConvPlanInfo& choose_conv(const Tensor& x, const Tensor& w, const Tensor& b, bool pool,
                                  const Tensor& y) {
    auto same_shape = [&](const ConvPlanInfo& p) {
      return p.height == x.dim(1) && p.width == x.dim(2) && p.in_channels == x.dim(3) &&
             p.out_channels == w.dim(0) && p.pool == pool;
    };
    const bool timed = precision_.dtype != DType::F32 && conv_impl_ != ConvImpl::Cudnn &&
                       conv_impl_ != ConvImpl::Fervid;
    std::vector<int64_t> planned;
    for (const ConvPlanInfo& p : conv_plans_)
      if (same_shape(p)) {
        if (!timed) return p;
        planned.push_back(p.timed_batch);
      }
    if (const std::optional<int64_t> from = cuda::plan_batch_for(planned, x.dim(0)))
      for (const ConvPlanInfo& p : conv_plans_)
        if (same_shape(p) && p.timed_batch == *from) return p;
    ConvPlanInfo p;
    p.height = x.dim(1);
    p.width = x.dim(2);
    p.in_channels = x.dim(3);
    p.out_channels = w.dim(0);
    p.pool = pool;
    if (!timed) {
      p.impl = precision_.dtype == DType::F32 || conv_impl_ == ConvImpl::Cudnn ? "cudnn" : "fervid";
    } else {
      auto time_ms = [&](auto&& run) {
        run();  // plans (cuDNN's search) and warms up
        cuda::Event start, stop;
        double best = 0;
        for (int round = 0; round < 2; ++round) {
          start.record(stream_.get());
          for (int i = 0; i < kConvTimingReps; ++i) run();
          stop.record(stream_.get());
          const double ms = stop.since(start) / kConvTimingReps;
          best = round == 0 ? ms : std::min(best, ms);
        }
        return best;
      };
      p.cudnn_ms = time_ms([&] { conv_cudnn(x, w, b, pool, y); });
      p.fervid_ms = time_ms([&] { cuda::conv3x3_igemm_pool(x, w, b, pool, y, stream_.get()); });
      p.timed_batch = x.dim(0);
      p.impl = p.fervid_ms < p.cudnn_ms ? "fervid" : "cudnn";
    }
    conv_plans_.push_back(p);
    return conv_plans_.back();
  }

  // Host frames go up on their own stream, so that a batch's upload overlaps the frame stage of
  // the batch before it; the preprocess kernel on the main stream waits for it. Two slots, used
  // in turn: a slot's pinned buffer is rewritten once its last upload is done (Staging), its
  // device buffer once the last kernel that read it is done (`read`).
  struct FrameUpload {
    Staging host;
    Buffer device;
    cuda::Event uploaded, read;
    bool read_pending = false;
  };

  FrameUpload& next_upload(size_t bytes) {
    FrameUpload& u = uploads_[next_upload_];
    next_upload_ ^= 1;
    if (u.device.bytes() < bytes) {
      synchronize();  // earlier batches may still read the old buffer
      upload_stream_.synchronize();
      u.read_pending = false;
      u.device = Buffer();
      u.device = allocate(bytes + bytes / 4);
    }
    return u;
  }
  void upload(FrameUpload& u, const void* host, size_t bytes) {
    if (u.read_pending) FV_CUDA_CHECK(cudaStreamWaitEvent(upload_stream_.get(), u.read.get(), 0));
    FV_CUDA_CHECK(cudaMemcpyAsync(u.device.data(), host, bytes, cudaMemcpyHostToDevice,
                                  upload_stream_.get()));
    u.host.release(upload_stream_.get());
    u.uploaded.record(upload_stream_.get());
    FV_CUDA_CHECK(cudaStreamWaitEvent(lane_stream_, u.uploaded.get(), 0));
  }
  void read_upload(FrameUpload& u) {
    u.read.record(lane_stream_);
    u.read_pending = true;
  }

  // Copies a small host table to the device through pinned memory, behind the queued work.
  const void* upload_table(Staging& staging, Buffer& device, const void* src, size_t bytes) {
    void* host = staging.reserve(bytes);
    std::memcpy(host, src, bytes);
    if (device.bytes() < bytes) {
      synchronize();
      device = Buffer();
      device = allocate(bytes * 2);
    }
    FV_CUDA_CHECK(
        cudaMemcpyAsync(device.data(), host, bytes, cudaMemcpyHostToDevice, lane_stream_));
    staging.release(lane_stream_);
    return device.data();
  }

  // The buffers a captured graph points at besides the model's own: they move when a larger
  // one is needed, and a graph captured before that would use the freed one.
  using Placement = std::tuple<const void*, const void*, const void*>;
  Placement placement() const { return {scratch_.data(), conv_.workspace(), linear_.workspace()}; }

  struct Graph {
    bool planned = false;
    cuda::GraphExec exec;
    Placement placement{};
  };

  // Captures `work` on the stream (only this thread's calls count: the decode threads go on)
  // and launches the graph. When capture fails (an op that cannot be captured), graphs are
  // switched off for the run, the reason kept for replay_stats(), and `work` runs op by op. The
  // capture always ends (capture_guarded), also when `work` throws something else, which then
  // propagates.
  void capture(Graph& g, const std::function<void()>& work) {
    cuda::Graph graph;
    std::string why = capture_guarded(
        [&] {
          FV_CUDA_CHECK(cudaStreamBeginCapture(stream_.get(), cudaStreamCaptureModeThreadLocal));
        },
        work,
        [&]() -> std::string {
          const cudaError_t rc = cudaStreamEndCapture(stream_.get(), graph.out());
          return rc == cudaSuccess ? ""
                                   : std::string("cudaStreamEndCapture: ") + cudaGetErrorName(rc);
        });
    if (why.empty()) {
      cudaGraphExec_t exec = nullptr;
      const cudaError_t rc = cudaGraphInstantiate(&exec, graph.get(), 0);
      if (rc != cudaSuccess)
        why = std::string("cudaGraphInstantiate: ") + cudaGetErrorName(rc);
      else
        g.exec = cuda::GraphExec(exec);
    }
    if (!why.empty()) {
      (void)cudaGetLastError();  // capture errors are not sticky; clear the last one
      graphs_enabled_ = false;
      graph_failure_ = why;
      work();
      return;
    }
    g.exec.launch(stream_.get());
    ++replays_;
  }

  // The frame-stage ops run on the network lane: cuDNN and cuBLASLt are bound to its stream.
  void on_network(const char* op) const {
    if (lane_ != Lane::Network)
      fail(std::string("internal error: ") + op + " off the network lane");
  }

  void after_op(const char* op) {
    if (!sync_check_) return;
    cudaError_t rc = cudaStreamSynchronize(lane_stream_);
    if (rc != cudaSuccess)
      fail(std::string("cuda ") + op + " failed on the device: " + cudaGetErrorName(rc) + " (" +
           cudaGetErrorString(rc) + ")");
  }

  static constexpr int kConvTimingReps = 3;

  Arithmetic precision_;
  ConvImpl conv_impl_;
  bool graphs_enabled_ = true;
  std::map<std::pair<const void*, int64_t>, Graph> graphs_;
  int64_t replays_ = 0;
  std::string graph_failure_;
  std::vector<ConvPlanInfo> conv_plans_;
  std::string device_name_;
  bool sync_check_ = false;
  MemoryMeter meter_;
  cuda::Stream stream_;
  cuda::ConvCudnn conv_;
  cuda::LinearCublasLt linear_;
  std::unique_ptr<cuda::GradcamHead> gradcam_;  // made on the first Grad-CAM
  cuda::Stream upload_stream_, frames_stream_, vote_stream_;
  Lane lane_ = Lane::Network;
  cudaStream_t lane_stream_ = nullptr;  // the stream of lane_
  cuda::Event frames_read_;
  FrameUpload uploads_[2];
  int next_upload_ = 0;
  Staging segment_staging_, slot_staging_;
  Buffer segment_device_, slot_device_, scratch_;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(const BackendOptions& options) {
  std::string why;
  if (!cuda_device_available(&why)) fail_device("--device cuda: " + why);
  FV_CUDA_CHECK(cudaSetDevice(0));
  return std::make_unique<CudaBackend>(arithmetic_of(options.precision), options.conv_impl,
                                       options.cuda_graphs);
}

}  // namespace fervid
