// Backend: the layers of a network prepared once (weights in the backend's layout, the
// implementation chosen per layer, plans per batch size), the ops around the network (preprocess,
// softmax + argmax, the vote), and the memory they work in, in two implementations: cpu
// (engine/backends/cpu, the reference) and cuda (engine/backends/cuda). What only some backends
// can do (lanes of work ordered by fences, replaying the frame stage as CUDA graphs, device time
// stamps, frames in device memory, a reference GEMM, Grad-CAM where the activations are) is a
// capability: a small interface a backend hands out, nullptr where it has none. Code above this
// interface asks for a capability, never which backend runs.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "fervid/conv_geometry.h"
#include "fervid/error.h"
#include "fervid/frame.h"
#include "fervid/model_spec.h"
#include "fervid/options.h"
#include "fervid/tensor.h"
#include "fervid/weights.h"

namespace fervid {

// ---- Layers: a network as data, each layer prepared once by a backend ----------------------

// What a network is made of. A convolution (a square kernel with stride, padding and groups: a
// depthwise one has groups == channels; ConvGeometry) with its bias, a ReLU when `relu`, and a 2x2
// max-pool after it when `pool` (fused where the backend can); a dense layer (bias, ReLU when
// `relu`); a global average pool; a residual add of two inputs (the narrower zero-extended in
// channels, ReLU when `relu`); a 2x2 max-pool of its own; a bilinear upsampling by 2 (`half_pixel`:
// TensorFlow's half-pixel centres, else its plain scaling). VGG16 uses 3x3 convolutions of stride
// 1 and padding 1; the face detector the rest (docs/faces.md). A backend refuses what it does not
// implement in one line when the layer is prepared, never when it runs.
enum class LayerKind { Conv, Dense, GlobalAvgPool, Add, MaxPool, Upsample };

struct LayerDesc {
  LayerKind kind = LayerKind::Conv;
  std::string name;  // "conv1_1", "gap", "fc1": errors and plans name the layer by it
  // The layers whose outputs this one reads, as indices into the network's list (-1: the
  // network's input). Empty: the layer before it (the input, for the first).
  std::vector<int> inputs;
  // The input, per frame: channels (a dense layer's features), height and width (1 x 1 for a
  // dense layer fed by a vector; a flattened activation keeps its H x W x C here).
  int64_t in_channels = 0, height = 1, width = 1;
  int64_t out_channels = 0;  // Conv: channels; Dense: features; Add: the wider input's channels
  ConvGeometry geometry;     // Conv
  bool relu = true;
  bool pool = false;
  bool logits = false;     // an output of the network: f32 whatever the precision, its own buffer
  bool half_pixel = true;  // Upsample
  // Conv in int8: the scale of the layer's input (a u8 value v stands for v * int8_scale), from
  // the card's calibration (ModelSpec::int8_scales); 0 where the card has none.
  float int8_scale = 0;
  // Conv: the int8_scale of the conv layer that reads this one's output (network_of); 0 where the
  // next layer is no conv or has none.
  float int8_out_scale = 0;
  // The layer before wrote its output as u8 values at int8_scale (PreparedLayer::writes_u8; set
  // by the model before the layer is prepared).
  bool u8_input = false;

  // A convolution of VGG16's shape (3x3, stride 1, padding 1, one group), which every conv
  // implementation of both backends runs.
  bool vgg_conv() const {
    const ConvGeometry& g = geometry;
    return g.kernel == 3 && g.stride == 1 && g.pad_before == 1 && g.pad_after == 1 && g.groups == 1;
  }
  [[noreturn]] void refuse_conv_shape(const char* backend) const {
    fail(name + ": the " + backend + " backend's convolutions are 3x3, stride 1, padding 1");
  }

  // The output's height and width (Conv: after the stride and the pool).
  int64_t out_height() const { return spatial_out(height); }
  int64_t out_width() const { return spatial_out(width); }
  // The output of a batch of n in `layout` (rank 4 for Conv, Add and MaxPool, [n, features]
  // otherwise).
  std::vector<int64_t> output_shape(int64_t n, Layout layout) const {
    if (kind == LayerKind::Dense) return {n, out_channels};
    if (kind == LayerKind::GlobalAvgPool) return {n, in_channels};
    const int64_t c =
        kind == LayerKind::MaxPool || kind == LayerKind::Upsample ? in_channels : out_channels;
    if (layout == Layout::NHWC) return {n, out_height(), out_width(), c};
    return {n, c, out_height(), out_width()};
  }
  // Elements per frame of the output before the pool (what a backend that pools separately
  // writes first), and of the output.
  int64_t unpooled_elements() const {
    if (kind != LayerKind::Conv) return shape_elements(output_shape(1, Layout::Plain));
    return out_channels * geometry.out_size(height) * geometry.out_size(width);
  }

