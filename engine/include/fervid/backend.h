// Backend: the table of ops the model needs. The CPU backend (kernels/cpu) is the reference; the
// CUDA backend (kernels/cuda) implements the same ops on the device. Nothing above this interface
// knows which one runs. Activations are NHWC on the CPU backend; a backend states its layout.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "fervid/model_spec.h"
#include "fervid/tensor.h"

namespace fervid {

class DeviceFrameSink;  // fervid/video.h

// A host frame: 8-bit RGB, rows of `stride` bytes.
struct ImageView {
  const uint8_t* data = nullptr;
  int width = 0;
  int height = 0;
  int stride = 0;
};

// A host or device frame in 8-bit YUV 4:2:0: planar (u, v planes, uv_step 1) or NV12 (u = the
// interleaved UV plane, v = u + 1, uv_step 2), as decoders (and NVDEC) give them.
struct YuvView {
  const uint8_t* y = nullptr;
  const uint8_t* u = nullptr;
  const uint8_t* v = nullptr;
  int y_stride = 0, uv_stride = 0, uv_step = 1;
  int width = 0, height = 0;
  bool on_device = false;  // the planes are in the CUDA backend's device memory (NVDEC)
};

// How YUV maps to RGB: the stream's matrix (BT.601 unless it says BT.709) and range (limited
// 16-235 unless full). Chroma is taken from the sample covering the pixel (x/2, y/2), as
// FFmpeg's swscale does for yuv420p -> rgb24.
struct ColorSpec {
  bool bt709 = false;
  bool full_range = false;
};
// The coefficients of a ColorSpec: R = rnd((Y - y_offset) * y_scale + rv * (V - 128)), G with
// gu, gv, B with bu; each rounded to an integer and clamped to [0, 255].
struct YuvCoefficients {
  float y_offset, y_scale, rv, gu, gv, bu;
};
YuvCoefficients yuv_coefficients(const ColorSpec& cs);

// A crop rectangle in source pixels; resized to the model's input size.
struct CropRect {
  int x = 0;
  int y = 0;
  int width = 0;
  int height = 0;
};

// Frames [first, first + count) of a batch belong to the video accumulating in vote slot `slot`.
struct Segment {
  int first = 0;
  int count = 0;
  int slot = 0;
};

enum class WeightRole { Conv, ConvBias, Linear, LinearBias };

// What a weight is for, so that a backend can convert it once at load.
struct WeightUse {
  WeightRole role = WeightRole::Conv;
  // A Linear layer fed by a flattened rank-4 activation: that activation's channel count (a
  // backend with NHWC activations may permute the columns from torchvision's CHW order once).
  int64_t flatten_channels = 0;
  // The last Linear layer (weight and bias): its output is the f32 logits.
  bool logits = false;
};

// Per-layer device times: mark() enqueues a time stamp behind the work queued so far on the
// current lane; take_ms() waits for every mark and returns the times between consecutive marks,
// then forgets them.
class Timeline {
 public:
  virtual ~Timeline() = default;
  virtual void mark() = 0;
  virtual std::vector<double> take_ms() = 0;
};

// The three streams of work of a classify run (docs/pipeline.md): the frames' upload and
// preprocess, the network (the frame stage), the vote. On the CUDA backend each is a stream of
// its own, so that the next batch's preprocess and the last batch's vote overlap a frame stage;
// work on one lane starts after work on another only where a Fence says so. Network is the lane
// of every op until use_lane() says otherwise, and the frame-stage ops run on it only. The CPU
// backend runs every op as it is called and ignores lanes.
enum class Lane { Frames, Network, Vote };

// A point in a lane's work: record() marks the work queued so far on the current lane; wait()
// blocks the host until that work is done; Backend::wait_for() makes the current lane's later
// work wait for it. A fence never recorded is done.
class Fence {
 public:
  virtual ~Fence() = default;
  virtual void record() {}
  virtual void wait() {}
};

// How a backend runs one conv3x3 layer shape. The CUDA backend chooses between cuDNN and fervid's
// own kernel per shape (--conv-impl); with auto it times both once, at the first batch it sees.
struct ConvPlanInfo {
  int64_t height = 0, width = 0, in_channels = 0, out_channels = 0;
  bool pool = false;
  std::string impl;                    // "cudnn", "fervid" or "cpu"
  int64_t timed_batch = 0;             // the batch both were timed at; 0: not timed (impl given)
  double cudnn_ms = 0, fervid_ms = 0;  // per call, cuDNN's including its separate pool kernel
};

// How the frame stage ran as replayed CUDA graphs (Backend::replay): graphs captured, launches
// of them, and why capture was given up, if it was.
struct ReplayStats {
  bool enabled = false;
  int graphs = 0;
  int64_t replays = 0;
  std::string failure;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual Device device() const = 0;
  virtual Layout activation_layout() const = 0;
  virtual DType compute_dtype() const = 0;
  // "fp32", "tf32", "fp16" or "bf16".
  virtual std::string precision() const = 0;
  // The device in words, e.g. "NVIDIA H100 80GB HBM3 (sm_90)" or "CPU, 16 threads".
  virtual std::string device_name() const = 0;

