// Backend: the table of ops the model needs, the memory they work in, and the conversion of the
// weights into it, in two implementations: cpu (engine/backends/cpu, the reference) and cuda
// (engine/backends/cuda). What only some backends can do — lanes of work ordered by fences,
// replaying the frame stage as CUDA graphs, device time stamps, frames in device memory, a
// report of their conv plans, a reference GEMM — is a capability: a small interface a backend
// hands out, nullptr where it has none. Code above this interface asks for a capability, never
// which backend runs.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "fervid/frame.h"
#include "fervid/model_spec.h"
#include "fervid/options.h"
#include "fervid/tensor.h"

namespace fervid {

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

// ---- Capabilities -------------------------------------------------------------------------

// The three streams of work of a classify run (docs/pipeline.md): the frames' upload and
// preprocess, the network (the frame stage), the vote. On the CUDA backend each is a stream of
// its own, so that the next batch's preprocess and the last batch's vote overlap a frame stage;
// work on one lane starts after work on another only where a Fence says so. Network is the lane
// of every op until use_lane() says otherwise, and the frame-stage ops run on it only. A backend
// without Lanes runs every op as it is called.
enum class Lane { Frames, Network, Vote };

// A point in a lane's work: record() marks the work queued so far on the current lane; wait()
// blocks the host until that work is done; Lanes::wait_for() makes the current lane's later work
// wait for it. A fence never recorded is done.
class Fence {
 public:
  virtual ~Fence() = default;
  virtual void record() = 0;
  virtual void wait() = 0;
};

// Lanes and fences (above); ops and copies go to the current lane.
class Lanes {
 public:
  virtual ~Lanes() = default;
  virtual void use_lane(Lane lane) = 0;
  virtual std::unique_ptr<Fence> make_fence() = 0;
  virtual void wait_for(const Fence& fence) = 0;
};

// How the frame stage ran as replayed CUDA graphs (GraphReplay): graphs captured, launches of
// them, and why capture was given up, if it was.
struct ReplayStats {
  bool enabled = false;
  int graphs = 0;
  int64_t replays = 0;
  std::string failure;
};

// Runs `work`, a fixed sequence of the backend's ops that only enqueues (no copies to the host,
// no synchronisation), as the same work each time it is called with (owner, key): the CUDA
// backend runs it op by op the first time (planning, timing), captures it as a CUDA graph the
// second time and replays the graph from then on, while the buffers its ops use stay where they
// were. forget_replays(owner) drops the owner's graphs (before the buffers they write are freed).
class GraphReplay {
 public:
  virtual ~GraphReplay() = default;
  virtual void replay(const void* owner, int64_t key, const std::function<void()>& work) = 0;
  virtual void forget_replays(const void* owner) = 0;
  virtual ReplayStats replay_stats() const = 0;
};

// Per-layer times: mark() enqueues a time stamp behind the work queued so far on the current
// lane; take_ms() waits for every mark and returns the times between consecutive marks, then
// forgets them. Device time on CUDA (events), a host clock on the CPU (its ops are synchronous).
class Timeline {
 public:
  virtual ~Timeline() = default;
  virtual void mark() = 0;
  virtual std::vector<double> take_ms() = 0;
};

class Timelines {
 public:
  virtual ~Timelines() = default;
  virtual std::unique_ptr<Timeline> make_timeline() = 0;
};

// Device memory for frames NVDEC decodes (ClipDecoder): each decoded surface is copied at once
// into a buffer of a bounded pool, so that the decoder's few output surfaces go back to it, and
// the buffer returns to the pool when the frame is dropped, after the work queued on the frame
// is done.
class DeviceFrameSink {
 public:
  virtual ~DeviceFrameSink() = default;
  // Copies an NV12 frame (device pointers, valid until this returns) into a pool buffer; `out`
  // gets the copy's planes. Blocks while every buffer is in use. Thread-safe.
  virtual std::shared_ptr<const void> copy_nv12(const YuvView& surface, YuvView& out) = 0;
};

// A backend whose preprocess reads frames in its own device memory (YuvView::on_device).
class FrameSinks {
 public:
  virtual ~FrameSinks() = default;
  // A pool for at most `max_frames` frames at once.
  virtual std::shared_ptr<DeviceFrameSink> make_frame_sink(int max_frames) = 0;
};

// How a backend runs one conv3x3 layer shape. The CUDA backend chooses between cuDNN and fervid's
// own kernel per shape (--conv-impl); with auto it times both once, at the first batch it sees.
struct ConvPlanInfo {
  int64_t height = 0, width = 0, in_channels = 0, out_channels = 0;
  bool pool = false;
  std::string impl;                    // "cudnn" or "fervid"
  int64_t timed_batch = 0;             // the batch both were timed at; 0: not timed (impl given)
  double cudnn_ms = 0, fervid_ms = 0;  // per call, cuDNN's including its separate pool kernel
};

class ConvPlanLog {
 public:
  virtual ~ConvPlanLog() = default;
  // The conv3x3 shapes planned so far, in the order they were first run, and the choice made: one
  // entry per shape, or with timing (--conv-impl auto) per shape and batch size timed at (a
  // timing serves smaller batches; a larger batch is timed again).
  virtual std::vector<ConvPlanInfo> conv_plans() const = 0;
};

// The rate of one large GEMM in the backend's precision, measured now: the reference the
// benchmark's frame stage is set against (TFLOP/s).
class ReferenceGemm {
 public:
  virtual ~ReferenceGemm() = default;
  virtual double gemm_tflops(int size, int iters) = 0;
};

// Grad-CAM's head, backward pass and map where the activations are (docs/explain.md): the CUDA
// backend's kernels and cuBLASLt. Without it the engine copies the activations to the host and
// runs cpu::gradcam, the float64 reference.
struct HeadLayer {
  const Tensor* w;  // [out,in] f32 on the host (in in torchvision's CHW order after a flatten)
  const Tensor* b;  // [out] f32 on the host
  bool relu;
};

class DeviceGradcam {
 public:
  virtual ~DeviceGradcam() = default;
  // acts [N,H,W,K], the backend's activations of the last conv layer (activated, before its 2x2
  // pool); classes[i] -1: the frame's largest logit, written back; maps [N,S,S] and logits [N,C]
  // f32 host tensors. The host tensors of `dense` stay alive as long as the backend.
  virtual void gradcam(const Tensor& acts, Head head, std::span<const HeadLayer> dense,
                       std::span<int> classes, const Tensor& maps, const Tensor& logits) = 0;
};

// ---- The backend ----------------------------------------------------------------------------

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;  // "cpu", "cuda"
  // The device in words, e.g. "NVIDIA H100 80GB HBM3 (sm_90)" or "CPU, 16 threads".
  virtual std::string device_name() const = 0;
  virtual Layout activation_layout() const = 0;
  virtual DType compute_dtype() const = 0;
  virtual Precision precision() const = 0;  // never Default
  // Video frames in 8-bit YUV 4:2:0 are best handed to this backend as they are (its
  // preprocess_yuv420 converts them: no colour conversion on the CPU, half the bytes to move)
  // rather than as swscale's RGB, the reference path.
  virtual bool prefers_yuv_frames() const = 0;

