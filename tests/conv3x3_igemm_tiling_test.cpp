// fervid's tensor-core conv (kernels/cuda/conv3x3_igemm_pool.cu) emulated on the CPU, thread by
// thread, with the kernel's own index arithmetic (kernels/cuda/conv3x3_igemm_tiling.h): every copy
// into the three-stage shared-memory ring (16-byte vectors, or the element gather for other
// channel counts), the row address each lane hands ldmatrix.x4 and the registers the hardware
// gives back, mma.m16n8k16's fragments, the epilogue's tile and the fused 2x2 pool. What the
// hardware does is written here from PTX's definitions of ldmatrix and mma; what the kernel does
// comes from the header. The result must equal a float64 convolution on odd shapes, with every
// output element written exactly once and shared memory never read unwritten (it starts as NaN).
// Broken on purpose (a swapped ldmatrix half, an accumulator layout, a pool window, the stage
// ring), the emulation must fail: so this test would catch such a change without a GPU.
#include "cuda/conv3x3_igemm_tiling.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "test_util.h"

namespace fervid::test {
namespace {

using namespace cuda::igemm;

struct Case {
  int n, h, w, c, k;
  bool pool;
};

struct Problem {
  Case cs;
  std::vector<float> x, w, b;  // NHWC, KRSC, K: values that f16 and bf16 hold exactly
};

float representable(float v) {
  return bf16_to_float(float_to_bf16(half_to_float(float_to_half(v))));
}

Problem problem(const Case& cs) {
  Problem p{cs, {}, {}, {}};
  std::uniform_real_distribution<float> u(-1, 1);
  p.x.resize(size_t(cs.n) * cs.h * cs.w * cs.c);
  p.w.resize(size_t(cs.k) * 9 * cs.c);
  p.b.resize(size_t(cs.k));
  for (float& v : p.x) v = representable(u(rng()));
  for (float& v : p.w) v = representable(u(rng()) / std::sqrt(9.0f * cs.c));
  for (float& v : p.b) v = representable(0.2f * u(rng()));
  return p;
}

std::vector<double> reference(const Problem& p) {
  const Case& s = p.cs;
  std::vector<double> full(size_t(s.n) * s.h * s.w * s.k);
  for (int i = 0; i < s.n; ++i)
    for (int oy = 0; oy < s.h; ++oy)
      for (int ox = 0; ox < s.w; ++ox)
        for (int k = 0; k < s.k; ++k) {
          double sum = p.b[size_t(k)];
          for (int r = 0; r < 3; ++r)
            for (int q = 0; q < 3; ++q) {
              const int iy = oy + r - 1, ix = ox + q - 1;
              if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
              for (int c = 0; c < s.c; ++c)
                sum += double(p.x[((size_t(i) * s.h + iy) * s.w + ix) * s.c + c]) *
                       p.w[((size_t(k) * 3 + r) * 3 + q) * s.c + c];
            }
          full[((size_t(i) * s.h + oy) * s.w + ox) * s.k + k] = std::max(sum, 0.0);
        }
  if (!s.pool) return full;
  const int ph = s.h / 2, pw = s.w / 2;
  std::vector<double> pooled(size_t(s.n) * ph * pw * s.k);
  for (int i = 0; i < s.n; ++i)
    for (int py = 0; py < ph; ++py)
      for (int px = 0; px < pw; ++px)
        for (int k = 0; k < s.k; ++k) {
          double m = -INFINITY;
          for (int dy = 0; dy < 2; ++dy)
            for (int dx = 0; dx < 2; ++dx)
              m = std::max(m,
                           full[((size_t(i) * s.h + 2 * py + dy) * s.w + 2 * px + dx) * s.k + k]);
          pooled[((size_t(i) * ph + py) * pw + px) * s.k + k] = m;
        }
  return pooled;
}

// What went wrong in one emulated run (all zero when it matches).
struct Faults {
  int64_t wrong = 0;          // outside the tolerance (NaN included)
  int64_t not_once = 0;       // output elements written 0 or 2+ times
  int64_t out_of_bounds = 0;  // a shared-memory or global index outside its array
  int64_t total() const { return wrong + not_once + out_of_bounds; }
};

// The kernel, block by block and thread by thread, with `Tiling`'s index arithmetic. A chunk is
// loaded before the chunk two behind it is computed, as the kernel's ring does, so a stage
// mapping that lets a fetch overwrite the stage being computed gives wrong sums here too.
template <typename Tiling>
Faults emulate(const Problem& p) {
  const Case& cs = p.cs;
  const ConvShape s = Tiling::shape(cs.n, cs.h, cs.w, cs.c, cs.k);
  const bool vec = cs.c % kBK == 0;
  const int oh = cs.pool ? cs.h / 2 : cs.h, ow = cs.pool ? cs.w / 2 : cs.w;
  std::vector<float> y(size_t(cs.n) * oh * ow * cs.k, NAN);
  std::vector<int> writes(y.size(), 0);
  Faults f;
  const float kNaN = NAN;
  std::vector<float> a(size_t(kStages) * kBM * kPitch), b(size_t(kStages) * kBN * kPitch);
  std::vector<float> tile(size_t(kBM) * kOutPitch);
  auto put = [&](std::vector<float>& m, int rows, int st, int row, int col, float v) {
    if (row < 0 || row >= rows || col < 0 || col >= kPitch) return void(++f.out_of_bounds);
    m[(size_t(st) * rows + row) * kPitch + col] = v;
  };
  auto get = [&](const std::vector<float>& m, int rows, int st, int row, int col) {
    if (row < 0 || row >= rows || col < 0 || col >= kPitch) return ++f.out_of_bounds, kNaN;
    return m[(size_t(st) * rows + row) * kPitch + col];
  };
  auto global = [&](const std::vector<float>& g, long long i) {
    if (i < 0) return 0.0f;
    if (i >= (long long)g.size()) return ++f.out_of_bounds, kNaN;
    return g[size_t(i)];
  };
  auto load = [&](const BlockOrigin& o, int st, int kc) {
    if (vec) {
      for (int tid = 0; tid < kThreads; ++tid) {
        for (int i = 0; i < Tiling::kVecCopiesA; ++i) {
          const Copy c = Tiling::a_vec(s, o, kc, tid, i);
          for (int e = 0; e < 8; ++e)
            put(a, kBM, st, c.row, c.col + e, c.src < 0 ? 0.0f : global(p.x, c.src + e));
        }
        for (int i = 0; i < Tiling::kVecCopiesB; ++i) {
          const Copy c = Tiling::b_vec(s, o, kc, tid, i);
          for (int e = 0; e < 8; ++e)
            put(b, kBN, st, c.row, c.col + e, c.src < 0 ? 0.0f : global(p.w, c.src + e));
        }
      }
    } else {
      for (int idx = 0; idx < kBM * kBK; ++idx) {
        const Copy c = Tiling::a_gather(s, o, kc, idx);
        put(a, kBM, st, c.row, c.col, global(p.x, c.src));
      }
      for (int idx = 0; idx < kBN * kBK; ++idx) {
        const Copy c = Tiling::b_gather(s, o, kc, idx);
        put(b, kBN, st, c.row, c.col, global(p.w, c.src));
      }
    }
  };
  // ldmatrix.x4: lanes 8j..8j+7 give the rows of matrix j (8 consecutive 16-bit elements each);
  // lane t receives, in register j, row t / 4 of matrix j, elements 2 (t % 4) and 2 (t % 4) + 1.
  auto ldmatrix_x4 = [&](const std::vector<float>& m, int rows, int st, auto&& address,
                         float(&regs)[32][4][2]) {
    for (int t = 0; t < 32; ++t)
      for (int j = 0; j < 4; ++j) {
        const At at = address(8 * j + t / 4);
        for (int e = 0; e < 2; ++e)
          regs[t][j][e] = get(m, rows, st, at.row, at.col + 2 * (t % 4) + e);
      }
  };
  for (int bz = 0; bz < cs.n; ++bz)
    for (int by = 0; by < (cs.k + kBN - 1) / kBN; ++by)
      for (int bx = 0; bx < Tiling::grid_x(s); ++bx) {
        const BlockOrigin o = Tiling::origin(s, bx, by, bz);
        std::fill(a.begin(), a.end(), kNaN);
        std::fill(b.begin(), b.end(), kNaN);
        std::vector<float> acc(size_t(4) * 32 * 4 * 4 * 4, 0.0f);  // warp, lane, mi, ni, e
        auto acc_at = [&](int warp, int lane, int mi, int ni, int e) -> float& {
          return acc[(((size_t(warp) * 32 + lane) * 4 + mi) * 4 + ni) * 4 + e];
        };
        const int chunks = Tiling::chunks(s);
        for (int kc = 0; kc < kStages - 1; ++kc)
          if (kc < chunks) load(o, Tiling::stage_of(kc), kc);
        for (int kc = 0; kc < chunks; ++kc) {
          const int next = kc + kStages - 1;
          if (next < chunks) load(o, Tiling::stage_of(next), next);
          const int st = Tiling::stage_of(kc);
          for (int ks = 0; ks < kBK; ks += 16)
            for (int warp = 0; warp < 4; ++warp) {
              const int wm = Tiling::warp_m(warp), wn = Tiling::warp_n(warp);
              static thread_local float ar[4][32][4][2], br[2][32][4][2];
              for (int mi = 0; mi < 4; ++mi)
                ldmatrix_x4(
                    a, kBM, st, [&](int lane) { return Tiling::a_ldmatrix(lane, wm, mi, ks); },
                    ar[mi]);
              for (int nj = 0; nj < 2; ++nj)
                ldmatrix_x4(
                    b, kBN, st, [&](int lane) { return Tiling::b_ldmatrix(lane, wn, nj, ks); },
                    br[nj]);
              // mma.m16n8k16 (row.col): A[g][2t..] = a0, A[g+8][2t..] = a1, A[g][2t+8..] = a2,
              // A[g+8][2t+8..] = a3; B[2t..][g] = b0, B[2t+8..][g] = b1; D[g][2t..] = c0 c1,
              // D[g+8][2t..] = c2 c3 (g = lane / 4, t = lane % 4).
              for (int mi = 0; mi < 4; ++mi)
                for (int ni = 0; ni < 4; ++ni) {
                  float A[16][16], B[16][8];
                  for (int lane = 0; lane < 32; ++lane) {
                    const int g = lane / 4, t = lane % 4;
                    for (int e = 0; e < 2; ++e) {
                      A[g][2 * t + e] = ar[mi][lane][0][e];
                      A[g + 8][2 * t + e] = ar[mi][lane][1][e];
                      A[g][2 * t + 8 + e] = ar[mi][lane][2][e];
                      A[g + 8][2 * t + 8 + e] = ar[mi][lane][3][e];
                      B[2 * t + e][g] = br[ni / 2][lane][Tiling::b_register(ni, 0)][e];
                      B[2 * t + 8 + e][g] = br[ni / 2][lane][Tiling::b_register(ni, 1)][e];
                    }
                  }
                  for (int lane = 0; lane < 32; ++lane)
                    for (int e = 0; e < 4; ++e) {
                      const int row = lane / 4 + (e / 2) * 8, col = (lane % 4) * 2 + e % 2;
                      float sum = 0;
                      for (int kk = 0; kk < 16; ++kk) sum += A[row][kk] * B[kk][col];
                      acc_at(warp, lane, mi, ni, e) += sum;
                    }
                }
            }
        }
        // Epilogue: bias + ReLU into the tile, then the stores (with the pool: window maxima).
        std::fill(tile.begin(), tile.end(), kNaN);
        for (int warp = 0; warp < 4; ++warp)
          for (int lane = 0; lane < 32; ++lane)
            for (int mi = 0; mi < 4; ++mi)
              for (int ni = 0; ni < 4; ++ni)
                for (int e = 0; e < 4; ++e) {
                  const At at = Tiling::accumulator(lane, Tiling::warp_m(warp),
                                                    Tiling::warp_n(warp), mi, ni, e);
                  if (at.row < 0 || at.row >= kBM || at.col < 0 || at.col >= kBN) {
                    ++f.out_of_bounds;
                    continue;
                  }
                  const float bias = o.n0 + at.col < cs.k ? p.b[size_t(o.n0 + at.col)] : 0.0f;
                  tile[size_t(at.row) * kOutPitch + at.col] =
                      std::max(acc_at(warp, lane, mi, ni, e) + bias, 0.0f);
                }
        auto tile_at = [&](int row, int col) {
          if (row < 0 || row >= kBM || col < 0 || col >= kBN) return ++f.out_of_bounds, kNaN;
          return tile[size_t(row) * kOutPitch + col];
        };
        auto store = [&](long long i, float v) {
          if (i >= (long long)y.size()) return void(++f.out_of_bounds);
          y[size_t(i)] = v;
          ++writes[size_t(i)];
        };
        if (!cs.pool) {
          for (int idx = 0; idx < kBM * kBN; ++idx) {
            const Copy c = Tiling::store(s, o, idx);
            if (c.src >= 0) store(c.src, tile_at(c.row, c.col));
          }
        } else {
          for (int idx = 0; idx < kBM / 4 * kBN; ++idx) {
            const Copy c = Tiling::store_pooled(s, o, idx);
            if (c.src >= 0)
              store(c.src, std::max(std::max(tile_at(c.row, c.col), tile_at(c.row + 1, c.col)),
                                    std::max(tile_at(c.row + kTileW, c.col),
                                             tile_at(c.row + kTileW + 1, c.col))));
          }
        }
      }
  const std::vector<double> want = reference(p);
  double ss = 0;
  for (double v : want) ss += v * v;
  const double rms = std::sqrt(ss / double(std::max<size_t>(want.size(), 1)));
  for (size_t i = 0; i < y.size(); ++i) {
    f.not_once += writes[i] != 1;
    const double err = std::abs(double(y[i]) - want[i]);
    f.wrong += !(err <= 1e-5 * rms + 1e-5 * std::abs(want[i]));  // NaN is wrong
  }
  return f;
}

// Odd shapes: sizes that are multiples of no tile (8 x 16 pixels, 64 channels, 32-deep chunks),
// the element gather (C = 3, 5, 48) and the vector path (C = 32, 64, 96), with and without the
// pool, odd heights and widths under the pool, K across several 64-channel blocks.
const Case kCases[] = {{1, 5, 7, 3, 5, true},     {2, 9, 17, 32, 70, false},
                       {1, 9, 17, 32, 70, true},  {1, 8, 16, 64, 64, false},
                       {2, 3, 33, 5, 8, true},    {1, 17, 9, 96, 24, true},
                       {1, 1, 1, 64, 8, false},   {1, 2, 2, 48, 130, true},
                       {1, 11, 19, 3, 16, false}, {1, 16, 32, 32, 64, true}};

TEST(Conv3x3IgemmTiling, EmulatedKernelEqualsTheConvolutionOnOddShapes) {
  SeedTrace trace;
  for (const Case& c : kCases) {
    const Faults f = emulate<KernelTiling>(problem(c));
    EXPECT_EQ(f.total(), 0) << "n" << c.n << " " << c.h << "x" << c.w << " " << c.c << ">" << c.k
                            << (c.pool ? " pool" : "") << ": " << f.wrong << " wrong, "
                            << f.not_once << " not written once, " << f.out_of_bounds
                            << " out of bounds";
  }
}

// Each a one-line slip in the kernel's arithmetic.
struct SwappedBHalves : KernelTiling {  // B's k halves and n halves exchanged
  static At b_ldmatrix(int lane, int wn, int nj, int ks) {
    return {wn + nj * 16 + lane % 8 + ((lane / 8) % 2) * 8, ks + (lane / 16) * 8};
  }
};
struct ARowsOfEight : KernelTiling {  // A's lanes 8-15 repeat rows 0-7
  static At a_ldmatrix(int lane, int wm, int mi, int ks) {
    return {wm + mi * 16 + lane % 8, ks + (lane / 16) * 8};
  }
};
struct AccumulatorTransposed : KernelTiling {  // c1 taken as eight rows lower, c2 as next column
  static At accumulator(int lane, int wm, int wn, int mi, int ni, int e) {
    return {wm + mi * 16 + lane / 4 + (e % 2) * 8, wn + ni * 8 + (lane % 4) * 2 + e / 2};
  }
};
struct PoolWindowOffByOne : KernelTiling {  // the window's row not doubled
  static Copy store_pooled(const ConvShape& s, const BlockOrigin& o, int idx) {
    Copy c = KernelTiling::store_pooled(s, o, idx);
    const int q = idx / kBN, qy = q / (kTileW / 2), qx = q % (kTileW / 2);
    c.row = qy * kTileW + 2 * qx;
    return c;
  }
};
struct TwoStageRing : KernelTiling {  // the fetch ahead lands on the stage being computed
  static int stage_of(int kc) { return kc % 2; }
};
struct BRegistersSwapped : KernelTiling {  // n-block ni takes the other half's registers
  static int b_register(int ni, int reg) { return ((ni + 1) % 2) * 2 + reg; }
};

template <typename Broken>
int64_t faults_over_cases() {
  int64_t n = 0;
  for (const Case& c : kCases) n += emulate<Broken>(problem(c)).total();
  return n;
}

TEST(Conv3x3IgemmTiling, BrokenMappingsAreCaught) {
  SeedTrace trace;
  EXPECT_GT(faults_over_cases<SwappedBHalves>(), 0);
  EXPECT_GT(faults_over_cases<ARowsOfEight>(), 0);
  EXPECT_GT(faults_over_cases<AccumulatorTransposed>(), 0);
  EXPECT_GT(faults_over_cases<PoolWindowOffByOne>(), 0);
  EXPECT_GT(faults_over_cases<TwoStageRing>(), 0);
  EXPECT_GT(faults_over_cases<BRegistersSwapped>(), 0);
}

}  // namespace
}  // namespace fervid::test
