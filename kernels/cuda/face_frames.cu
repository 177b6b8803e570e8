// The face stage's frame ops (CUDA): YUV 4:2:0 frames in device memory (NVDEC's surfaces, or
// planes uploaded once) -> the detector's letterboxed inputs, and faces' aligned squares -> a
// classifier's (or the detector's) normalised inputs, so that the face stage reads each frame on
// the device and only boxes come back. One thread per output pixel; its arithmetic is
// fervid/face_sample.h's, shared with the CPU ops (kernels/cpu/face_frames.cpp) and rounded
// alike (tests/cuda/face_detector_test.cpp compares them).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda/check.h"
#include "cuda/ops.h"
#include "cuda/resize_taps.cuh"
#include "fervid/face_sample.h"

namespace fervid::cuda {

namespace {

constexpr int kThreads = 256;

__global__ void letterbox_kernel(const YuvView* __restrict__ frames, int size, YuvCoefficients k,
                                 float* __restrict__ out) {
  const int pixel = blockIdx.x * blockDim.x + threadIdx.x;
  if (pixel >= size * size) return;
  const YuvView f = frames[blockIdx.y];
  float rgb[3];
  face_sample::letterbox_pixel(f, k, size, pixel % size, pixel / size, rgb);
  float* dst = out + ((long long)blockIdx.y * size * size + pixel) * 3;
  for (int c = 0; c < 3; ++c) dst[c] = rgb[c];
}

template <typename T>
__global__ void face_crops_kernel(const YuvView* __restrict__ frames,
                                  const FaceSquare* __restrict__ faces, int size, int crop_size,
                                  int left, int top, YuvCoefficients k, Normalise n,
                                  T* __restrict__ out) {
  const int pixel = blockIdx.x * blockDim.x + threadIdx.x;
  if (pixel >= size * size) return;
  const FaceSquare q = faces[blockIdx.y];
  const YuvView f = frames[q.frame];
  float rgb[3];
  face_sample::aligned_pixel(f, k, q, crop_size, pixel % size + left, pixel / size + top, rgb);
  T* dst = out + ((long long)blockIdx.y * size * size + pixel) * 3;
  for (int oc = 0; oc < 3; ++oc)
    dst[oc] =
        rounded_to<T>(__fsub_rn(__fmul_rn(rgb[n.bgr ? 2 - oc : oc], n.scale[oc]), n.shift[oc]));
}

void check_out(const Tensor& out, int n, const char* op) {
  if (out.rank() != 4 || out.dim(0) != n || out.dim(1) != out.dim(2) || out.dim(3) != 3)
    fail(std::string("cuda ") + op + ": out " + out.describe() + " is not [" + std::to_string(n) +
         ",S,S,3]");
  if (n > 65535) fail(std::string("cuda ") + op + ": more than 65535 inputs in one call");
}

}  // namespace

void letterbox_yuv420(const YuvView* frames, int n, const ColorSpec& cs, const Tensor& out,
                      cudaStream_t stream) {
  check_out(out, n, "letterbox_yuv420");
  if (out.dtype() != DType::F32)
    fail("cuda letterbox_yuv420: out " + out.describe() + " is not f32");
  if (n == 0) return;
  const int size = int(out.dim(1));
  const dim3 grid((size * size + kThreads - 1) / kThreads, n);
  letterbox_kernel<<<grid, kThreads, 0, stream>>>(frames, size, yuv_coefficients(cs),
                                                  out.ptr<float>());
  FV_CUDA_CHECK(cudaGetLastError());
}

void face_crops_yuv420(const YuvView* frames, const FaceSquare* faces, int n, int crop_size,
                       const ColorSpec& cs, const Preprocess& pp, const Tensor& out,
                       cudaStream_t stream) {
  check_out(out, n, "face_crops_yuv420");
  if (n == 0) return;
  const int size = int(out.dim(1));
  const ResizeWindow w = face_sample::face_window(crop_size, size, pp, "cuda face_crops_yuv420");
  const dim3 grid((size * size + kThreads - 1) / kThreads, n);
  const YuvCoefficients k = yuv_coefficients(cs);
  const Normalise norm = normalise_of(pp);
  switch (out.dtype()) {
    case DType::F32:
      face_crops_kernel<float><<<grid, kThreads, 0, stream>>>(
          frames, faces, size, crop_size, w.left, w.top, k, norm, out.ptr<float>());
      break;
    case DType::F16:
      face_crops_kernel<__half><<<grid, kThreads, 0, stream>>>(
          frames, faces, size, crop_size, w.left, w.top, k, norm, out.ptr<__half>());
      break;
    case DType::BF16:
      face_crops_kernel<__nv_bfloat16><<<grid, kThreads, 0, stream>>>(
          frames, faces, size, crop_size, w.left, w.top, k, norm, out.ptr<__nv_bfloat16>());
      break;
    default:
      fail("cuda face_crops_yuv420: unsupported output dtype " + out.describe());
  }
  FV_CUDA_CHECK(cudaGetLastError());
}

}  // namespace fervid::cuda
