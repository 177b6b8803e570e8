// conv3x3_igemm_pool (CUDA, hand-written): y = [maxpool2x2] ReLU(conv3x3(x, w) + b), stride 1,
// pad 1, NHWC activations, KRSC weights, f16 or bf16 in and out with f32 accumulation, on the
// tensor cores with mma.sync m16n8k16 (docs/kernels.md says why not wgmma yet). The index
// arithmetic lives in conv3x3_igemm_tiling.h, where a host emulation tests it without a GPU.
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
#include "cuda/conv3x3_igemm_tiling.h"
#include "cuda/ops.h"

namespace fervid::cuda {

namespace {

using namespace igemm;
using Tiling = KernelTiling;  // the index arithmetic (conv3x3_igemm_tiling.h), tested on the host

struct LoadTiles {
  uint16_t a[kStages][kBM][kPitch];  // 30 KB
  uint16_t b[kStages][kBN][kPitch];  // 15 KB
};
union __align__(16) Shared {
  LoadTiles load;
  float out[kBM][kOutPitch];
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
                                           const T* __restrict__ w, const ConvShape& s,
                                           const BlockOrigin& o) {
  const int tid = threadIdx.x;
  if constexpr (kVec) {
    // A chunk of 32 channels lies within one tap: 4 x 16 B per pixel row.
#pragma unroll
    for (int i = 0; i < Tiling::kVecCopiesA; ++i) {
      const Copy c = Tiling::a_vec(s, o, kc, tid, i);
      cp_async16(&sm.load.a[st][c.row][c.col], c.src >= 0 ? x + c.src : x, c.src >= 0);
    }
#pragma unroll
    for (int i = 0; i < Tiling::kVecCopiesB; ++i) {
      const Copy c = Tiling::b_vec(s, o, kc, tid, i);
      cp_async16(&sm.load.b[st][c.row][c.col], c.src >= 0 ? w + c.src : w, c.src >= 0);
    }
  } else {
    // Any C: element by element, zero outside the image, past GEMM-K and past K.
    const uint16_t* xs = reinterpret_cast<const uint16_t*>(x);
    const uint16_t* ws = reinterpret_cast<const uint16_t*>(w);
    for (int idx = tid; idx < kBM * kBK; idx += kThreads) {
      const Copy c = Tiling::a_gather(s, o, kc, idx);
      sm.load.a[st][c.row][c.col] = c.src >= 0 ? xs[c.src] : uint16_t(0);
    }
    for (int idx = tid; idx < kBN * kBK; idx += kThreads) {
      const Copy c = Tiling::b_gather(s, o, kc, idx);
      sm.load.b[st][c.row][c.col] = c.src >= 0 ? ws[c.src] : uint16_t(0);
    }
  }
}

template <typename T, bool kVec, bool kPool>
__global__ void __launch_bounds__(kThreads, 4)
    conv3x3_igemm_pool_nhwc(const T* __restrict__ x, const T* __restrict__ w,
                            const T* __restrict__ bias, T* __restrict__ y, ConvShape s) {
  __shared__ Shared sm;
  const BlockOrigin o = Tiling::origin(s, blockIdx.x, blockIdx.y, blockIdx.z);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int wm = Tiling::warp_m(warp), wn = Tiling::warp_n(warp);
  const int chunks = Tiling::chunks(s);

  float acc[4][4][4] = {};
  // Prologue: the first kStages - 1 chunks in flight (one commit group per chunk, empty past
  // the end, so that group i always holds chunk i).
#pragma unroll
  for (int kc = 0; kc < kStages - 1; ++kc) {
    if (kc < chunks) load_chunk<T, kVec>(sm, Tiling::stage_of(kc), kc, x, w, s, o);
    cp_async_commit();
  }
  for (int kc = 0; kc < chunks; ++kc) {
    cp_async_wait<kStages - 2>();  // chunk kc has landed (this thread's copies)...
    __syncthreads();  // ...everyone's, and everyone is done with the stage refilled below
    const int next = kc + kStages - 1;
    if (next < chunks) load_chunk<T, kVec>(sm, Tiling::stage_of(next), next, x, w, s, o);
    cp_async_commit();
    const int st = Tiling::stage_of(kc);
#pragma unroll
    for (int ks = 0; ks < kBK; ks += 16) {
      uint32_t a[4][4], b[2][4];
#pragma unroll
      for (int mi = 0; mi < 4; ++mi) {
        const At at = Tiling::a_ldmatrix(lane, wm, mi, ks);
        ldmatrix_x4(a[mi], &sm.load.a[st][at.row][at.col]);
      }
#pragma unroll
      for (int nj = 0; nj < 2; ++nj) {
        const At at = Tiling::b_ldmatrix(lane, wn, nj, ks);
        ldmatrix_x4(b[nj], &sm.load.b[st][at.row][at.col]);
      }
#pragma unroll
      for (int mi = 0; mi < 4; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni)
          mma16816<T>(acc[mi][ni], a[mi], b[ni / 2][Tiling::b_register(ni, 0)],
                      b[ni / 2][Tiling::b_register(ni, 1)]);
    }
  }
  cp_async_wait<0>();
  __syncthreads();  // the epilogue's tile reuses the load stages

  // Epilogue 1: bias + ReLU on the accumulators into the f32 tile.
#pragma unroll
  for (int mi = 0; mi < 4; ++mi)
#pragma unroll
    for (int ni = 0; ni < 4; ++ni)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const At at = Tiling::accumulator(lane, wm, wn, mi, ni, e);
        const float bv = o.n0 + at.col < s.k ? float(bias[o.n0 + at.col]) : 0.0f;
        sm.out[at.row][at.col] = fmaxf(acc[mi][ni][e] + bv, 0.0f);
      }
  __syncthreads();

  // Epilogue 2: consecutive threads write consecutive channels of one pixel; with the pool, the
  // max of each 2x2 window (which lies inside the tile: its origin is even).
  if constexpr (!kPool) {
    for (int idx = threadIdx.x; idx < kBM * kBN; idx += kThreads) {
      const Copy c = Tiling::store(s, o, idx);
      if (c.src >= 0) y[c.src] = T(sm.out[c.row][c.col]);
    }
  } else {
    for (int idx = threadIdx.x; idx < kBM / 4 * kBN; idx += kThreads) {
      const Copy c = Tiling::store_pooled(s, o, idx);
      if (c.src >= 0) {
        const int p = c.row, ch = c.col;
        const float m = fmaxf(fmaxf(sm.out[p][ch], sm.out[p + 1][ch]),
                              fmaxf(sm.out[p + kTileW][ch], sm.out[p + kTileW + 1][ch]));
        y[c.src] = T(m);
      }
    }
  }
}

template <typename T, bool kVec, bool kPool>
void launch(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y,
            cudaStream_t stream) {
  const ConvShape s =
      Tiling::shape(int(x.dim(0)), int(x.dim(1)), int(x.dim(2)), int(x.dim(3)), int(w.dim(0)));
  const dim3 grid(Tiling::grid_x(s), (s.k + kBN - 1) / kBN, s.n);
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
