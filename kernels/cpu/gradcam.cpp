#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cpu/check.h"
#include "cpu/ops.h"
#include "cpu/resize_taps.h"
#include "fervid/label_rule.h"

namespace fervid::cpu {

namespace {

// One frame: acts [H,W,K] -> logits[C] (float64) and the gradient of logit `cls` with respect
// to the pooled features, summed per channel (alpha before its division by H*W).
void head_and_channel_gradient(const float* acts, int h, int w, int k, Head head,
                               std::span<const DenseWeights> dense, int& cls,
                               std::vector<double>& logits, std::vector<double>& alpha) {
  const int ph = h / 2, pw = w / 2;
  // The 2x2 max-pool, then the head's feature vector: GAP, or flattened in torchvision's CHW
  // order.
  std::vector<double> pooled(size_t(ph) * pw * k);
  for (int i = 0; i < ph; ++i)
    for (int j = 0; j < pw; ++j)
      for (int c = 0; c < k; ++c) {
        auto at = [&](int y, int x) { return double(acts[(size_t(y) * w + x) * k + c]); };
        pooled[(size_t(i) * pw + j) * k + c] =
            std::max(std::max(at(2 * i, 2 * j), at(2 * i, 2 * j + 1)),
                     std::max(at(2 * i + 1, 2 * j), at(2 * i + 1, 2 * j + 1)));
      }
  std::vector<double> feat;
  if (head == Head::Gap) {
    feat.assign(k, 0.0);
    for (size_t p = 0; p < size_t(ph) * pw; ++p)
      for (int c = 0; c < k; ++c) feat[c] += pooled[p * k + c];
    for (double& v : feat) v /= double(ph) * pw;
  } else {
    feat.resize(pooled.size());
    for (int c = 0; c < k; ++c)
      for (size_t p = 0; p < size_t(ph) * pw; ++p)
        feat[c * size_t(ph) * pw + p] = pooled[p * k + c];
  }
  // The dense layers forward, keeping each one's output for the way back (its ReLU passes the
  // gradient where the output is > 0).
  std::vector<std::vector<double>> outputs;
  std::vector<double> x = std::move(feat);
  for (const DenseWeights& d : dense) {
    const int64_t out = d.w->dim(0), in = d.w->dim(1);
    const float* wp = d.w->ptr<const float>();
    const float* bp = d.b->ptr<const float>();
    std::vector<double> y(out);
    for (int64_t o = 0; o < out; ++o) {
      double s = bp[o];
      const float* row = wp + o * in;
      for (int64_t i = 0; i < in; ++i) s += double(row[i]) * x[i];
      y[o] = d.relu ? std::max(s, 0.0) : s;
    }
    outputs.push_back(y);
    x = std::move(y);
  }
  logits = x;
  if (cls < 0) cls = label_of_row(logits.data(), int(logits.size()));  // fervid/label_rule.h
  // Back: d logit_cls / d output of each layer, through its ReLU (where its output is > 0).
  std::vector<double> grad(logits.size(), 0.0);
  grad[cls] = 1.0;
  for (size_t l = dense.size(); l-- > 0;) {
    const DenseWeights& d = dense[l];
    const int64_t out = d.w->dim(0), in = d.w->dim(1);
    const float* wp = d.w->ptr<const float>();
    if (d.relu)
      for (int64_t o = 0; o < out; ++o)
        if (!(outputs[l][o] > 0)) grad[o] = 0;
    std::vector<double> back(in, 0.0);
    for (int64_t o = 0; o < out; ++o) {
      if (grad[o] == 0) continue;
      const float* row = wp + o * in;
      for (int64_t i = 0; i < in; ++i) back[i] += grad[o] * double(row[i]);
    }
    grad = std::move(back);
  }
  // Through GAP or the flatten to the pooled features, and summed per channel. The max-pool
  // sends each pooled gradient to one of its four inputs, so the sum over a channel's
  // activations is the sum over its pooled features whichever input that is.
  alpha.assign(k, 0.0);
  if (head == Head::Gap) {
    for (int c = 0; c < k; ++c) alpha[c] = grad[c];  // 1/(ph*pw) for each of ph*pw features
  } else {
    for (int c = 0; c < k; ++c)
      for (size_t p = 0; p < size_t(ph) * pw; ++p) alpha[c] += grad[c * size_t(ph) * pw + p];
  }
}

}  // namespace

void gradcam(const Tensor& acts, Head head, std::span<const DenseWeights> dense,
             std::span<int> classes, const Tensor& maps, const Tensor& logits) {
  constexpr const char* op = "gradcam";
  if (acts.rank() != 4) fail(std::string(op) + ": acts must be rank 4");
  const int64_t n = acts.dim(0), h = acts.dim(1), w = acts.dim(2), k = acts.dim(3);
  expect(acts, {n, h, w, k}, DType::F32, op, "acts");
  if (maps.rank() != 3) fail(std::string(op) + ": maps must be rank 3");
  const int64_t s = maps.dim(1);
  expect(maps, {n, s, s}, DType::F32, op, "maps");
  if (dense.empty()) fail(std::string(op) + ": no dense layer");
  expect(logits, {n, dense.back().w->dim(0)}, DType::F32, op, "logits");
  if (int64_t(classes.size()) != n) fail(std::string(op) + ": one class per frame is needed");
  if (h < 2 || w < 2) fail(std::string(op) + ": activations smaller than the 2x2 pool");
  // Every shape and class checked here: nothing may throw inside the parallel loop.
  int64_t features = head == Head::Gap ? k : k * (h / 2) * (w / 2);
  for (size_t l = 0; l < dense.size(); ++l) {
    const std::string layer = "dense layer " + std::to_string(l + 1);
    expect(*dense[l].w, {dense[l].w->dim(0), features}, DType::F32, op, (layer + " w").c_str());
    expect(*dense[l].b, {dense[l].w->dim(0)}, DType::F32, op, (layer + " b").c_str());
    features = dense[l].w->dim(0);
  }
  for (int c : classes)
    if (c < -1 || c >= features)
      fail(std::string(op) + ": class " + std::to_string(c) + " outside 0.." +
           std::to_string(features - 1));
  const std::vector<Tap> ty = resize_taps(int(h), int(s)), tx = resize_taps(int(w), int(s));
#pragma omp parallel for schedule(dynamic)
  for (int64_t f = 0; f < n; ++f) {
    const float* a = acts.ptr<const float>() + f * h * w * k;
    std::vector<double> lg, alpha;
    int cls = classes[f];
    head_and_channel_gradient(a, int(h), int(w), int(k), head, dense, cls, lg, alpha);
    classes[f] = cls;
    for (size_t c = 0; c < lg.size(); ++c)
      logits.ptr<float>()[f * int64_t(lg.size()) + c] = float(lg[c]);
    // The channel means of the gradient weigh the activations; ReLU; bilinear to s x s; / max.
    std::vector<double> cam(size_t(h) * w);
    for (int64_t p = 0; p < h * w; ++p) {
      double v = 0;
      for (int64_t c = 0; c < k; ++c) v += alpha[c] / double(h * w) * a[p * k + c];
      cam[p] = std::max(v, 0.0);
    }
    std::vector<double> up(size_t(s) * s);
    double top = 0;
    for (int64_t y = 0; y < s; ++y)
      for (int64_t x = 0; x < s; ++x) {
        const Tap &vy = ty[y], &vx = tx[x];
        auto at = [&](int yy, int xx) { return cam[size_t(yy) * w + xx]; };
        const double v =
            double(vy.w0) * (double(vx.w0) * at(vy.i0, vx.i0) + double(vx.w1) * at(vy.i0, vx.i1)) +
            double(vy.w1) * (double(vx.w0) * at(vy.i1, vx.i0) + double(vx.w1) * at(vy.i1, vx.i1));
        up[y * s + x] = v;
        top = std::max(top, v);
      }
    float* out = maps.ptr<float>() + f * s * s;
    for (size_t i = 0; i < up.size(); ++i) out[i] = top > 0 ? float(up[i] / top) : 0.0f;
  }
}

}  // namespace fervid::cpu