  // Memory in this backend's address space, and copies to and from the host.
  virtual Buffer allocate(size_t bytes) = 0;
  virtual void copy_from_host(const Tensor& dst, const void* src) = 0;
  virtual void copy_to_host(void* dst, const Tensor& src) = 0;
  // Host memory the device copies into without the host waiting (pinned on CUDA), and a copy
  // into it that lands behind the current lane's queued work: record a Fence after it and wait
  // for that before reading `dst`. Backends without a device copy at once.
  virtual Buffer allocate_host(size_t bytes) { return Buffer::host(bytes); }
  virtual void copy_to_host_async(void* dst, const Tensor& src) { copy_to_host(dst, src); }
  // Waits for every lane's work.
  virtual void synchronize() = 0;
  // Lanes and fences (above); ops and copies go to the current lane. has_lanes(): the lanes are
  // queues of their own, so that fences matter.
  virtual bool has_lanes() const { return false; }
  virtual void use_lane(Lane lane) { (void)lane; }
  virtual std::unique_ptr<Fence> make_fence() { return std::make_unique<Fence>(); }
  virtual void wait_for(const Fence& fence) { (void)fence; }
  // The most memory this backend held at once (buffers, weights, library workspaces).
  virtual size_t peak_memory_bytes() const = 0;
  virtual std::unique_ptr<Timeline> make_timeline() = 0;
  // The conv3x3 shapes planned so far, in the order they were first run.
  virtual std::vector<ConvPlanInfo> conv_plans() const { return {}; }
  // Device memory for NVDEC frames (ClipDecoder), at most `max_frames` of them at once; nullptr
  // when this backend cannot read frames in device memory.
  virtual std::shared_ptr<DeviceFrameSink> make_frame_sink(int max_frames) {
    (void)max_frames;
    return nullptr;
  }

  // Runs `work`, a fixed sequence of this backend's ops that only enqueues (no copies to the
  // host, no synchronisation), as the same work each time it is called with (owner, key): the
  // CUDA backend runs it op by op the first time (planning, timing), captures it as a CUDA graph
  // the second time and replays the graph from then on, while the buffers its ops use stay
  // where they were. Other backends just run it. forget_replays(owner) drops the owner's graphs
  // (before the buffers they write are freed).
  virtual void replay(const void* owner, int64_t key, const std::function<void()>& work) {
    (void)owner;
    (void)key;
    work();
  }
  virtual void forget_replays(const void* owner) { (void)owner; }
  virtual ReplayStats replay_stats() const { return {}; }

  // Converts an f32 host weight (conv OIHW, linear [out,in], bias [n]) once, at load, to this
  // backend's layout and precision.
  virtual OwnedTensor prepare_weight(const Tensor& host_f32, const WeightUse& use) = 0;

  // frames -> crop -> bilinear resize (half-pixel centres) -> channel order, scale, mean/std.
  // out: [N, S, S, 3] (NHWC) or [N, 3, S, S] (NCHW), in the activation layout.
  virtual void preprocess(std::span<const ImageView> frames, std::span<const CropRect> crops,
                          const Preprocess& pp, const Tensor& out) = 0;
  // The same from YUV 4:2:0 frames (host pointers, or device ones when YuvView::on_device, which
  // only the CUDA backend takes): colour conversion (yuv_coefficients), then
  // the crop, resize and normalisation of preprocess().
  virtual void preprocess_yuv420(std::span<const YuvView> frames, std::span<const CropRect> crops,
                                 const ColorSpec& cs, const Preprocess& pp, const Tensor& out) = 0;
  // 3x3, stride 1, pad 1 convolution + bias + ReLU, then a 2x2 max-pool when `pool`.
  virtual void conv3x3_bias_relu(const Tensor& x, const Tensor& w, const Tensor& b, bool pool,
                                 const Tensor& y) = 0;
  virtual void maxpool2x2(const Tensor& x, const Tensor& y) = 0;
  virtual void global_avgpool(const Tensor& x, const Tensor& y) = 0;  // -> [N, C]
  // y[N, out] = x[N, in] * w^T + b, then ReLU when `relu`. x of rank 4 is flattened in the
  // torchvision (CHW) order.
  virtual void linear(const Tensor& x, const Tensor& w, const Tensor& b, bool relu,
                      const Tensor& y) = 0;
  // probs[N, C] = softmax(logits), labels[N] = argmax (lowest index among equals).
  virtual void softmax_argmax(const Tensor& logits, const Tensor& probs, const Tensor& labels) = 0;
  // Adds each segment's per-class label counts (i32 [S, C]) and probability sums (f64 [S, C])
  // into its slot.
  virtual void vote_accumulate(const Tensor& probs, const Tensor& labels,
                               std::span<const Segment> segments, const Tensor& counts,
                               const Tensor& sums) = 0;
  // For each slot in `slots`: the winner (i32 [n]) by `mode`, its counts and sums copied out
  // (i32 [n, C], f64 [n, C]); the slot is then cleared for the next video.
  virtual void vote_finalize(const Tensor& counts, const Tensor& sums, std::span<const int> slots,
                             VoteMode mode, const Tensor& winners, const Tensor& out_counts,
                             const Tensor& out_sums) = 0;
};

struct BackendOptions {
  std::string device = "auto";     // auto | cpu | cuda
  std::string precision;           // "" = the backend's default
  int threads = 0;                 // CPU threads; 0 = all cores
  std::string conv_impl = "auto";  // CUDA conv3x3: auto | cudnn | fervid
  bool cuda_graphs = true;         // CUDA: the frame stage as replayed graphs (Backend::replay)
};

// The backend for `options.device`. "auto" picks CUDA when a device is usable and says so on
// stderr when it falls back to the CPU; "cuda" without a device fails with one line.
std::unique_ptr<Backend> make_backend(const BackendOptions& options);

}  // namespace fervid
