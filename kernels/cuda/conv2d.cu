// conv2d_bias_act, add_act and upsample_bilinear2x (CUDA): the face detector's layers
// (docs/faces.md), kernels/cpu/conv2d.cpp on the device. Activations NHWC in f32, f16 or bf16 (a
// convolution may write f32 from a lower precision: the network's outputs), weights and bias f32,
// sums f32. One thread per output element, consecutive threads on consecutive channels: a
// detector is a few tens of MFLOP a frame, and these layers are bound by memory, not math.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda/check.h"
#include "cuda/ops.h"

namespace fervid::cuda {

namespace {

constexpr int kThreads = 256;

int blocks_for(long long total) {
  return int(std::min<long long>((total + kThreads - 1) / kThreads, 65535LL * 8));
}

// The shapes of a convolution, per axis: input h x w, output oh x ow.
struct ConvDims {
  int n, h, w, c, k, oh, ow, kernel, stride, pad, groups;
};

template <typename Tin, typename Tout>
__global__ void conv2d_nhwc(const Tin* __restrict__ x, const float* __restrict__ wt,
                            const float* __restrict__ b, Tout* __restrict__ y, ConvDims d,
                            bool relu) {
  const int cg = d.c / d.groups, kg = d.k / d.groups;
  const long long total = (long long)d.n * d.oh * d.ow * d.k;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
       i += (long long)gridDim.x * blockDim.x) {
    const int o = int(i % d.k);
    long long p = i / d.k;
    const int ox = int(p % d.ow);
    p /= d.ow;
    const int oy = int(p % d.oh);
    const long long img = p / d.oh;
    const int first = (o / kg) * cg;  // the group's first input channel
    const float* wo = wt + (long long)o * d.kernel * d.kernel * cg;
    float acc = b[o];
    for (int r = 0; r < d.kernel; ++r) {
      const int yi = oy * d.stride + r - d.pad;
      if (yi < 0 || yi >= d.h) continue;
      for (int s = 0; s < d.kernel; ++s) {
        const int xj = ox * d.stride + s - d.pad;
        if (xj < 0 || xj >= d.w) continue;
        const Tin* px = x + ((img * d.h + yi) * d.w + xj) * (long long)d.c + first;
        const float* tap = wo + (r * d.kernel + s) * cg;
        for (int ci = 0; ci < cg; ++ci) acc += float(px[ci]) * tap[ci];
      }
    }
    y[i] = Tout(relu ? fmaxf(acc, 0.0f) : acc);
  }
}

template <typename T>
__global__ void add_nhwc(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ y,
                         long long pixels, int ca, int cb, bool relu) {
  const int c = ca > cb ? ca : cb;
  const long long total = pixels * c;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
       i += (long long)gridDim.x * blockDim.x) {
    const int ch = int(i % c);
    const long long p = i / c;
    const float v =
        (ch < ca ? float(a[p * ca + ch]) : 0.0f) + (ch < cb ? float(b[p * cb + ch]) : 0.0f);
    y[i] = T(relu ? fmaxf(v, 0.0f) : v);
  }
}

// Along one axis: the two source pixels of output i and the weight of the second (the CPU's
// rule: half-pixel centres clamped at 0, else i / 2).
__device__ void upsample_tap(int i, int size, bool half_pixel, int& a, int& b, float& t) {
  const float at = half_pixel ? fmaxf((float(i) + 0.5f) / 2 - 0.5f, 0.0f) : float(i) / 2;
  a = min(int(at), size - 1);
  b = min(a + 1, size - 1);
  t = at - float(a);
}

template <typename T>
__global__ void upsample2x_nhwc(const T* __restrict__ x, T* __restrict__ y, int n, int h, int w,
                                int c, bool half_pixel) {
  const long long total = (long long)n * 2 * h * 2 * w * c;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
       i += (long long)gridDim.x * blockDim.x) {
    const int ch = int(i % c);
    long long p = i / c;
    const int ox = int(p % (2 * w));
    p /= 2 * w;
    const int oy = int(p % (2 * h));
    const long long img = p / (2 * h);
    int r0, r1, c0, c1;
    float ty, tx;
    upsample_tap(oy, h, half_pixel, r0, r1, ty);
    upsample_tap(ox, w, half_pixel, c0, c1, tx);
    auto at = [&](int r, int col) {
      return float(x[((img * h + r) * w + col) * (long long)c + ch]);
    };
    const float top = at(r0, c0) + tx * (at(r0, c1) - at(r0, c0));
    const float bottom = at(r1, c0) + tx * (at(r1, c1) - at(r1, c0));
    y[i] = T(top + ty * (bottom - top));
  }
}

template <typename Tin, typename Tout>
void launch_conv(const Tensor& x, const Tensor& w, const Tensor& b, const ConvDims& d, bool relu,
                 const Tensor& y, cudaStream_t stream) {
  const long long total = (long long)d.n * d.oh * d.ow * d.k;
  if (total == 0) return;
  conv2d_nhwc<Tin, Tout><<<blocks_for(total), kThreads, 0, stream>>>(
      x.ptr<const Tin>(), w.ptr<const float>(), b.ptr<const float>(), y.ptr<Tout>(), d, relu);
  FV_CUDA_CHECK(cudaGetLastError());
}