 private:
  int64_t spatial_out(int64_t size) const {
    if (kind == LayerKind::MaxPool) return size / 2;
    if (kind == LayerKind::Upsample) return size * 2;
    if (kind != LayerKind::Conv) return size;
    return geometry.out_size(size) / (pool ? 2 : 1);
  }
  static int64_t shape_elements(const std::vector<int64_t>& shape) {
    int64_t e = 1;
    for (int64_t d : shape) e *= d;
    return e;
  }
};

// How a prepared layer runs: the implementation and why it was chosen ("asked for with
// --conv-impl cudnn", "auto: ..."); where a backend chooses per batch size by timing, the batch
// it timed at and both times (cuDNN's including its separate pool kernel).
struct LayerPlan {
  std::string impl;  // e.g. "onednn", "winograd", "blas", "cudnn", "fervid", "cublaslt", "kernel"
  std::string why;
  int64_t timed_batch = 0;            // 0: not timed
  double cudnn_ms = 0, igemm_ms = 0;  // CUDA conv: each timed (--conv-impl auto)
};

// A layer as a backend prepared it, once: its weights in the backend's layout and precision, the
// implementation it chose, its plans per batch size. After a batch size's first run, run() only
// launches.
class PreparedLayer {
 public:
  virtual ~PreparedLayer() = default;
  // x: the producers' outputs in LayerDesc::inputs' order, [N, ...] in the backend's memory,
  // layout and compute dtype; y: [N, ...] (f32 for the logits).
  virtual void run(std::span<const Tensor> x, const Tensor& y) = 0;
  // The plans made so far: one, or with timing one per batch size timed (a timing serves the
  // smaller batches; a larger batch is timed again).
  virtual std::vector<LayerPlan> plans() const = 0;
  // Whether y holds u8 values (at LayerDesc::int8_out_scale) instead of the compute dtype: the CPU
  // backend's int8 convolutions pass u8 activations from one to the next. A layer reads such an
  // output only when its LayerDesc::u8_input says so.
  virtual bool writes_u8() const { return false; }
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

// The face stage's frame ops (fervid/face_sample.h) on YUV 4:2:0 frames in this backend's memory
// (the CPU backend's is the host's; the CUDA backend's, any device memory of its GPU: NVDEC's
// surfaces or planes another backend uploaded), so that a face stage on the device reads each
// frame where it is and sends back only boxes and results.
class FaceFrameOps {
 public:
  virtual ~FaceFrameOps() = default;
  // out f32 [N,S,S,3] (NHWC): frame i letterboxed into the detector's S x S input, in [-1, 1].
  virtual void letterbox_yuv420(std::span<const YuvView> frames, const ColorSpec& cs,
                                const Tensor& out) = 0;
  // out [N,S,S,3] (NHWC, f32 or the compute dtype): faces[i]'s aligned square, crop_size pixels
  // a side, of frames[faces[i].frame], its S x S window (face_window) normalised by `pp`.
  virtual void face_crops_yuv420(std::span<const YuvView> frames, std::span<const FaceSquare> faces,
                                 int crop_size, const ColorSpec& cs, const Preprocess& pp,
                                 const Tensor& out) = 0;
};

// The rate of one large GEMM in the backend's precision, measured now: the reference the
// benchmark's frame stage is set against (TFLOP/s).
class ReferenceGemm {
 public:
  virtual ~ReferenceGemm() = default;
  virtual double gemm_tflops(int size, int iters) = 0;
};

// Grad-CAM's head, backward pass and map where the activations are (docs/explain.md): the CUDA
// backend's kernels and cuBLASLt; on the CPU backend (the host is its device), cpu::gradcam in
// float64, the reference.
class DeviceGradcam {
 public:
  virtual ~DeviceGradcam() = default;
  // acts [N,H,W,K], the backend's activations of the last conv layer (activated, before its 2x2
  // pool); classes[i] -1: the frame's label (fervid/label_rule.h), written back; maps [N,S,S]
  // and logits [N,C] f32 host tensors. The host tensors of `dense` stay alive as long as the
  // backend.
  virtual void gradcam(const Tensor& acts, Head head, std::span<const DenseWeights> dense,
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

  // Prepares one layer of a network (above) with its weights as loaded (f32 host tensors, conv
  // OIHW, dense [out, in] with a flattened input's columns in torchvision's CHW order; empty for
  // a layer without weights). Fails with one line naming the layer for a layer it cannot run.
  virtual std::unique_ptr<PreparedLayer> prepare(const LayerDesc& layer,
                                                 const LayerWeights& weights) = 0;

  // frames -> crop -> bilinear resize (half-pixel centres) -> channel order, scale, mean/std.
  // out: [N, S, S, 3] (NHWC) or [N, 3, S, S] (NCHW), in the activation layout.
  virtual void preprocess(std::span<const ImageView> frames, std::span<const CropRect> crops,
                          const Preprocess& pp, const Tensor& out) = 0;
  // The same from YUV 4:2:0 frames (host pointers, or device ones when YuvView::on_device, which
  // only a backend with FrameSinks takes): colour conversion (yuv_coefficients), then the crop,
  // resize and normalisation of preprocess().
  virtual void preprocess_yuv420(std::span<const YuvView> frames, std::span<const CropRect> crops,
                                 const ColorSpec& cs, const Preprocess& pp, const Tensor& out) = 0;
  // probs[N, C] = softmax(logits), labels[N]: the label rule of fervid/label_rule.h.
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
  virtual FaceFrameOps* face_frame_ops() { return nullptr; }
  virtual ReferenceGemm* reference_gemm() { return nullptr; }
  virtual DeviceGradcam* device_gradcam() { return nullptr; }
};

}  // namespace fervid
