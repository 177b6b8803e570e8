// conv3x3_igemm_pool (CUDA, hand-written): y = [maxpool2x2] ReLU(conv3x3(x, w) + b), stride 1,
// pad 1, NHWC activations, KRSC weights, f16 or bf16 in and out with f32 accumulation, on the
// tensor cores with mma.sync m16n8k16 (docs/kernels.md says why not wgmma yet).
//
// Implicit GEMM: M = output pixels, N = output channels K, GEMM-K = 9*C in (r, s, c) order, the
// order of the KRSC weights, so a weight row is one contiguous run. A block computes a tile of
// 8x16 output pixels (kBM = 128 rows of M, an 8x16 rectangle with an even origin, so every 2x2
// pool window lies inside one block) by 64 output channels (kBN). 4 warps, 2x2 over the tile,
// each 64x32: per 16-deep step 4 ldmatrix.x4 for A, 2 for B and 16 mma per warp.
// The GEMM-K loop runs over 32-wide chunks in a 3-stage shared-memory ring: cp.async (16 B,
// zero-filled at the image border) fetches chunks k+1 and k+2 while the tensor cores work on
// chunk k; one barrier per chunk. 45 KB of static shared memory, 128 registers: 4 blocks per SM.
// When C is a multiple of 32 a chunk is 32 channels of one tap and every load is a 16-byte
// vector; otherwise (the first layer, C = 3: GEMM-K = 27, one chunk) elements are gathered one
// by one.
// Epilogue: bias + ReLU in f32 on the accumulators, the tile goes to shared memory (reusing the
// load buffers), then either every pixel or, with the pool, the max of each 2x2 window is
// rounded once to the output type and written: the pooled layers write a quarter of the bytes
// and no full-resolution tensor ever reaches device memory.
// Arithmetic-bound on the big layers: 2*9*C FLOPs per output element against 2 bytes written.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "cuda/check.h"
#include "cuda/ops.h"

