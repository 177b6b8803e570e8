// The CUDA backend: the Backend on device 0, in parts, each a file of engine/backends/cuda: the
// lanes (three streams ordered by fences, lanes.h), the frame uploads (frame_upload.h), graph
// replay of the frame stage (graph_replay.h), the prepared layers and their conv choice
// (layers.h, conv_policy.h), the frame sinks of NVDEC (frame_sink.h); this file holds them and
// what they share. Activations are NHWC in the compute precision (f32 for fp32/tf32, f16, bf16);
// the logits, probabilities and vote tallies are f32/f64 as on the CPU. Nothing here synchronises
// except copies to the host (but copy_to_host_async), synchronize(), planning, and
// FERVID_SYNC_CHECK=1 (a synchronise after every op).
#include "backends/cuda/cuda_backend.h"

#include <omp.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <tuple>
#include <vector>

#include "backends/cuda/conv_policy.h"
#include "backends/cuda/cuda_probe.h"
#include "backends/cuda/frame_sink.h"
#include "backends/cuda/frame_upload.h"
#include "backends/cuda/graph_replay.h"
#include "backends/cuda/lanes.h"
#include "backends/cuda/layers.h"
#include "cuda/check.h"
#include "cuda/library_ops.h"
#include "cuda/ops.h"
#include "cuda/runtime.h"

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
    case Precision::Int8:  // refused before (resolve_cuda_conv)
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