template <typename Tin>
void conv_to(const Tensor& x, const Tensor& w, const Tensor& b, const ConvDims& d, bool relu,
             const Tensor& y, cudaStream_t stream) {
  if (y.dtype() == DType::F32) return launch_conv<Tin, float>(x, w, b, d, relu, y, stream);
  if (y.dtype() != x.dtype())
    fail("cuda conv2d_bias_act: y " + y.describe() + " is not x's dtype or f32");
  launch_conv<Tin, Tin>(x, w, b, d, relu, y, stream);
}

// Calls f with a value of the element type of `dtype` (f32, f16, bf16).
template <typename F>
void by_dtype(DType dtype, const char* op, F&& f) {
  switch (dtype) {
    case DType::F32:
      return f(float{});
    case DType::F16:
      return f(__half{});
    case DType::BF16:
      return f(__nv_bfloat16{});
    default:
      fail(std::string("cuda ") + op + ": unsupported dtype");
  }
}

}  // namespace

void conv2d_bias_act(const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeometry& g,
                     bool relu, const Tensor& y, cudaStream_t stream) {
  if (x.rank() != 4 || w.rank() != 4 || y.rank() != 4 || w.dtype() != DType::F32 ||
      b.dtype() != DType::F32 || g.groups < 1 || g.pad_before < 0)
    fail("cuda conv2d_bias_act: x " + x.describe() + ", w " + w.describe() + ", y " + y.describe() +
         " do not fit");
  const ConvDims d{int(x.dim(0)), int(x.dim(1)), int(x.dim(2)), int(x.dim(3)),
                   int(w.dim(0)), int(y.dim(1)), int(y.dim(2)), g.kernel,
                   g.stride,      g.pad_before,  g.groups};
  if (d.c % d.groups || d.k % d.groups || w.dim(1) != g.kernel || w.dim(2) != g.kernel ||
      w.dim(3) != d.c / d.groups || b.numel() != d.k || y.dim(0) != d.n || y.dim(3) != d.k ||
      y.dim(1) != g.out_size(d.h) || y.dim(2) != g.out_size(d.w))
    fail("cuda conv2d_bias_act: x " + x.describe() + ", w " + w.describe() + ", y " + y.describe() +
         " do not fit the geometry");
  by_dtype(x.dtype(), "conv2d_bias_act",
           [&](auto t) { conv_to<decltype(t)>(x, w, b, d, relu, y, stream); });
}

void add_act(const Tensor& a, const Tensor& b, bool relu, const Tensor& y, cudaStream_t stream) {
  if (a.rank() != 4 || b.rank() != 4 || y.rank() != 4 || a.dtype() != b.dtype() ||
      a.dtype() != y.dtype() || a.dim(0) != b.dim(0) || a.dim(1) != b.dim(1) ||
      a.dim(2) != b.dim(2) || y.dim(0) != a.dim(0) || y.dim(1) != a.dim(1) ||
      y.dim(2) != a.dim(2) || y.dim(3) != std::max(a.dim(3), b.dim(3)))
    fail("cuda add_act: a " + a.describe() + ", b " + b.describe() + ", y " + y.describe() +
         " do not fit");
  const long long pixels = a.dim(0) * a.dim(1) * a.dim(2);
  if (pixels * y.dim(3) == 0) return;
  by_dtype(a.dtype(), "add_act", [&](auto t) {
    using T = decltype(t);
    add_nhwc<T><<<blocks_for(pixels * y.dim(3)), kThreads, 0, stream>>>(
        a.ptr<const T>(), b.ptr<const T>(), y.ptr<T>(), pixels, int(a.dim(3)), int(b.dim(3)), relu);
    FV_CUDA_CHECK(cudaGetLastError());
  });
}

void upsample_bilinear2x(const Tensor& x, bool half_pixel, const Tensor& y, cudaStream_t stream) {
  if (x.rank() != 4 || y.rank() != 4 || x.dtype() != y.dtype() || y.dim(0) != x.dim(0) ||
      y.dim(1) != 2 * x.dim(1) || y.dim(2) != 2 * x.dim(2) || y.dim(3) != x.dim(3))
    fail("cuda upsample_bilinear2x: x " + x.describe() + " and y " + y.describe() + " do not fit");
  if (y.numel() == 0) return;
  by_dtype(x.dtype(), "upsample_bilinear2x", [&](auto t) {
    using T = decltype(t);
    upsample2x_nhwc<T><<<blocks_for(y.numel()), kThreads, 0, stream>>>(
        x.ptr<const T>(), y.ptr<T>(), int(x.dim(0)), int(x.dim(1)), int(x.dim(2)), int(x.dim(3)),
        half_pixel);
    FV_CUDA_CHECK(cudaGetLastError());
  });
}

}  // namespace fervid::cuda
