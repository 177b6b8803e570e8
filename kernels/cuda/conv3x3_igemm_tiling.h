// The index arithmetic of fervid's tensor-core conv (kernels/cuda/conv3x3_igemm_pool.cu), apart
// from the kernel so that the host runs the same code: tests/conv3x3_igemm_tiling_test.cpp
// emulates the whole kernel on the CPU with it (every copy into shared memory, the addresses each
// lane gives ldmatrix, the mma fragments, the epilogue and the fused pool) and compares with the
// CPU reference on odd shapes, without a GPU. Every function here is what one thread computes.
// The kernel calls KernelTiling's; the emulator takes the mapping as a template parameter and is
// also run with deliberately broken ones, to show that it catches them.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define FV_TILING_FN __host__ __device__ __forceinline__
#else
#define FV_TILING_FN inline
#endif

namespace fervid::cuda::igemm {

constexpr int kTileH = 8, kTileW = 16;  // output pixels per block; even, for the 2x2 pool
constexpr int kBM = kTileH * kTileW;    // 128 GEMM rows
constexpr int kBN = 64;                 // output channels per block
constexpr int kBK = 32;                 // GEMM-K per pipeline stage
constexpr int kStages = 3;              // chunks in shared memory: 2 in flight, 1 computed
constexpr int kThreads = 128;           // 4 warps: 2 (M) x 2 (N), 64 x 32 each
constexpr int kPad = 8;                 // row pitch 40 halves = 80 B: ldmatrix's 8 rows hit
constexpr int kPitch = kBK + kPad;      // 8 distinct 4-bank groups, so no bank conflicts
constexpr int kOutPitch = kBN + 4;      // f32 epilogue tile pitch

struct ConvShape {
  int n, h, w, c, k;
  int tiles_w;  // blocks across the width
};

// The block's place: image, first output row and column of its pixel tile, first channel.
struct BlockOrigin {
  int img, y0, x0, n0;
};

// One copy into shared memory: the tile's row and column (in elements) and the element of the
// global tensor it reads, or -1 for a zero (the image's border, past GEMM-K or past K).
struct Copy {
  int row, col;
  long long src;
};

// A (row, column) of a shared-memory tile.
struct At {
  int row, col;
};

struct KernelTiling {
  FV_TILING_FN static ConvShape shape(int n, int h, int w, int c, int k) {
    return {n, h, w, c, k, (w + kTileW - 1) / kTileW};
  }
  // Blocks: x over the pixel tiles (row-major), y over 64-channel groups, z over images.
  FV_TILING_FN static int grid_x(const ConvShape& s) {
    return s.tiles_w * ((s.h + kTileH - 1) / kTileH);
  }
  FV_TILING_FN static BlockOrigin origin(const ConvShape& s, int bx, int by, int bz) {
    return {bz, (bx / s.tiles_w) * kTileH, (bx % s.tiles_w) * kTileW, by * kBN};
  }
  FV_TILING_FN static int chunks(const ConvShape& s) { return (9 * s.c + kBK - 1) / kBK; }

  // C % 32 == 0: a 32-channel chunk lies within one tap. Thread `tid`'s copy `i` of 16 bytes
  // (8 elements) of A: pixel row idx / 4, part idx % 4.
  static constexpr int kVecCopiesA = kBM * 4 / kThreads, kVecCopiesB = kBN * 4 / kThreads;
  FV_TILING_FN static Copy a_vec(const ConvShape& s, const BlockOrigin& o, int kc, int tid, int i) {
    const int k0 = kc * kBK, tap = k0 / s.c, c0 = k0 % s.c, r = tap / 3, q = tap % 3;
    const int idx = tid + i * kThreads, row = idx / 4, part = idx % 4;
    const int oy = o.y0 + row / kTileW, ox = o.x0 + row % kTileW;
    const int iy = oy + r - 1, ix = ox + q - 1;
    const bool ok = oy < s.h && ox < s.w && iy >= 0 && iy < s.h && ix >= 0 && ix < s.w;
    return {row, part * 8,
            ok ? (((long long)o.img * s.h + iy) * s.w + ix) * s.c + c0 + part * 8 : -1};
  }
  FV_TILING_FN static Copy b_vec(const ConvShape& s, const BlockOrigin& o, int kc, int tid, int i) {
    const int idx = tid + i * kThreads, row = idx / 4, part = idx % 4;
    const bool ok = o.n0 + row < s.k;
    return {row, part * 8, ok ? (long long)(o.n0 + row) * 9 * s.c + kc * kBK + part * 8 : -1};
  }
  // Any C: element `idx` (of kBM * kBK, or kBN * kBK) one by one.
  FV_TILING_FN static Copy a_gather(const ConvShape& s, const BlockOrigin& o, int kc, int idx) {
    const int row = idx / kBK, kk = idx % kBK, k = kc * kBK + kk;
    const int oy = o.y0 + row / kTileW, ox = o.x0 + row % kTileW;
    long long src = -1;
    if (k < 9 * s.c && oy < s.h && ox < s.w) {
      const int tap = k / s.c, ch = k % s.c;
      const int iy = oy + tap / 3 - 1, ix = ox + tap % 3 - 1;
      if (iy >= 0 && iy < s.h && ix >= 0 && ix < s.w)
        src = (((long long)o.img * s.h + iy) * s.w + ix) * s.c + ch;
    }
    return {row, kk, src};
  }
  FV_TILING_FN static Copy b_gather(const ConvShape& s, const BlockOrigin& o, int kc, int idx) {
    const int row = idx / kBK, kk = idx % kBK, k = kc * kBK + kk;
    return {row, kk, o.n0 + row < s.k && k < 9 * s.c ? (long long)(o.n0 + row) * 9 * s.c + k : -1};
  }

