// The CPU ops (fervid::cpu): f32 references the other implementations are tested against (the
// convolution by im2col + OpenBLAS SGEMM; oneDNN's convolutions are in onednn_conv.h), the dense
// layers, pools, softmax, vote, preprocess and Grad-CAM (float64) the CPU backend runs,
// activations NHWC (the layout of the CUDA backend too). Each op checks its tensors' shapes and
// throws fervid::Error naming the op when they do not fit.
#pragma once

#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "fervid/conv_geometry.h"
#include "fervid/frame.h"
#include "fervid/model_spec.h"
#include "fervid/tensor.h"
#include "fervid/weights.h"

namespace fervid::cpu {

// x [N,H,W,C], w [K,3,3,C], b [K] -> y [N,H,W,K] (or [N,H/2,W/2,K] when pool).
void conv3x3_bias_relu(const Tensor& x, const Tensor& w, const Tensor& b, bool pool,
                       const Tensor& y);
// ---- int8 (kernels/cpu/int8.cpp; --precision int8, docs/int8.md) ----
// A layer's weights w [K,...] f32 as int8: per output channel k, scales[k] = max|w[k]| / 127 and
// values = round(w / scales[k]) in -127..127 (symmetric, round half to even).
struct Int8Weights {
  std::vector<int8_t> values;
  std::vector<float> scales;
};
Int8Weights quantize_weights_s8(const Tensor& w);
// One activation value as u8 for a layer whose input scale is 1 / inv_scale: round half to even
// of x * inv_scale, clamped to 0..255 (inputs follow a ReLU, so nothing below 0 is lost).
// Written so that a loop over it vectorises without SSE4.1's round: once clamped to 0..255, adding
// and taking away 1.5 * 2^23 rounds to the nearest integer, ties to even, as nearbyint does in the
// default rounding mode (the sum's last bit is worth 1), with f32 additions only.
inline uint8_t quantize_u8(float x, float inv_scale) {
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23
  float v = x * inv_scale;
  v = v > 0.0f ? v : 0.0f;  // and NaN to 0
  v = v < 255.0f ? v : 255.0f;
  return uint8_t(int32_t((v + kRound) - kRound));
}
// n values.
void quantize_u8(const float* x, int64_t n, float scale, uint8_t* q);
// maxpool_nhwc on u8 values (kernels/cpu/maxpool2x2.cpp).
void maxpool_nhwc_u8(const uint8_t* in, int n, int h, int w, int c, uint8_t* out);
// conv3x3_bias_relu in int8 (the reference): x quantized by quantize_u8 with `in_scale`, w by
// quantize_weights_s8, the products summed exactly, then y = ReLU(sum * in_scale * w_scale[k] +
// b[k]) in double, rounded to f32 (and pooled when `pool`). Shapes as conv3x3_bias_relu.
void conv3x3_bias_relu_int8(const Tensor& x, const Tensor& w, const Tensor& b, float in_scale,
                            bool pool, const Tensor& y);

// x [N,H,W,C], w [K,k,k,C/groups], b [K] -> y [N,OH,OW,K] (ConvGeometry::out_size), then a ReLU
// when `relu`: any square kernel, stride, uneven padding and groups (the detector's layers).
void conv2d_bias_act(const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeometry& g,
                     bool relu, const Tensor& y);
// a [N,H,W,Ca] + b [N,H,W,Cb] -> y [N,H,W,max(Ca,Cb)], the narrower zero-extended in channels
// (a residual add after a channel pad), then a ReLU when `relu`.
void add_act(const Tensor& a, const Tensor& b, bool relu, const Tensor& y);
// x [N,H,W,C] -> y [N,2H,2W,C], bilinear: with `half_pixel` output pixel i samples the input at
// (i + 0.5) / 2 - 0.5 (clamped to the edges), else at i / 2 (TensorFlow's two conventions).
void upsample_bilinear2x(const Tensor& x, bool half_pixel, const Tensor& y);
// x [N,H,W,C] -> y [N,H/2,W/2,C] (floor, as torch's MaxPool2d(2)).
void maxpool2x2(const Tensor& x, const Tensor& y);
void maxpool_nhwc(const float* in, int n, int h, int w, int c, float* out);
// x [N,H,W,C] -> y [N,C]
void global_avgpool(const Tensor& x, const Tensor& y);
// x [N,in] (or [N,H,W,C], flattened in torchvision's CHW order), w [out,in], b [out] -> y [N,out]
void linear(const Tensor& x, const Tensor& w, const Tensor& b, bool relu, const Tensor& y);
// What linear() runs on this CPU, in words.
const char* linear_kernel();
// Grad-CAM (docs/explain.md) of frames whose last conv layer's activated output, before its 2x2
// pool, is acts [N,H,W,K]: the pool and the head (GAP or the flatten, then `dense`) run again in
// float64, giving logits [N,C]; the gradient of logit classes[i] (-1: the largest, written back)
// goes back through the dense layers and their ReLUs to the activations; its mean per channel
// weighs the channels; their sum, ReLU, resized bilinearly (half-pixel centres, as preprocess) to
// maps [N,S,S], divided by its largest value (all zero when that is 0).
void gradcam(const Tensor& acts, Head head, std::span<const DenseWeights> dense,
             std::span<int> classes, const Tensor& maps, const Tensor& logits);
// logits [N,C] -> probs [N,C] f32, labels [N] i32
void softmax_argmax(const Tensor& logits, const Tensor& probs, const Tensor& labels);
// frames -> out [N,S,S,3] f32
void preprocess(std::span<const ImageView> frames, std::span<const CropRect> crops,
                const Preprocess& pp, const Tensor& out);
// The RGB (integers in floats) of pixel (x, y) of a YUV 4:2:0 frame.
void yuv_pixel_rgb(const YuvView& f, const YuvCoefficients& k, int x, int y, float rgb[3]);
// YUV 4:2:0 frames -> RGB (ColorSpec, integer RGB as swscale gives) -> the same as preprocess().
void preprocess_yuv420(std::span<const YuvView> frames, std::span<const CropRect> crops,
                       const ColorSpec& cs, const Preprocess& pp, const Tensor& out);
// The face stage's frame ops (fervid/face_sample.h): YUV 4:2:0 frames -> out f32 [N,S,S,3], each
// letterboxed into the detector's input (values in [-1, 1], as letterbox_frame).
void letterbox_yuv420(std::span<const YuvView> frames, const ColorSpec& cs, const Tensor& out);
// faces[i]'s aligned square (aligned_face), crop_size pixels a side, of frames[faces[i].frame] ->
// the S x S window preprocess's resize step keeps of it (face_window), normalised as preprocess
// -> out f32 [N,S,S,3].
void face_crops_yuv420(std::span<const YuvView> frames, std::span<const FaceSquare> faces,
                       int crop_size, const ColorSpec& cs, const Preprocess& pp, const Tensor& out);
void vote_accumulate(const Tensor& probs, const Tensor& labels, std::span<const Segment> segments,
                     const Tensor& counts, const Tensor& sums);
void vote_finalize(const Tensor& counts, const Tensor& sums, std::span<const int> slots,
                   VoteMode mode, const Tensor& winners, const Tensor& out_counts,
                   const Tensor& out_sums);
// The winner of one video by `mode` (fervid/model_spec.h: the rule lives in core, where the
// face tracks' votes use it too).
using ::fervid::vote_winner;

}  // namespace fervid::cpu
