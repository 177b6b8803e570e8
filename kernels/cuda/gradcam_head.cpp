// GradcamHead (library_ops.h): Grad-CAM's head, backward pass and map on the device, in f32.
// The dense layers go up once: each weight as it is (columns in the device's HWC feature order
// after a flatten: the activations are NHWC) for the forward pass, and transposed for the
// backward one, where dX [N,in] = dY [N,out] W [out,in] is LinearCublasLt's x w^T with w = W^T
// and a zero bias.
#include <algorithm>
#include <string>
#include <vector>

#include "cuda/check.h"
#include "cuda/library_ops.h"
#include "cuda/ops.h"
#include "cuda/runtime.h"
#include "fervid/label_rule.h"

namespace fervid::cuda {

struct GradcamHead::DeviceLayer {
  Buffer w, wt, b, zero;
  Tensor tw, twt, tb, tzero;  // [out,in], [in,out], [out], [in]
  bool relu = false;
  int64_t in = 0, out = 0;
};

namespace {

Tensor device_tensor(const Buffer& b, std::vector<int64_t> shape) {
  return Tensor(b.data(), std::move(shape), DType::F32, Layout::Plain, Device::Cuda);
}

}  // namespace

GradcamHead::GradcamHead(cudaStream_t stream, MemoryMeter meter)
    : stream_(stream), meter_(meter), gemm_(stream, /*allow_tf32=*/false, meter) {}

GradcamHead::~GradcamHead() = default;

const std::vector<GradcamHead::DeviceLayer>& GradcamHead::layers_for(
    std::span<const DenseWeights> dense, int64_t k, int64_t positions, bool gap_head) {
  if (layers_key_ == dense[0].w && layers_.size() == dense.size()) return layers_;
  layers_.clear();
  layers_key_ = nullptr;
  std::vector<DeviceLayer> layers(dense.size());
  for (size_t l = 0; l < dense.size(); ++l) {
    const Tensor& hw = *dense[l].w;
    const int64_t out = hw.dim(0), in = hw.dim(1);
    const float* src = hw.ptr<const float>();
    std::vector<float> w(size_t(out * in)), wt(size_t(out * in));
    for (int64_t o = 0; o < out; ++o)
      for (int64_t i = 0; i < in; ++i) {
        // After a flatten, feature i = c * positions + p (CHW) lives at p * k + c (HWC).
        const int64_t j = l == 0 && !gap_head ? (i % positions) * k + i / positions : i;
        w[size_t(o * in + j)] = src[o * in + i];
        wt[size_t(j * out + o)] = src[o * in + i];
      }
    DeviceLayer& d = layers[l];
    d.in = in;
    d.out = out;
    d.relu = dense[l].relu;
    d.w = meter_.track(device_buffer(w.size() * 4));
    d.wt = meter_.track(device_buffer(wt.size() * 4));
    d.b = meter_.track(device_buffer(size_t(out) * 4));
    d.zero = meter_.track(device_buffer(size_t(in) * 4));
    FV_CUDA_CHECK(cudaMemcpy(d.w.data(), w.data(), w.size() * 4, cudaMemcpyHostToDevice));
    FV_CUDA_CHECK(cudaMemcpy(d.wt.data(), wt.data(), wt.size() * 4, cudaMemcpyHostToDevice));
    FV_CUDA_CHECK(
        cudaMemcpy(d.b.data(), dense[l].b->data(), size_t(out) * 4, cudaMemcpyHostToDevice));
    FV_CUDA_CHECK(cudaMemset(d.zero.data(), 0, size_t(in) * 4));
    d.tw = device_tensor(d.w, {out, in});
    d.twt = device_tensor(d.wt, {in, out});
    d.tb = device_tensor(d.b, {out});
    d.tzero = device_tensor(d.zero, {in});
  }
  layers_ = std::move(layers);
  layers_key_ = dense[0].w;
  return layers_;
}

void GradcamHead::run(const Tensor& acts, bool gap_head, std::span<const DenseWeights> dense,
                      std::span<int> classes, const Tensor& maps, const Tensor& logits) {
  if (acts.rank() != 4 || acts.device() != Device::Cuda)
    fail("cuda gradcam: acts must be a rank-4 device tensor, got " + acts.describe());
  const int64_t n = acts.dim(0), h = acts.dim(1), w = acts.dim(2), k = acts.dim(3);
  const int64_t ph = h / 2, pw = w / 2, positions = ph * pw;
  if (dense.empty() || ph < 1 || pw < 1) fail("cuda gradcam: no dense layer, or acts below 2x2");
  if (maps.rank() != 3 || maps.dim(0) != n || maps.dim(1) != maps.dim(2) ||
      maps.dtype() != DType::F32 || maps.device() == Device::Cuda)
    fail("cuda gradcam: maps must be f32 [N,S,S] on the host, got " + maps.describe());
  const int64_t c = dense.back().w->dim(0);
  if (logits.rank() != 2 || logits.dim(0) != n || logits.dim(1) != c ||
      logits.dtype() != DType::F32 || logits.device() == Device::Cuda)
    fail("cuda gradcam: logits must be f32 [N,C] on the host, got " + logits.describe());
  if (int64_t(classes.size()) != n) fail("cuda gradcam: one class per frame is needed");
  int64_t features = gap_head ? k : k * positions;
  for (const DenseWeights& d : dense) {
    if (d.w->rank() != 2 || d.w->dim(1) != features || d.w->dtype() != DType::F32 ||
        d.b->numel() != d.w->dim(0) || d.b->dtype() != DType::F32)
      fail("cuda gradcam: dense layer " + d.w->describe() + " does not take " +
           std::to_string(features) + " features");
    features = d.w->dim(0);
  }
  for (int cls : classes)
    if (cls < -1 || cls >= c) fail("cuda gradcam: class " + std::to_string(cls) + " outside");
  if (n == 0) return;
  const std::vector<DeviceLayer>& layers = layers_for(dense, k, positions, gap_head);

  // The activations in f32, pooled, the head's features.
  auto buffer = [&](int64_t elems) { return meter_.track(device_buffer(size_t(elems) * 4)); };
  Buffer a32 = buffer(n * h * w * k), pooled = buffer(n * positions * k), feat = buffer(n * k);
  const Tensor ta = device_tensor(a32, {n, h, w, k}), tp = device_tensor(pooled, {n, ph, pw, k});
  to_f32(acts, ta, stream_);
  maxpool2x2(ta, tp, stream_);
  Tensor x = device_tensor(pooled, {n, positions * k});
  if (gap_head) {
    x = device_tensor(feat, {n, k});
    global_avgpool(tp, x, stream_);
  }
  // Forward, keeping each layer's output for the ReLU masks on the way back.
  std::vector<Buffer> out_buf;
  std::vector<Tensor> outs;
  int64_t widest = x.dim(1);
  for (const DeviceLayer& d : layers) {
    out_buf.push_back(buffer(n * d.out));
    outs.push_back(device_tensor(out_buf.back(), {n, d.out}));
    gemm_.run(x, d.tw, d.tb, d.relu, outs.back());
    x = outs.back();
    widest = std::max(widest, d.out);
  }
  FV_CUDA_CHECK(cudaMemcpyAsync(logits.data(), outs.back().data(), size_t(n * c) * 4,
                                cudaMemcpyDeviceToHost, stream_));
  FV_CUDA_CHECK(cudaStreamSynchronize(stream_));
  // Each frame's class (when -1, its label: fervid/label_rule.h), as a one-hot
  // gradient of the logits.
  std::vector<float> onehot(size_t(n * c), 0.0f);
  for (int64_t f = 0; f < n; ++f) {
    const float* lg = logits.ptr<const float>() + f * c;
    if (classes[size_t(f)] < 0) classes[size_t(f)] = label_of_row(lg, int(c));
    onehot[size_t(f * c + classes[size_t(f)])] = 1.0f;
  }
  Buffer g0 = buffer(n * widest), g1 = buffer(n * widest);
  Tensor g = device_tensor(g0, {n, c});
  FV_CUDA_CHECK(
      cudaMemcpyAsync(g.data(), onehot.data(), onehot.size() * 4, cudaMemcpyHostToDevice, stream_));
  // Back through each layer's ReLU and weights, ping-ponging between g0 and g1.
  for (size_t l = layers.size(); l-- > 0;) {
    const DeviceLayer& d = layers[l];
    if (d.relu) relu_mask(g, outs[l], stream_);
    const Tensor next = device_tensor(g.data() == g0.data() ? g1 : g0, {n, d.in});
    gemm_.run(g, d.twt, d.tzero, false, next);
    g = next;
  }
  // The channel means of the gradient at the activations (the pool routes each pooled gradient
  // to one input of its channel, so the channel's sum is the pooled features' sum), the map.
  Buffer alpha = buffer(n * k), cam = buffer(n * h * w), dev_maps = buffer(maps.numel());
  const Tensor talpha = device_tensor(alpha, {n, k});
  channel_sums(g, gap_head ? 1 : int(positions), 1.0f / float(h * w), talpha, stream_);
  const Tensor tmaps = device_tensor(dev_maps, {n, maps.dim(1), maps.dim(2)});
  gradcam_map(ta, talpha, device_tensor(cam, {n, h, w}), tmaps, stream_);
  FV_CUDA_CHECK(cudaMemcpyAsync(maps.data(), tmaps.data(), size_t(maps.numel()) * 4,
                                cudaMemcpyDeviceToHost, stream_));
  FV_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

}  // namespace fervid::cuda