  // The pipeline: chunk kc is computed from stage kc % kStages; the chunk fetched while it is,
  // kc + kStages - 1, goes to its own stage.
  FV_TILING_FN static int stage_of(int kc) { return kc % kStages; }

  // A warp's 64 x 32 part of the block's 128 x 64 tile.
  FV_TILING_FN static int warp_m(int warp) { return (warp % 2) * 64; }
  FV_TILING_FN static int warp_n(int warp) { return (warp / 2) * 32; }

  // The shared-memory element whose row `lane` hands ldmatrix.x4 for A's 16 x 16 fragment mi at
  // k-step ks: lanes 0-15 rows 0-15 at k 0, lanes 16-31 rows 0-15 at k 8 (matrices a0..a3 of
  // mma.m16n8k16 in order).
  FV_TILING_FN static At a_ldmatrix(int lane, int wm, int mi, int ks) {
    return {wm + mi * 16 + lane % 16, ks + (lane / 16) * 8};
  }
  // For B (stored [n][k]): two n-blocks of 8 per x4, each k 0-7 then 8-15: lanes 0-7 n 0-7 k 0,
  // 8-15 n 0-7 k 8, 16-23 n 8-15 k 0, 24-31 n 8-15 k 8.
  FV_TILING_FN static At b_ldmatrix(int lane, int wn, int nj, int ks) {
    return {wn + nj * 16 + lane % 8 + (lane / 16) * 8, ks + ((lane / 8) % 2) * 8};
  }
  // Register `reg` (0, 1) of the B operand for the warp's n-block ni: from x4 load ni / 2.
  FV_TILING_FN static int b_register(int ni, int reg) { return (ni % 2) * 2 + reg; }

  // Where accumulator element e (0-3) of lane `lane` of fragment (mi, ni) lies in the tile: the
  // m16n8 layout, c0 c1 at row lane / 4, columns 2 * (lane % 4) + {0, 1}; c2 c3 eight rows lower.
  FV_TILING_FN static At accumulator(int lane, int wm, int wn, int mi, int ni, int e) {
    return {wm + mi * 16 + lane / 4 + (e / 2) * 8, wn + ni * 8 + (lane % 4) * 2 + e % 2};
  }

  // Epilogue without the pool: item idx (of kBM * kBN) is tile pixel p, channel ch; its output
  // element, or -1 outside the image or past K.
  FV_TILING_FN static Copy store(const ConvShape& s, const BlockOrigin& o, int idx) {
    const int p = idx / kBN, ch = idx % kBN;
    const int oy = o.y0 + p / kTileW, ox = o.x0 + p % kTileW;
    const bool ok = oy < s.h && ox < s.w && o.n0 + ch < s.k;
    return {p, ch, ok ? (((long long)o.img * s.h + oy) * s.w + ox) * s.k + o.n0 + ch : -1};
  }
  // With the pool: item idx (of kBM / 4 * kBN) is pooled pixel q, channel ch; `row` is the tile
  // pixel of its window's top-left (the window: row, row + 1, row + kTileW, row + kTileW + 1),
  // the output element of the pooled tensor, or -1 outside it.
  FV_TILING_FN static Copy store_pooled(const ConvShape& s, const BlockOrigin& o, int idx) {
    const int q = idx / kBN, ch = idx % kBN;
    const int qy = q / (kTileW / 2), qx = q % (kTileW / 2);
    const int ph = s.h / 2, pw = s.w / 2, py = o.y0 / 2 + qy, px = o.x0 / 2 + qx;
    const bool ok = py < ph && px < pw && o.n0 + ch < s.k;
    return {2 * qy * kTileW + 2 * qx, ch,
            ok ? (((long long)o.img * ph + py) * pw + px) * s.k + o.n0 + ch : -1};
  }
};

}  // namespace fervid::cuda::igemm