// The backend: its parts (lanes, frame uploads, graph replay, the prepared layers of layers.cpp,
// Grad-CAM's head) around the library handles and buffers they share.
class CudaBackend final : public Backend,
                          cuda::LayerHost,
                          FrameSinks,
                          ReferenceGemm,
                          DeviceGradcam,
                          FaceFrameOps {
 public:
  CudaBackend(const Arithmetic& precision, CudaConvPolicy conv, bool graphs)
      : precision_(precision),
        conv_policy_(std::move(conv)),
        sync_check_(sync_check_asked()),
        cudnn_(lanes_.network(), precision.tf32, meter_),
        gemm_(lanes_.network(), precision.tf32, meter_),
        uploads_(meter_, [this] { lanes_.synchronize_all(); }),
        segments_(meter_, [this] { lanes_.synchronize_all(); }),
        slots_(meter_, [this] { lanes_.synchronize_all(); }),
        face_frames_(meter_, [this] { lanes_.synchronize_all(); }),
        face_squares_(meter_, [this] { lanes_.synchronize_all(); }),
        // a check after every op needs the ops one by one
        graphs_(
            lanes_.network(), graphs && !sync_check_, [this] { return placement(); },
            [this](const char* op) { lanes_.on_network(op); }) {
    cudaDeviceProp p{};
    FV_CUDA_CHECK(cudaGetDeviceProperties(&p, 0));
    device_name_ =
        std::string(p.name) + " (sm_" + std::to_string(p.major) + std::to_string(p.minor) + ")";
  }
  std::string name() const override { return "cuda"; }
  Layout activation_layout() const override { return Layout::NHWC; }
  DType compute_dtype() const override { return precision_.dtype; }
  Precision precision() const override { return precision_.precision; }
  // 4:2:0 video goes up as YUV and is converted here (half the bytes, no swscale on the CPU).
  bool prefers_yuv_frames() const override { return true; }
  std::string device_name() const override { return device_name_; }

  Lanes* lanes() override { return &lanes_; }
  GraphReplay* graph_replay() override { return &graphs_; }
  Timelines* timelines() override { return &lanes_; }
  FrameSinks* frame_sinks() override { return this; }
  ReferenceGemm* reference_gemm() override { return this; }
  DeviceGradcam* device_gradcam() override { return this; }
  FaceFrameOps* face_frame_ops() override { return this; }

  Buffer allocate(size_t bytes) override { return meter_.track(cuda::device_buffer(bytes)); }
  void copy_from_host(const Tensor& dst, const void* src) override {
    FV_CUDA_CHECK(
        cudaMemcpyAsync(dst.data(), src, dst.bytes(), cudaMemcpyHostToDevice, lanes_.current()));
    FV_CUDA_CHECK(cudaStreamSynchronize(lanes_.current()));
  }
  void copy_to_host(void* dst, const Tensor& src) override {
    copy_to_host_async(dst, src);
    FV_CUDA_CHECK(cudaStreamSynchronize(lanes_.current()));
  }
  Buffer allocate_host(size_t bytes) override { return cuda::pinned_buffer(bytes); }
  void copy_to_host_async(void* dst, const Tensor& src) override {
    FV_CUDA_CHECK(
        cudaMemcpyAsync(dst, src.data(), src.bytes(), cudaMemcpyDeviceToHost, lanes_.current()));
  }
  void synchronize() override { lanes_.synchronize_all(); }
  size_t peak_memory_bytes() const override { return meter_.peak(); }

  std::unique_ptr<PreparedLayer> prepare(const LayerDesc& layer,
                                         const LayerWeights& weights) override {
    return cuda::prepare_layer(*this, conv_policy_, layer, weights);
  }

  void preprocess(std::span<const ImageView> frames, std::span<const CropRect> crops,
                  const Preprocess& pp, const Tensor& out) override {
    uploads_.preprocess(frames, crops, pp, out, lanes_.current());
    after_op("preprocess");
  }
  void preprocess_yuv420(std::span<const YuvView> frames, std::span<const CropRect> crops,
                         const ColorSpec& cs, const Preprocess& pp, const Tensor& out) override {
    uploads_.preprocess_yuv420(frames, crops, cs, pp, out, lanes_.current(), frames_read_);
    after_op("preprocess_yuv420");
  }
  // The frames' table (and the faces') go up behind the queued work; the planes are read where
  // they are, so they must be in device memory already.
  void letterbox_yuv420(std::span<const YuvView> frames, const ColorSpec& cs,
                        const Tensor& out) override {
    if (frames.empty()) return;
    cuda::letterbox_yuv420(device_frames(frames, "letterbox_yuv420"), int(frames.size()), cs, out,
                           lanes_.current());
    frames_read_.record(lanes_.current());
    after_op("letterbox_yuv420");
  }
  void face_crops_yuv420(std::span<const YuvView> frames, std::span<const FaceSquare> faces,
                         int crop_size, const ColorSpec& cs, const Preprocess& pp,
                         const Tensor& out) override {
    if (faces.empty()) return;
    for (const FaceSquare& q : faces)
      if (q.frame < 0 || size_t(q.frame) >= frames.size() || !(q.side > 0))
        fail("cuda face_crops_yuv420: a face outside the frames, or an empty square");
    const YuvView* table = device_frames(frames, "face_crops_yuv420");
    const void* squares = face_squares_.upload(faces.data(), faces.size_bytes(), lanes_.current());
    cuda::face_crops_yuv420(table, static_cast<const FaceSquare*>(squares), int(faces.size()),
                            crop_size, cs, pp, out, lanes_.current());
    frames_read_.record(lanes_.current());
    after_op("face_crops_yuv420");
  }
  void softmax_argmax(const Tensor& logits, const Tensor& probs, const Tensor& labels) override {
    lanes_.on_network("softmax_argmax");
    cuda::softmax_argmax(logits, probs, labels, lanes_.network());
    after_op("softmax_argmax");
  }
  void vote_accumulate(const Tensor& probs, const Tensor& labels, std::span<const Segment> segments,
                       const Tensor& counts, const Tensor& sums) override {
    if (segments.empty()) return;
    const void* dev = segments_.upload(segments.data(), segments.size_bytes(), lanes_.current());
    cuda::vote_accumulate(probs, labels, static_cast<const Segment*>(dev), int(segments.size()),
                          counts, sums, lanes_.current());
    after_op("vote_accumulate");
  }
  void vote_finalize(const Tensor& counts, const Tensor& sums, std::span<const int> slots,
                     VoteMode mode, const Tensor& winners, const Tensor& out_counts,
                     const Tensor& out_sums) override {
    if (slots.empty()) return;
    const void* dev = slots_.upload(slots.data(), slots.size_bytes(), lanes_.current());
    cuda::vote_finalize(counts, sums, static_cast<const int*>(dev), int(slots.size()), mode,
                        winners, out_counts, out_sums, lanes_.current());
    after_op("vote_finalize");
  }

  std::shared_ptr<DeviceFrameSink> make_frame_sink(int max_frames) override {
    return cuda::make_frame_sink(frames_read_.get(), meter_, max_frames);
  }
  double gemm_tflops(int size, int iters) override {
    cuda::Stream stream;
    cuda::LinearCublasLt gemm(stream.get(), precision_.tf32, MemoryMeter());
    return gemm.gemm_tflops(precision_.dtype, size, iters);
  }
  void gradcam(const Tensor& acts, Head head, std::span<const DenseWeights> dense,
               std::span<int> classes, const Tensor& maps, const Tensor& logits) override {
    if (!gradcam_) gradcam_ = std::make_unique<cuda::GradcamHead>(lanes_.network(), meter_);
    gradcam_->run(acts, head == Head::Gap, dense, classes, maps, logits);
  }

 private:
  // LayerHost: what the prepared layers use.
  cudaStream_t network_stream() override { return lanes_.network(); }
  void on_network(const char* op) override { lanes_.on_network(op); }
  DType dtype() override { return precision_.dtype; }
  cuda::ConvCudnn& cudnn() override { return cudnn_; }
  cuda::LinearCublasLt& gemm() override { return gemm_; }
  Tensor scratch(std::vector<int64_t> shape, DType dtype) override {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    const size_t bytes = size_t(n) * dtype_size(dtype);
    if (scratch_.bytes() < bytes) {
      FV_CUDA_CHECK(cudaStreamSynchronize(lanes_.network()));
      scratch_ = Buffer();
      scratch_ = allocate(bytes);
    }
    return Tensor::view(scratch_, std::move(shape), dtype, Layout::NHWC);
  }
  OwnedTensor upload(const Tensor& host_f32, DType dtype) override {
    if (host_f32.dtype() != DType::F32) fail("upload: expected f32, got " + host_f32.describe());
    std::vector<uint8_t> bytes =
        convert(host_f32.ptr<const float>(), size_t(host_f32.numel()), dtype);
    OwnedTensor t;
    t.buffer = allocate(bytes.size());
    t.tensor = Tensor::view(t.buffer, host_f32.shape(), dtype, host_f32.layout());
    copy_from_host(t.tensor, bytes.data());
    return t;
  }
  // The device table of `frames` for a face op: each must be in device memory.
  const YuvView* device_frames(std::span<const YuvView> frames, const char* op) {
    for (const YuvView& f : frames)
      if (!f.on_device || !f.y || !f.u || !f.v || f.width < 1 || f.height < 1)
        fail(std::string("cuda ") + op + ": a frame not in device memory (" +
             std::to_string(f.width) + "x" + std::to_string(f.height) + ")");
    return static_cast<const YuvView*>(
        face_frames_.upload(frames.data(), frames.size_bytes(), lanes_.current()));
  }
  // FERVID_SYNC_CHECK=1: a synchronise after every op, so that an asynchronous fault is reported
  // by the op that caused it.
  void after_op(const char* op) override {
    if (!sync_check_) return;
    cudaError_t rc = cudaStreamSynchronize(lanes_.current());
    if (rc != cudaSuccess)
      fail(std::string("cuda ") + op + " failed on the device: " + cudaGetErrorName(rc) + " (" +
           cudaGetErrorString(rc) + ")");
  }
  static bool sync_check_asked() {
    const char* sync = std::getenv("FERVID_SYNC_CHECK");
    return sync && std::string(sync) == "1";
  }

  // The buffers a captured graph points at besides the model's own: they move when a larger
  // one is needed, and a graph captured before that would use the freed one.
  cuda::CudaGraphs::Placement placement() const {
    return {scratch_.data(), cudnn_.workspace(), gemm_.workspace()};
  }

  Arithmetic precision_;
  CudaConvPolicy conv_policy_;
  bool sync_check_ = false;
  std::string device_name_;
  MemoryMeter meter_;
  cuda::CudaLanes lanes_;
  cuda::ConvCudnn cudnn_;
  cuda::LinearCublasLt gemm_;
  std::unique_ptr<cuda::GradcamHead> gradcam_;  // made on the first Grad-CAM
  cuda::FrameUploads uploads_;
  cuda::TableUpload segments_, slots_, face_frames_, face_squares_;
  cuda::Event frames_read_;
  Buffer scratch_;
  cuda::CudaGraphs graphs_;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(const BackendOptions& options) {
  std::string why;
  if (!cuda_device_available(&why)) fail_device("{{device}} cuda: " + why);
  FV_CUDA_CHECK(cudaSetDevice(0));
  return std::make_unique<CudaBackend>(arithmetic_of(options.precision),
                                       resolve_cuda_conv(options.conv_impl, options.precision),
                                       options.cuda_graphs);
}

}  // namespace fervid
