// Hand-written CUDA ops (fervid::cuda), each checked against the CPU reference op of the same
// name in tests/cuda/<op>_test.cpp. Launch wrappers take Tensors in device memory and a stream,
// check the launch, and return without synchronising. Activations are NHWC.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <span>

#include "fervid/conv_geometry.h"
#include "fervid/frame.h"
#include "fervid/model_spec.h"
#include "fervid/tensor.h"

namespace fervid::cuda {

// A frame's crop staged in device memory: `height` rows of `stride` bytes from `offset`, each
// `width` RGB pixels.
struct StagedFrame {
  long long offset = 0;
  int width = 0;
  int height = 0;
  int stride = 0;
  ResizeWindow window;  // the crop resized to window.width x .height, the S x S at (left, top)
  int region_x = 0, region_y = 0;  // where the staged rows start in the frame
  // A turned crop (CropRect::angle != 0): the rows staged are turned_bounds of the crop, of a
  // frame_width x frame_height frame, and each output pixel samples the point `turn` gives
  // (fervid/frame.h), clamped to the frame, as the CPU reference does.
  bool turned = false;
  int frame_width = 0, frame_height = 0;
  TurnedMap turn;
};

// pixels + frames[i] (device arrays, n frames) -> out [n,S,S,3] in f32, f16 or bf16, with the
// CPU reference's formula (bit-identical in f32; a turned crop within the f32 rounding of its
// sample points).
void preprocess(const uint8_t* pixels, const StagedFrame* frames, int n, const Preprocess& pp,
                const Tensor& out, cudaStream_t stream);
// A YUV 4:2:0 frame in device memory and the crop to take from it (kernels/cuda/preprocess_yuv.cu).
struct DeviceYuv {
  const uint8_t* y = nullptr;
  const uint8_t* u = nullptr;
  const uint8_t* v = nullptr;
  int y_stride = 0, uv_stride = 0, uv_step = 1;
  CropRect crop;
  ResizeWindow window;  // as StagedFrame's
};
// frames (a device table of n DeviceYuv) -> out [N,S,S,3]: RGB by `cs`, then as preprocess().
void preprocess_yuv420(const DeviceYuv* frames, int n, const ColorSpec& cs, const Preprocess& pp,
                       const Tensor& out, cudaStream_t stream);
// The face stage's frame ops (face_frames.cu; the CPU's in kernels/cpu/ops.h): frames (a device
// table of n YuvView, planes in device memory) -> out f32 [n,S,S,3], letterboxed for the detector.
void letterbox_yuv420(const YuvView* frames, int n, const ColorSpec& cs, const Tensor& out,
                      cudaStream_t stream);
// faces (a device table of n FaceSquare, each naming its frame in `frames`) -> out [n,S,S,3] in
// f32, f16 or bf16: each face's aligned crop_size square, its window (face_window) normalised.
void face_crops_yuv420(const YuvView* frames, const FaceSquare* faces, int n, int crop_size,
                       const ColorSpec& cs, const Preprocess& pp, const Tensor& out,
                       cudaStream_t stream);
// fervid's tensor-core conv: y = [maxpool2x2] ReLU(conv3x3(x, w) + b); x [N,H,W,C],
// w [K,3,3,C], b [K], y [N,H,W,K] or [N,H/2,W/2,K] with `pool`; f16 or bf16, f32 accumulation.
void conv3x3_igemm_pool(const Tensor& x, const Tensor& w, const Tensor& b, bool pool,
                        const Tensor& y, cudaStream_t stream);
// y = max(y + b, 0) in place; b [K] runs along y's innermost dimension. f32, f16 or bf16.
void bias_relu(const Tensor& y, const Tensor& b, cudaStream_t stream);
// x [N,H,W,C] -> y [N,C], both of the same dtype (f32, f16, bf16).
void global_avgpool(const Tensor& x, const Tensor& y, cudaStream_t stream);

// Grad-CAM's kernels (gradcam.cu; GradcamHead in library_ops.h runs them). y f32 = x (f32, f16
// or bf16), element for element.
void to_f32(const Tensor& x, const Tensor& y, cudaStream_t stream);
// g = 0 where h <= 0 (a ReLU's backward pass given its output h); f32, same element count.
void relu_mask(const Tensor& g, const Tensor& h, cudaStream_t stream);
// alpha [N,C] = scale * sum over p of g [N, positions * C] at (n, p * C + c); f32.
void channel_sums(const Tensor& g, int positions, float scale, const Tensor& alpha,
                  cudaStream_t stream);
// cam [N,H,W] = max(0, sum over c of alpha [N,C] * a [N,H,W,C]); maps [N,S,S] = cam resized with
// the preprocess taps (half-pixel centres), divided by its largest value (0 when that is 0); f32.
void gradcam_map(const Tensor& a, const Tensor& alpha, const Tensor& cam, const Tensor& maps,
                 cudaStream_t stream);

// x [N,H,W,C] -> y [N,H/2,W/2,C]; f32, f16 or bf16 (x and y of the same dtype).
void maxpool2x2(const Tensor& x, const Tensor& y, cudaStream_t stream);
// The face detector's layers (conv2d.cu), as kernels/cpu/ops.h's of the same names: x
// [N,H,W,C], w [K,k,k,C/groups] f32, b [K] f32 -> y [N,OH,OW,K] (x's dtype, or f32), then a ReLU
// when `relu`; any square kernel, stride, uneven padding and groups.
void conv2d_bias_act(const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeometry& g,
                     bool relu, const Tensor& y, cudaStream_t stream);
// a [N,H,W,Ca] + b [N,H,W,Cb] -> y [N,H,W,max(Ca,Cb)], the narrower zero-extended in channels,
// then a ReLU when `relu`; all three of one dtype.
void add_act(const Tensor& a, const Tensor& b, bool relu, const Tensor& y, cudaStream_t stream);
// x [N,H,W,C] -> y [N,2H,2W,C] bilinear, as the CPU's (half-pixel centres or i / 2).
void upsample_bilinear2x(const Tensor& x, bool half_pixel, const Tensor& y, cudaStream_t stream);
// logits [N,C] f32 -> probs [N,C] f32, labels [N] i32 (lowest index among equal maxima).
void softmax_argmax(const Tensor& logits, const Tensor& probs, const Tensor& labels,
                    cudaStream_t stream);
// The vote of docs/design.md. `segments` is a device array of Segment (first, count, slot).
// Accumulation is deterministic: one block per segment walks its frames in order.
void vote_accumulate(const Tensor& probs, const Tensor& labels, const Segment* segments,
                     int num_segments, const Tensor& counts, const Tensor& sums,
                     cudaStream_t stream);
// slots: device array of n slot indices; outputs as the CPU op; clears the slots.
void vote_finalize(const Tensor& counts, const Tensor& sums, const int* slots, int n, VoteMode mode,
                   const Tensor& winners, const Tensor& out_counts, const Tensor& out_sums,
                   cudaStream_t stream);

}  // namespace fervid::cuda
