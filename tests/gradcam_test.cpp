// cpu::gradcam against an independent float64 Grad-CAM written from its definition: the full
// gradient of the class logit with respect to every activation (through the dense layers, their
// ReLUs, GAP or the CHW flatten, and the max-pool's routing to the first largest of each 2x2
// window, as torch routes it), its mean per channel, the weighted sum, ReLU, torch's bilinear
// (align_corners=False) and the max-normalisation. Fresh random inputs each run; ReLU-like
// activations (about half exact zeros, so pool windows tie).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/ops.h"
#include "test_util.h"

namespace fervid::test {
namespace {

struct Case {
  Head head;
  int n, h, w, k, s;
  std::vector<int> dense;  // hidden widths, then the classes
};

struct Net {
  std::vector<OwnedTensor> w, b;
};

// Reference: frame f's map [s*s] and logits, float64.
void reference(const float* a, const Case& c, const Net& net, int& cls, std::vector<double>& map,
               std::vector<double>& logits) {
  const int ph = c.h / 2, pw = c.w / 2, k = c.k;
  std::vector<double> pooled(size_t(ph) * pw * k);
  std::vector<int> arg(pooled.size());  // the routed input (y * w + x)
  for (int i = 0; i < ph; ++i)
    for (int j = 0; j < pw; ++j)
      for (int ch = 0; ch < k; ++ch) {
        double best = -INFINITY;
        int at = 0;
        for (int dy = 0; dy < 2; ++dy)
          for (int dx = 0; dx < 2; ++dx) {
            const int y = 2 * i + dy, x = 2 * j + dx;
            const double v = a[(size_t(y) * c.w + x) * k + ch];
            if (v > best) best = v, at = y * c.w + x;
          }
        pooled[(size_t(i) * pw + j) * k + ch] = best;
        arg[(size_t(i) * pw + j) * k + ch] = at;
      }
  std::vector<double> x;
  if (c.head == Head::Gap) {
    x.assign(k, 0);
    for (size_t p = 0; p < size_t(ph) * pw; ++p)
      for (int ch = 0; ch < k; ++ch) x[ch] += pooled[p * k + ch] / (ph * pw);
  } else {
    for (int ch = 0; ch < k; ++ch)
      for (int p = 0; p < ph * pw; ++p) x.push_back(pooled[size_t(p) * k + ch]);
  }
  std::vector<std::vector<double>> zs;  // pre-activations
  for (size_t l = 0; l < net.w.size(); ++l) {
    const Tensor& W = net.w[l].tensor;
    std::vector<double> z(W.dim(0));
    for (int64_t o = 0; o < W.dim(0); ++o) {
      z[o] = net.b[l].tensor.ptr<float>()[o];
      for (int64_t i = 0; i < W.dim(1); ++i)
        z[o] += double(W.ptr<float>()[o * W.dim(1) + i]) * x[i];
    }
    zs.push_back(z);
    x = z;
    if (l + 1 < net.w.size())
      for (double& v : x) v = std::max(v, 0.0);
  }
  logits = x;
  if (cls < 0) cls = int(std::max_element(x.begin(), x.end()) - x.begin());
  std::vector<double> g(x.size(), 0);
  g[cls] = 1;
  for (size_t l = net.w.size(); l-- > 0;) {
    const Tensor& W = net.w[l].tensor;
    if (l + 1 < net.w.size())
      for (size_t o = 0; o < g.size(); ++o) g[o] *= zs[l][o] > 0 ? 1 : 0;
    std::vector<double> back(W.dim(1), 0);
    for (int64_t o = 0; o < W.dim(0); ++o)
      for (int64_t i = 0; i < W.dim(1); ++i) back[i] += g[o] * W.ptr<float>()[o * W.dim(1) + i];
    g = back;
  }
  std::vector<double> dA(size_t(c.h) * c.w * k, 0);
  for (int p = 0; p < ph * pw; ++p)
    for (int ch = 0; ch < k; ++ch) {
      const double d = c.head == Head::Gap ? g[ch] / (ph * pw) : g[size_t(ch) * ph * pw + p];
      dA[size_t(arg[size_t(p) * k + ch]) * k + ch] += d;
    }
  std::vector<double> cam(size_t(c.h) * c.w, 0);
  for (int ch = 0; ch < k; ++ch) {
    double alpha = 0;
    for (int p = 0; p < c.h * c.w; ++p) alpha += dA[size_t(p) * k + ch];
    alpha /= c.h * c.w;
    for (int p = 0; p < c.h * c.w; ++p) cam[p] += alpha * a[size_t(p) * k + ch];
  }
  for (double& v : cam) v = std::max(v, 0.0);
  auto src = [](int o, int in, int out) {  // torch's upsample_bilinear2d source index
    const double s = std::max((o + 0.5) * in / out - 0.5, 0.0);
    const int i0 = std::min(int(s), in - 1);
    return std::tuple<int, int, double>(i0, std::min(i0 + 1, in - 1), s - i0);
  };
  map.assign(size_t(c.s) * c.s, 0);
  double top = 0;
  for (int y = 0; y < c.s; ++y)
    for (int xx = 0; xx < c.s; ++xx) {
      const auto [y0, y1, ly] = src(y, c.h, c.s);
      const auto [x0, x1, lx] = src(xx, c.w, c.s);
      auto at = [&](int yy, int x2) { return cam[size_t(yy) * c.w + x2]; };
      const double v = (1 - ly) * ((1 - lx) * at(y0, x0) + lx * at(y0, x1)) +
                       ly * ((1 - lx) * at(y1, x0) + lx * at(y1, x1));
      map[size_t(y) * c.s + xx] = v;
      top = std::max(top, v);
    }
  for (double& v : map) v = top > 0 ? v / top : 0;
}

class GradcamTest : public testing::TestWithParam<Case> {};

TEST_P(GradcamTest, MatchesChainRuleReference) {
  SeedTrace trace;
  const Case c = GetParam();
  const int classes = c.dense.back();
  // Frame 0 explains its top class (-1), the others a class of their own.
  std::vector<int> asked(c.n);
  for (int f = 0; f < c.n; ++f) asked[f] = f == 0 ? -1 : f % classes;
  // Fresh activations and weights, drawn again until every frame's reference map has positive
  // evidence somewhere: a map of zeros proves little, and with few channels a class whose
  // weights are all negative is a common draw (a few draws at most).
  OwnedTensor acts;
  Net net;
  std::vector<std::vector<double>> want_maps(c.n), want_logits(c.n);
  std::vector<int> want_cls;
  for (int attempt = 0;; ++attempt) {
    ASSERT_LT(attempt, 200) << "no draw gave every frame a map with a positive value";
    acts = host_tensor({c.n, c.h, c.w, c.k}, DType::F32);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (int64_t i = 0; i < acts.tensor.numel(); ++i)
      acts.tensor.ptr<float>()[i] = std::max(normal(rng()), 0.0f);
    net = Net{};
    int64_t in = c.head == Head::Gap ? c.k : int64_t(c.k) * (c.h / 2) * (c.w / 2);
    for (size_t l = 0; l < c.dense.size(); ++l) {
      net.w.push_back(host_tensor({c.dense[l], in}, DType::F32));
      net.b.push_back(host_tensor({c.dense[l]}, DType::F32));
      fill_uniform(net.w.back().tensor, -1.0f / std::sqrt(float(in)), 1.0f / std::sqrt(float(in)));
      fill_uniform(net.b.back().tensor, -0.1f, 0.1f);
      in = c.dense[l];
    }
    want_cls = asked;
    bool evidence = true;
    for (int f = 0; f < c.n; ++f) {
      reference(acts.tensor.ptr<float>() + size_t(f) * c.h * c.w * c.k, c, net, want_cls[f],
                want_maps[f], want_logits[f]);
      evidence = evidence && *std::max_element(want_maps[f].begin(), want_maps[f].end()) > 0;
    }
    if (evidence) break;
  }
  std::vector<DenseWeights> dense;
  for (size_t l = 0; l < c.dense.size(); ++l)
    dense.push_back({&net.w[l].tensor, &net.b[l].tensor, l + 1 < c.dense.size()});
  auto maps = host_tensor({c.n, c.s, c.s}, DType::F32);
  auto logits = host_tensor({c.n, classes}, DType::F32);
  std::vector<int> cls = asked;
  poison(maps.tensor);
  poison(logits.tensor);
  cpu::gradcam(acts.tensor, c.head, dense, cls, maps.tensor, logits.tensor);
  for (int f = 0; f < c.n; ++f) {
    EXPECT_EQ(cls[f], want_cls[f]) << "frame " << f;
    expect_close(maps.tensor.ptr<float>() + size_t(f) * c.s * c.s, want_maps[f], kFp32,
                 "gradcam map, frame " + std::to_string(f));
    expect_close(logits.tensor.ptr<float>() + size_t(f) * classes, want_logits[f], kFp32,
                 "gradcam logits, frame " + std::to_string(f));
  }
}

INSTANTIATE_TEST_SUITE_P(Heads, GradcamTest,
                         testing::Values(Case{Head::Gap, 3, 14, 14, 24, 56, {16, 12, 5}},
                                         Case{Head::Flatten, 2, 14, 14, 8, 64, {20, 6}},
                                         Case{Head::Gap, 2, 7, 9, 5, 33, {4}}));

TEST(Gradcam, RejectsAClassOutsideTheHead) {
  auto acts = host_tensor({1, 4, 4, 2}, DType::F32);
  fill_uniform(acts.tensor, 0.0f, 1.0f);
  auto w = host_tensor({3, 2}, DType::F32), b = host_tensor({3}, DType::F32);
  fill_uniform(w.tensor, -1.0f, 1.0f);
  fill_uniform(b.tensor, -1.0f, 1.0f);
  const std::vector<DenseWeights> dense{{&w.tensor, &b.tensor, false}};
  auto maps = host_tensor({1, 8, 8}, DType::F32);
  auto logits = host_tensor({1, 3}, DType::F32);
  std::vector<int> cls{3};
  EXPECT_THROW(cpu::gradcam(acts.tensor, Head::Gap, dense, cls, maps.tensor, logits.tensor), Error);
}

}  // namespace
}  // namespace fervid::test