namespace fervid::cuda {

namespace {

constexpr int kTileH = 8, kTileW = 16;  // output pixels per block; even, for the 2x2 pool
constexpr int kBM = kTileH * kTileW;    // 128 GEMM rows
constexpr int kBN = 64;                 // output channels per block
constexpr int kBK = 32;                 // GEMM-K per pipeline stage
constexpr int kStages = 3;              // chunks in shared memory: 2 in flight, 1 computed
constexpr int kThreads = 128;           // 4 warps: 2 (M) x 2 (N), 64 x 32 each
constexpr int kPad = 8;                 // row pitch 40 halves = 80 B: ldmatrix's 8 rows hit
constexpr int kPitch = kBK + kPad;      // 8 distinct 4-bank groups, so no bank conflicts
constexpr int kOutPitch = kBN + 4;      // f32 epilogue tile pitch

struct LoadTiles {
  uint16_t a[kStages][kBM][kPitch];  // 30 KB
  uint16_t b[kStages][kBN][kPitch];  // 15 KB
};
union __align__(16) Shared {
  LoadTiles load;
  float out[kBM][kOutPitch];
};

struct ConvShape {
  int n, h, w, c, k;
  int tiles_w;  // blocks across the width
};

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

template <typename T>
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1);
template <>
__device__ __forceinline__ void mma16816<__half>(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                                 uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void mma16816<__nv_bfloat16>(float (&c)[4], const uint32_t (&a)[4],
                                                        uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Fetches GEMM-K chunk `kc` of A (im2col rows of the block's pixels) and B (weight rows of the
// block's channels) into stage `st`.
template <typename T, bool kVec>
__device__ __forceinline__ void load_chunk(Shared& sm, int st, int kc, const T* __restrict__ x,
                                           const T* __restrict__ w, const ConvShape& s, int img,
                                           int y0, int x0, int n0) {
  const int tid = threadIdx.x;
  const int gemm_k = 9 * s.c;
  const int k0 = kc * kBK;
  if constexpr (kVec) {
    // A chunk of 32 channels lies within one tap: 4 x 16 B per pixel row.
    const int tap = k0 / s.c, c0 = k0 % s.c, r = tap / 3, q = tap % 3;
#pragma unroll
    for (int i = 0; i < kBM * 4 / kThreads; ++i) {
      const int idx = tid + i * kThreads, row = idx / 4, part = idx % 4;
      const int oy = y0 + row / kTileW, ox = x0 + row % kTileW;
      const int iy = oy + r - 1, ix = ox + q - 1;
      const bool ok = oy < s.h && ox < s.w && iy >= 0 && iy < s.h && ix >= 0 && ix < s.w;
      const T* src = ok ? x + (((long long)img * s.h + iy) * s.w + ix) * s.c + c0 + part * 8 : x;
      cp_async16(&sm.load.a[st][row][part * 8], src, ok);
    }
#pragma unroll
    for (int i = 0; i < kBN * 4 / kThreads; ++i) {
      const int idx = tid + i * kThreads, row = idx / 4, part = idx % 4;
      const bool ok = n0 + row < s.k;
      const T* src = ok ? w + (long long)(n0 + row) * gemm_k + k0 + part * 8 : w;
      cp_async16(&sm.load.b[st][row][part * 8], src, ok);
    }
  } else {
    // Any C: element by element, zero outside the image, past GEMM-K and past K.
    const uint16_t* xs = reinterpret_cast<const uint16_t*>(x);
    const uint16_t* ws = reinterpret_cast<const uint16_t*>(w);
    for (int idx = tid; idx < kBM * kBK; idx += kThreads) {
      const int row = idx / kBK, kk = idx % kBK, k = k0 + kk;
      const int oy = y0 + row / kTileW, ox = x0 + row % kTileW;
      uint16_t v = 0;
      if (k < gemm_k && oy < s.h && ox < s.w) {
        const int tap = k / s.c, ch = k % s.c;
        const int iy = oy + tap / 3 - 1, ix = ox + tap % 3 - 1;
        if (iy >= 0 && iy < s.h && ix >= 0 && ix < s.w)
          v = xs[(((long long)img * s.h + iy) * s.w + ix) * s.c + ch];
      }
      sm.load.a[st][row][kk] = v;
    }
    for (int idx = tid; idx < kBN * kBK; idx += kThreads) {
      const int row = idx / kBK, kk = idx % kBK, k = k0 + kk;
      sm.load.b[st][row][kk] =
          n0 + row < s.k && k < gemm_k ? ws[(long long)(n0 + row) * gemm_k + k] : uint16_t(0);
    }
  }
}

template <typename T, bool kVec, bool kPool>
__global__ void __launch_bounds__(kThreads, 4)
    conv3x3_igemm_pool_nhwc(const T* __restrict__ x, const T* __restrict__ w,
                            const T* __restrict__ bias, T* __restrict__ y, ConvShape s) {
  __shared__ Shared sm;
  const int img = blockIdx.z, n0 = blockIdx.y * kBN;
  const int y0 = (blockIdx.x / s.tiles_w) * kTileH, x0 = (blockIdx.x % s.tiles_w) * kTileW;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int wm = (warp % 2) * 64, wn = (warp / 2) * 32;
  const int chunks = (9 * s.c + kBK - 1) / kBK;

  float acc[4][4][4] = {};
  // Prologue: the first kStages - 1 chunks in flight (one commit group per chunk, empty past
  // the end, so that group i always holds chunk i).
#pragma unroll
  for (int st = 0; st < kStages - 1; ++st) {
    if (st < chunks) load_chunk<T, kVec>(sm, st, st, x, w, s, img, y0, x0, n0);
    cp_async_commit();
  }
  for (int kc = 0; kc < chunks; ++kc) {
    cp_async_wait<kStages - 2>();  // chunk kc has landed (this thread's copies)...
    __syncthreads();  // ...everyone's, and everyone is done with the stage refilled below
    const int next = kc + kStages - 1;
    if (next < chunks) load_chunk<T, kVec>(sm, next % kStages, next, x, w, s, img, y0, x0, n0);
    cp_async_commit();
    const int st = kc % kStages;
#pragma unroll
    for (int ks = 0; ks < kBK; ks += 16) {
      uint32_t a[4][4], b[2][4];
#pragma unroll
      for (int mi = 0; mi < 4; ++mi)
        ldmatrix_x4(a[mi], &sm.load.a[st][wm + mi * 16 + lane % 16][ks + (lane / 16) * 8]);
#pragma unroll
      for (int nj = 0; nj < 2; ++nj)
        ldmatrix_x4(
            b[nj],
            &sm.load.b[st][wn + nj * 16 + lane % 8 + (lane / 16) * 8][ks + ((lane / 8) % 2) * 8]);
#pragma unroll
      for (int mi = 0; mi < 4; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni)
          mma16816<T>(acc[mi][ni], a[mi], b[ni / 2][(ni % 2) * 2], b[ni / 2][(ni % 2) * 2 + 1]);
    }
  }
  cp_async_wait<0>();
  __syncthreads();  // the epilogue's tile reuses the load stages

  // Epilogue 1: bias + ReLU on the accumulators into the f32 tile (fragment layout of
  // m16n8: c0,c1 at row lane/4, columns 2*(lane%4)+{0,1}; c2,c3 eight rows lower).
  const int g = lane / 4, t2 = (lane % 4) * 2;
#pragma unroll
  for (int ni = 0; ni < 4; ++ni) {
    const int col = wn + ni * 8 + t2;
    const float b0 = n0 + col < s.k ? float(bias[n0 + col]) : 0.0f;
    const float b1 = n0 + col + 1 < s.k ? float(bias[n0 + col + 1]) : 0.0f;
#pragma unroll
    for (int mi = 0; mi < 4; ++mi) {
      const int row = wm + mi * 16 + g;
      sm.out[row][col] = fmaxf(acc[mi][ni][0] + b0, 0.0f);
      sm.out[row][col + 1] = fmaxf(acc[mi][ni][1] + b1, 0.0f);
      sm.out[row + 8][col] = fmaxf(acc[mi][ni][2] + b0, 0.0f);
      sm.out[row + 8][col + 1] = fmaxf(acc[mi][ni][3] + b1, 0.0f);
    }
  }
  __syncthreads();

  // Epilogue 2: consecutive threads write consecutive channels of one pixel.
  if constexpr (!kPool) {
    for (int idx = threadIdx.x; idx < kBM * kBN; idx += kThreads) {
      const int p = idx / kBN, ch = idx % kBN;
      const int oy = y0 + p / kTileW, ox = x0 + p % kTileW;
      if (oy < s.h && ox < s.w && n0 + ch < s.k)
        y[(((long long)img * s.h + oy) * s.w + ox) * s.k + n0 + ch] = T(sm.out[p][ch]);
    }
  } else {
    const int ph = s.h / 2, pw = s.w / 2;
    for (int idx = threadIdx.x; idx < kBM / 4 * kBN; idx += kThreads) {
      const int q = idx / kBN, ch = idx % kBN;
      const int qy = q / (kTileW / 2), qx = q % (kTileW / 2);
      const int py = y0 / 2 + qy, px = x0 / 2 + qx;
      if (py < ph && px < pw && n0 + ch < s.k) {
        const int p = 2 * qy * kTileW + 2 * qx;
        const float m = fmaxf(fmaxf(sm.out[p][ch], sm.out[p + 1][ch]),
                              fmaxf(sm.out[p + kTileW][ch], sm.out[p + kTileW + 1][ch]));
        y[(((long long)img * ph + py) * pw + px) * s.k + n0 + ch] = T(m);
      }
    }
  }
}

template <typename T, bool kVec, bool kPool>
void launch(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y,
            cudaStream_t stream) {
  ConvShape s{int(x.dim(0)), int(x.dim(1)), int(x.dim(2)), int(x.dim(3)), int(w.dim(0)), 0};
  s.tiles_w = (s.w + kTileW - 1) / kTileW;
  const dim3 grid(s.tiles_w * ((s.h + kTileH - 1) / kTileH), (s.k + kBN - 1) / kBN, s.n);
  conv3x3_igemm_pool_nhwc<T, kVec, kPool><<<grid, kThreads, 0, stream>>>(
      x.ptr<const T>(), w.ptr<const T>(), b.ptr<const T>(), y.ptr<T>(), s);
  FV_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void dispatch(const Tensor& x, const Tensor& w, const Tensor& b, bool pool, const Tensor& y,
              cudaStream_t stream) {
  // 16-byte vectors need C % 32 == 0 (a chunk within one tap) and aligned bases.
  const bool vec = x.dim(3) % kBK == 0 && reinterpret_cast<uintptr_t>(x.data()) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(w.data()) % 16 == 0;
  if (vec && pool) return launch<T, true, true>(x, w, b, y, stream);
  if (vec) return launch<T, true, false>(x, w, b, y, stream);
  if (pool) return launch<T, false, true>(x, w, b, y, stream);
  return launch<T, false, false>(x, w, b, y, stream);
}

}  // namespace

void conv3x3_igemm_pool(const Tensor& x, const Tensor& w, const Tensor& b, bool pool,
                        const Tensor& y, cudaStream_t stream) {
  const int64_t oh = pool ? x.dim(1) / 2 : x.dim(1), ow = pool ? x.dim(2) / 2 : x.dim(2);
  if (x.rank() != 4 || w.rank() != 4 || y.rank() != 4 || w.dim(1) != 3 || w.dim(2) != 3 ||
      w.dim(3) != x.dim(3) || b.numel() != w.dim(0) || y.dim(0) != x.dim(0) || y.dim(1) != oh ||
      y.dim(2) != ow || y.dim(3) != w.dim(0) || w.dtype() != x.dtype() || b.dtype() != x.dtype() ||
      y.dtype() != x.dtype() || x.dim(0) > 65535)
    fail("cuda conv3x3_igemm_pool: x " + x.describe() + ", w " + w.describe() + ", b " +
         b.describe() + ", y " + y.describe() + " do not fit" + (pool ? " (pooled)" : ""));
  if (x.numel() == 0 || y.numel() == 0) return;
  switch (x.dtype()) {
    case DType::F16:
      return dispatch<__half>(x, w, b, pool, y, stream);
    case DType::BF16:
      return dispatch<__nv_bfloat16>(x, w, b, pool, y, stream);
    default:
      fail("cuda conv3x3_igemm_pool: f16 or bf16 only, got " + x.describe());
  }
}

}  // namespace fervid::cuda
