// The face stage's frame ops (CPU): YUV 4:2:0 frames -> the detector's letterboxed inputs, and
// faces' aligned squares -> a classifier's (or the detector's) normalised inputs. The arithmetic
// per pixel is fervid/face_sample.h's, which the CUDA kernels share.
#include "cpu/check.h"
#include "cpu/ops.h"
#include "fervid/face_sample.h"

namespace fervid::cpu {

namespace {

void check_frames(std::span<const YuvView> frames, const char* op) {
  for (const YuvView& f : frames)
    if (!f.y || !f.u || !f.v || (f.uv_step != 1 && f.uv_step != 2) || f.width < 1 || f.height < 1)
      fail(std::string(op) + ": not a YUV 4:2:0 frame (" + std::to_string(f.width) + "x" +
           std::to_string(f.height) + ")");
}

}  // namespace

void letterbox_yuv420(std::span<const YuvView> frames, const ColorSpec& cs, const Tensor& out) {
  constexpr const char* op = "letterbox_yuv420";
  if (out.rank() != 4) fail(std::string(op) + ": out must be rank 4");
  const int64_t n = int64_t(frames.size()), size = out.dim(1);
  expect(out, {n, size, size, 3}, DType::F32, op, "out");
  check_frames(frames, op);
  const YuvCoefficients k = yuv_coefficients(cs);
#pragma omp parallel for schedule(dynamic)
  for (int64_t i = 0; i < n * size; ++i) {
    const int64_t frame = i / size, oy = i % size;
    float* row = out.ptr<float>() + (frame * size + oy) * size * 3;
    for (int64_t ox = 0; ox < size; ++ox)
      face_sample::letterbox_pixel(frames[frame], k, int(size), int(ox), int(oy), row + ox * 3);
  }
}

void face_crops_yuv420(std::span<const YuvView> frames, std::span<const FaceSquare> faces,
                       int crop_size, const ColorSpec& cs, const Preprocess& pp,
                       const Tensor& out) {
  constexpr const char* op = "face_crops_yuv420";
  if (out.rank() != 4) fail(std::string(op) + ": out must be rank 4");
  const int64_t n = int64_t(faces.size()), size = out.dim(1);
  expect(out, {n, size, size, 3}, DType::F32, op, "out");
  check_frames(frames, op);
  const ResizeWindow w = face_sample::face_window(crop_size, int(size), pp, op);
  for (const FaceSquare& q : faces)
    if (q.frame < 0 || size_t(q.frame) >= frames.size() || !(q.side > 0))
      fail(std::string(op) + ": a face outside the frames, or an empty square");
  const YuvCoefficients k = yuv_coefficients(cs);
  float scale[3], shift[3];
  for (int oc = 0; oc < 3; ++oc) {
    scale[oc] = pp.scale / pp.std[oc];
    shift[oc] = pp.mean[oc] / pp.std[oc];
  }
#pragma omp parallel for schedule(dynamic)
  for (int64_t i = 0; i < n * size; ++i) {
    const FaceSquare& q = faces[size_t(i / size)];
    const int64_t oy = i % size;
    float* row = out.ptr<float>() + i * size * 3;
    for (int64_t ox = 0; ox < size; ++ox) {
      float rgb[3];
      face_sample::aligned_pixel(frames[size_t(q.frame)], k, q, crop_size, int(ox + w.left),
                                 int(oy + w.top), rgb);
      for (int oc = 0; oc < 3; ++oc)
        row[ox * 3 + oc] = rgb[pp.bgr ? 2 - oc : oc] * scale[oc] - shift[oc];
    }
  }
}

}  // namespace fervid::cpu
