// The face detector (docs/faces.md): MediaPipe's BlazeFace as a second network of prepared layers
// on fervid's backends. Its weights file (tools/export_detector.py) carries the card: the layers
// (convolutions of any geometry, residual adds, max-pools), the output layers, the anchors and the
// decoding options. DetectorNet runs the layers on a batch of input tensors; decode_detections and
// weighted_nms turn one frame's raw outputs into faces as MediaPipe's calculators specify them
// (SsdAnchorsCalculator, TensorsToDetectionsCalculator, NonMaxSuppressionCalculator, WEIGHTED).
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "fervid/weights.h"

namespace fervid {

// MediaPipe's SSD anchor options (fixed-size anchors: width and height 1).
struct AnchorOptions {
  std::vector<int> strides;  // one per layer; consecutive equal strides share a feature map
  double offset = 0.5;
  int aspect_ratios = 1;     // how many aspect ratios (each an anchor per cell and layer)
  bool interpolated = true;  // one more anchor per cell and layer (interpolated scale)
};

struct BoxDecoding {
  double scale = 128;  // raw box and key-point values per anchor size (x, y, w and h)
  int keypoints = 6;
  double score_clip = 100;  // raw scores clipped to +-this before the sigmoid
  double min_score = 0.5;
  double nms_iou = 0.3;  // candidates overlapping the best by more than this are merged
};

struct DetectorCard {
  std::string name, source;
  int input_size = 128;
  std::vector<LayerDesc> layers;
  std::vector<int> box_layers, score_layers;  // per scale, in the anchors' order
  AnchorOptions anchors;
  BoxDecoding decode;
};

struct DetectorWeights {
  std::string path;
  DetectorCard card;
  std::vector<LayerWeights> layers;  // per layer (empty for layers without weights)
};
// Fails with one line naming the file and what is wrong (no card, a layer that does not fit).
DetectorWeights load_detector(const std::string& path);

// An anchor's centre and size, in the input's normalized coordinates.
struct Anchor {
  float cx = 0, cy = 0, w = 1, h = 1;
};
std::vector<Anchor> ssd_anchors(const AnchorOptions& options, int input_size);

// A face: its box (top-left corner, size) and key points (x, y pairs: eyes, nose, mouth, ears)
// in the input's normalized coordinates, and its score (a probability).
struct Detection {
  float score = 0;
  float xmin = 0, ymin = 0, width = 0, height = 0;
  std::vector<float> keypoints;
};
// One frame's raw outputs: boxes [anchors, 4 + 2 * keypoints], scores [anchors] -> the anchors
// whose score reaches min_score, decoded, in anchor order.
std::vector<Detection> decode_detections(const float* boxes, const float* scores,
                                         const std::vector<Anchor>& anchors,
                                         const BoxDecoding& options);
// MediaPipe's weighted non-maximum suppression: the best remaining detection and those that
// overlap it by more than `iou` become one, their boxes and key points averaged by score, the
// best one's score kept; best first.
std::vector<Detection> weighted_nms(std::vector<Detection> detections, double iou);
float box_iou(const Detection& a, const Detection& b);

// The detector's layers prepared once on a backend, with their arena.
class DetectorNet {
 public:
  DetectorNet(const DetectorWeights& weights, Backend& backend, int max_batch);
  ~DetectorNet();
  DetectorNet(const DetectorNet&) = delete;
  DetectorNet& operator=(const DetectorNet&) = delete;

  const DetectorCard& card() const { return card_; }
  int anchors() const { return int(anchors_.size()); }
  int max_batch() const { return max_batch_; }
  // [max_batch, S, S, 3] in the backend's memory, values in [-1, 1] (what run() reads).
  const Tensor& input() const { return input_; }
  // Copies n frames of f32 NHWC values (letterbox_frame's) from the host into input().
  void load_input(int n, const float* host);
  // The device path (the backend's FaceFrameOps; frames in its memory): YUV frames letterboxed
  // into input() as letterbox_frame does, or faces' aligned squares (aligned_face, the input's
  // size) into its first faces.size() slots, as the second look cuts them on the host.
  bool reads_yuv_frames() const { return backend_.face_frame_ops() != nullptr; }
  void letterbox(std::span<const YuvView> frames, const ColorSpec& cs);
  void load_squares(std::span<const YuvView> frames, std::span<const FaceSquare> faces,
                    const ColorSpec& cs);
  // The layers on the first n frames of input(); then the raw outputs, copied to the host:
  // boxes [n, anchors, 4 + 2 * keypoints], scores [n, anchors] (before the sigmoid).
  void run(int n);
  void raw_outputs(int n, std::vector<float>& boxes, std::vector<float>& scores);
  // run() on n frames, then each frame's faces (decoded from `min_score`, or the card's when
  // negative; suppressed).
  std::vector<std::vector<Detection>> detect(int n, float min_score = -1);

 private:
  void check_batch(int n, const char* what) const;  // 1..max_batch inputs, or one line
  DetectorCard card_;
  Backend& backend_;
  int max_batch_;
  std::vector<Anchor> anchors_;
  std::vector<std::unique_ptr<PreparedLayer>> prepared_;
  std::vector<int> buffer_of_;
  std::vector<Buffer> arena_, outputs_;  // outputs_: one per output layer (index in layers)
  std::vector<int> output_slot_;         // per layer: its outputs_ index, or -1
  Buffer input_buf_;
  Tensor input_;
};

}  // namespace fervid