  // Memory in this backend's address space, and copies to and from the host.
  virtual Buffer allocate(size_t bytes) = 0;
  virtual void copy_from_host(const Tensor& dst, const void* src) = 0;
  virtual void copy_to_host(void* dst, const Tensor& src) = 0;
  // Host memory the device copies into without the host waiting (pinned on CUDA), and a copy
  // into it that lands behind the current lane's queued work: with Lanes, record a Fence after
  // it and wait for that before reading `dst`; without, the copy is done when this returns.
  virtual Buffer allocate_host(size_t bytes) = 0;
  virtual void copy_to_host_async(void* dst, const Tensor& src) = 0;
  // Waits for all queued work.
  virtual void synchronize() = 0;
  // The most memory this backend held at once (buffers, weights, library workspaces).
  virtual size_t peak_memory_bytes() const = 0;

  // Converts an f32 host weight (conv OIHW, linear [out,in], bias [n]) once, at load, to this
  // backend's layout and precision.
  virtual OwnedTensor prepare_weight(const Tensor& host_f32, const WeightUse& use) = 0;

  // frames -> crop -> bilinear resize (half-pixel centres) -> channel order, scale, mean/std.
  // out: [N, S, S, 3] (NHWC) or [N, 3, S, S] (NCHW), in the activation layout.
  virtual void preprocess(std::span<const ImageView> frames, std::span<const CropRect> crops,
                          const Preprocess& pp, const Tensor& out) = 0;
  // The same from YUV 4:2:0 frames (host pointers, or device ones when YuvView::on_device, which
  // only a backend with FrameSinks takes): colour conversion (yuv_coefficients), then the crop,
  // resize and normalisation of preprocess().
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

  // Capabilities (above): nullptr when this backend has none.
  virtual Lanes* lanes() { return nullptr; }
  virtual GraphReplay* graph_replay() { return nullptr; }
  virtual Timelines* timelines() { return nullptr; }
  virtual FrameSinks* frame_sinks() { return nullptr; }
  virtual const ConvPlanLog* conv_plan_log() const { return nullptr; }
  virtual ReferenceGemm* reference_gemm() { return nullptr; }
  virtual DeviceGradcam* device_gradcam() { return nullptr; }
};

}  // namespace fervid
