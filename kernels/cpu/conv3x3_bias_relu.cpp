// conv3x3_bias_relu (CPU reference): 3x3 convolution, stride 1, zero padding 1, + bias + ReLU,
// optionally followed by a 2x2 max-pool.
// Layout: x [N,H,W,C] (NHWC), w [K,3,3,C] (prepared from torchvision's OIHW at load), b [K],
// y [N,H,W,K] or pooled [N,H/2,W/2,K]; f32.
// Method: im2col over a block of output pixels of one image (col [P, 9*C], nine contiguous
// copies of C channels per pixel) and one SGEMM out[P, K] = col * w^T, so the arithmetic
// (2*9*C*K FLOPs per pixel) runs in OpenBLAS with a tall M. Blocks keep col near the cache and
// are spread over the OpenMP threads, each running im2col and a single-threaded SGEMM: the copy
// runs in parallel too, and no thread waits on another inside a layer.
// Batch invariance: the blocks are cut from each image at offsets that depend on the layer's
// shape only (never on the batch size, the image's place in the batch or the thread count), so
// every pixel is computed by the same SGEMM call shape at the same row: OpenBLAS's result for a
// row depends on M and on the row's place in its tile, and a frame's output must not depend on
// the frames batched with it (tests/batch_invariance_test.cpp).
#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "cpu/check.h"
#include "cpu/ops.h"

namespace fervid::cpu {

namespace {

// Elements of one im2col block: 1M floats = 4 MiB, about the last-level cache share of a core.
constexpr int64_t kColBlockElems = int64_t(1) << 20;
// A block is never shorter than this many pixels, so SGEMM keeps a useful M.
constexpr int64_t kMinBlockPixels = 128;

// Output pixels per block of one image: as many as fill kColBlockElems of col (at least
// kMinBlockPixels, at most the image), evened out over the image's blocks.
int64_t block_pixels(int64_t hw, int64_t ck) {
  const int64_t target = std::min(hw, std::max(kMinBlockPixels, kColBlockElems / ck));
  const int64_t blocks = (hw + target - 1) / target;
  return (hw + blocks - 1) / blocks;
}

// im2col of output pixels [p0, p0 + np) of image `n`.
void im2col_block(const float* x, int h, int w, int c, int64_t n, int64_t p0, int64_t np,
                  float* col) {
  const size_t row_bytes = size_t(c) * sizeof(float);
  for (int64_t j = 0; j < np; ++j) {
    const int64_t p = p0 + j;
    const int oy = int(p / w), ox = int(p % w);
    float* dst = col + j * 9 * c;
    for (int ky = 0; ky < 3; ++ky) {
      const int iy = oy + ky - 1;
      for (int kx = 0; kx < 3; ++kx, dst += c) {
        const int ix = ox + kx - 1;
        if (iy < 0 || iy >= h || ix < 0 || ix >= w) {
          std::memset(dst, 0, row_bytes);
        } else {
          std::memcpy(dst, x + ((n * h + iy) * w + ix) * c, row_bytes);
        }
      }
    }
  }
}

}  // namespace

void conv3x3_bias_relu(const Tensor& x, const Tensor& w, const Tensor& b, bool pool,
                       const Tensor& y) {
  constexpr const char* op = "conv3x3_bias_relu";
  if (x.rank() != 4 || w.rank() != 4) fail(std::string(op) + ": x and w must be rank 4");
  const int n = int(x.dim(0)), h = int(x.dim(1)), wd = int(x.dim(2)), c = int(x.dim(3));
  const int k = int(w.dim(0));
  expect(x, {n, h, wd, c}, DType::F32, op, "x");
  expect(w, {k, 3, 3, c}, DType::F32, op, "w");
  expect(b, {k}, DType::F32, op, "b");
  expect(y, pool ? std::vector<int64_t>{n, h / 2, wd / 2, k} : std::vector<int64_t>{n, h, wd, k},
         DType::F32, op, "y");
  const int64_t hw = int64_t(h) * wd, pixels = n * hw, ck = int64_t(c) * 9;
  const int64_t block = block_pixels(hw, ck);
  const int64_t per_image = (hw + block - 1) / block, blocks = n * per_image;
  // Scratch reused across calls: no allocation per layer once the largest layer has run.
  thread_local std::vector<float> full;
  if (pool) full.resize(size_t(pixels * k));
  float* out = pool ? full.data() : y.ptr<float>();
  const float* bp = b.ptr<const float>();
  const int blas_threads = openblas_get_num_threads();
  openblas_set_num_threads(1);
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    thread_local std::vector<float> col;
    col.resize(size_t(ck * block));
    const int64_t image = blk / per_image, p0 = (blk % per_image) * block;
    const int64_t np = std::min(block, hw - p0);
    im2col_block(x.ptr<const float>(), h, wd, c, image, p0, np, col.data());
    float* o = out + (image * hw + p0) * k;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(np), k, int(ck), 1.0f, col.data(),
                int(ck), w.ptr<const float>(), int(ck), 0.0f, o, k);
    for (int64_t j = 0; j < np; ++j, o += k)
      for (int ko = 0; ko < k; ++ko) o[ko] = std::max(o[ko] + bp[ko], 0.0f);
  }
  openblas_set_num_threads(blas_threads);
  if (pool) maxpool_nhwc(full.data(), n, h, wd, k, y.ptr<float>());
}

}  // namespace fervid::cpu
