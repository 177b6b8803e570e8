#include "face_detector.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "fervid/safetensors.h"
#include "model.h"

namespace fervid {

namespace {

using nlohmann::json;

// A layer of the card, by name; `index` maps names to the layers before it ("input" is -1).
LayerDesc layer_of(const json& j, const std::map<std::string, int>& index) {
  LayerDesc d;
  d.name = j.at("name").get<std::string>();
  const std::string kind = j.at("kind").get<std::string>();
  d.kind = kind == "conv"       ? LayerKind::Conv
           : kind == "add"      ? LayerKind::Add
           : kind == "maxpool"  ? LayerKind::MaxPool
           : kind == "upsample" ? LayerKind::Upsample
                                : throw Error("layer " + d.name + ": unknown kind '" + kind + "'");
  for (const json& in : j.at("inputs")) {
    auto it = index.find(in.get<std::string>());
    if (it == index.end())
      fail("layer " + d.name + ": input '" + in.get<std::string>() + "' is not an earlier layer");
    d.inputs.push_back(it->second);
  }
  d.height = j.at("height").get<int64_t>();
  d.width = j.at("width").get<int64_t>();
  d.out_channels = j.at("out_channels").get<int64_t>();
  d.in_channels = j.value("in_channels", d.out_channels);
  d.relu = j.value("relu", false);
  d.half_pixel = j.value("half_pixel", true);
  if (d.kind == LayerKind::Conv) {
    const auto kernel = j.at("kernel").get<std::vector<int>>();
    const auto pad = j.at("pad").get<std::vector<int>>();  // top, left, bottom, right
    if (kernel.size() != 2 || kernel[0] != kernel[1] || pad.size() != 4 || pad[0] != pad[1] ||
        pad[2] != pad[3])
      fail("layer " + d.name + ": fervid runs square kernels with the same padding on both axes");
    d.geometry = {kernel[0], j.at("stride").get<int>(), pad[0], pad[2], j.at("groups").get<int>()};
  }
  return d;
}

std::vector<int> layers_named(const json& names, const std::map<std::string, int>& index) {
  std::vector<int> out;
  for (const json& n : names) {
    auto it = index.find(n.get<std::string>());
    if (it == index.end()) fail("output '" + n.get<std::string>() + "' is not a layer");
    out.push_back(it->second);
  }
  return out;
}

DetectorCard card_of(const json& j) {
  DetectorCard c;
  c.name = j.at("name").get<std::string>();
  c.source = j.value("source", "");
  c.input_size = j.at("input_size").get<int>();
  std::map<std::string, int> index{{"input", -1}};
  for (const json& l : j.at("layers")) {
    c.layers.push_back(layer_of(l, index));
    index[c.layers.back().name] = int(c.layers.size()) - 1;
  }
  c.box_layers = layers_named(j.at("outputs").at("boxes"), index);
  c.score_layers = layers_named(j.at("outputs").at("scores"), index);
  for (int i : c.box_layers) c.layers[size_t(i)].logits = true;
  for (int i : c.score_layers) c.layers[size_t(i)].logits = true;
  const json& a = j.at("anchors");
  c.anchors.strides = a.at("strides").get<std::vector<int>>();
  c.anchors.offset = a.value("offset", 0.5);
  c.anchors.aspect_ratios = int(a.at("aspect_ratios").size());
  c.anchors.interpolated = a.value("interpolated_scale_aspect_ratio", 1.0) > 0;
  if (!a.value("fixed_anchor_size", false))
    fail("anchors: fervid decodes fixed-size anchors only (fixed_anchor_size)");
  const json& d = j.at("decode");
  c.decode = {d.at("scale").get<double>(), d.at("keypoints").get<int>(),
              d.at("score_clip").get<double>(), d.at("min_score").get<double>(),
              d.at("nms_iou").get<double>()};
  return c;
}

}  // namespace

DetectorWeights load_detector(const std::string& path) {
  const SafetensorsFile file = SafetensorsFile::open(path);
  auto it = file.metadata().find("fervid_detector");
  if (it == file.metadata().end())
    throw WeightsError(path +
                       ": not a face detector (no fervid_detector card in its metadata; "
                       "make one with tools/export_detector.py)");
  DetectorWeights w;
  w.path = path;
  try {
    w.card = card_of(json::parse(it->second));
  } catch (const json::exception& e) {
    throw WeightsError(printable(path + ": the detector card: " + e.what()));
  } catch (const Error& e) {
    throw WeightsError(printable(path + ": " + e.what()));
  }
  for (const LayerDesc& l : w.card.layers) {
    LayerWeights lw;
    if (l.kind == LayerKind::Conv) {
      const StTensorInfo* wt = file.find(l.name + ".weight");
      const StTensorInfo* bt = file.find(l.name + ".bias");
      const std::vector<int64_t> want{l.out_channels, l.in_channels / l.geometry.groups,
                                      l.geometry.kernel, l.geometry.kernel};
      if (!wt || !bt || wt->shape != want || bt->shape != std::vector<int64_t>{l.out_channels})
        throw WeightsError(path + ": layer " + l.name +
                           ": its weight or bias is missing or of "
                           "another shape than the card says");
      lw.weight = read_f32(file, *wt);
      lw.bias = read_f32(file, *bt);
    }
    w.layers.push_back(std::move(lw));
  }
  return w;
}

std::vector<Anchor> ssd_anchors(const AnchorOptions& o, int input_size) {
  std::vector<Anchor> out;
  const int per_layer = o.aspect_ratios + (o.interpolated ? 1 : 0);
  for (size_t layer = 0; layer < o.strides.size();) {
    size_t last = layer;  // layers of one stride share a feature map
    while (last + 1 < o.strides.size() && o.strides[last + 1] == o.strides[layer]) ++last;
    const int per_cell = per_layer * int(last - layer + 1);
    const int size = (input_size + o.strides[layer] - 1) / o.strides[layer];
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x)
        for (int k = 0; k < per_cell; ++k)
          out.push_back({float((x + o.offset) / size), float((y + o.offset) / size), 1, 1});
    layer = last + 1;
  }
  return out;
}

std::vector<Detection> decode_detections(const float* boxes, const float* scores,
                                         const std::vector<Anchor>& anchors, const BoxDecoding& o) {
  std::vector<Detection> out;
  const int values = 4 + 2 * o.keypoints;
  const float s = float(o.scale);
  for (size_t i = 0; i < anchors.size(); ++i) {
    const double raw = std::clamp(double(scores[i]), -o.score_clip, o.score_clip);
    const double score = 1.0 / (1.0 + std::exp(-raw));
    if (score < o.min_score) continue;
    const Anchor& a = anchors[i];
    const float* r = boxes + i * size_t(values);
    const float cx = r[0] / s * a.w + a.cx, cy = r[1] / s * a.h + a.cy;
    const float w = r[2] / s * a.w, h = r[3] / s * a.h;
    Detection d{float(score), cx - w / 2, cy - h / 2, w, h, {}};
    for (int k = 0; k < o.keypoints; ++k) {
      d.keypoints.push_back(r[4 + 2 * k] / s * a.w + a.cx);
      d.keypoints.push_back(r[5 + 2 * k] / s * a.h + a.cy);
    }
    out.push_back(std::move(d));
  }
  return out;
}

float box_iou(const Detection& a, const Detection& b) {
  const float x0 = std::max(a.xmin, b.xmin), y0 = std::max(a.ymin, b.ymin);
  const float x1 = std::min(a.xmin + a.width, b.xmin + b.width);
  const float y1 = std::min(a.ymin + a.height, b.ymin + b.height);
  if (x1 <= x0 || y1 <= y0) return 0;
  const float inter = (x1 - x0) * (y1 - y0);
  const float uni = a.width * a.height + b.width * b.height - inter;
  return uni > 0 ? inter / uni : 0;
}

std::vector<Detection> weighted_nms(std::vector<Detection> remaining, double iou) {
  std::stable_sort(remaining.begin(), remaining.end(),
                   [](const Detection& a, const Detection& b) { return a.score > b.score; });
  std::vector<Detection> out;
  while (!remaining.empty()) {
    const Detection best = remaining.front();
    std::vector<Detection> merged, rest;
    // The best one always joins its own group (a box of no area overlaps nothing, itself too).
    merged.push_back(best);
    for (size_t i = 1; i < remaining.size(); ++i)
      (box_iou(best, remaining[i]) > iou ? merged : rest).push_back(remaining[i]);
    Detection w = best;
    double total = 0, x0 = 0, y0 = 0, x1 = 0, y1 = 0;
    std::vector<double> kp(best.keypoints.size(), 0.0);
    for (const Detection& d : merged) {
      total += d.score;
      x0 += d.score * d.xmin;
      y0 += d.score * d.ymin;
      x1 += d.score * (d.xmin + d.width);
      y1 += d.score * (d.ymin + d.height);
      for (size_t k = 0; k < kp.size(); ++k) kp[k] += d.score * d.keypoints[k];
    }
    if (total > 0) {
      w.xmin = float(x0 / total);
      w.ymin = float(y0 / total);
      w.width = float((x1 - x0) / total);
      w.height = float((y1 - y0) / total);
      for (size_t k = 0; k < kp.size(); ++k) w.keypoints[k] = float(kp[k] / total);
    }
    out.push_back(std::move(w));
    remaining = std::move(rest);
  }
  return out;
}

DetectorNet::DetectorNet(const DetectorWeights& weights, Backend& backend, int max_batch)
    : card_(weights.card),
      backend_(backend),
      max_batch_(max_batch),
      anchors_(ssd_anchors(card_.anchors, card_.input_size)) {
  int64_t rows = 0;
  for (int i : card_.box_layers) {
    const LayerDesc& l = card_.layers[size_t(i)];
    rows += l.out_height() * l.out_width() * l.out_channels / (4 + 2 * card_.decode.keypoints);
  }
  if (rows != int64_t(anchors_.size()))
    fail(weights.path + ": the box outputs hold " + std::to_string(rows) + " anchors, the " +
         "anchor options make " + std::to_string(anchors_.size()));
  for (size_t i = 0; i < card_.layers.size(); ++i) {
    const LayerDesc& l = card_.layers[i];
    try {
      prepared_.push_back(backend.prepare(l, weights.layers[i]));
    } catch (const Error& e) {
      fail_within(weights.path + ": layer " + l.name + ": ", e);
    }
  }
  const ArenaPlan plan = plan_arena(card_.layers);
  buffer_of_ = plan.buffer_of;
  const size_t elem = dtype_size(backend.compute_dtype());
  int64_t largest = 0;
  for (const LayerDesc& l : card_.layers) largest = std::max(largest, l.unpooled_elements());
  for (int b = 0; b < plan.buffers; ++b)
    arena_.push_back(backend.allocate(size_t(largest) * size_t(max_batch) * elem));
  output_slot_.assign(card_.layers.size(), -1);
  for (size_t i = 0; i < card_.layers.size(); ++i)
    if (card_.layers[i].logits) {
      output_slot_[i] = int(outputs_.size());
      outputs_.push_back(
          backend.allocate(size_t(card_.layers[i].unpooled_elements()) * max_batch * 4));
    }
  const int64_t S = card_.input_size;
  input_buf_ = backend.allocate(size_t(S * S * 3) * max_batch * elem);
  input_ = Tensor::view(input_buf_, {max_batch, S, S, 3}, backend.compute_dtype(),
                        backend.activation_layout());
}

DetectorNet::~DetectorNet() = default;

void DetectorNet::load_input(int n, const float* host) {
  check_batch(n, "frames");
  if (input_.dtype() != DType::F32)
    fail("detector: its input is " + std::string(dtype_name(input_.dtype())) +
         ", not the f32 the letterbox writes (make the detector's backend fp32)");
  backend_.copy_from_host(input_.slice(0, n), host);
}

void DetectorNet::check_batch(int n, const char* what) const {
  if (n < 1 || n > max_batch_)
    fail("detector: " + std::to_string(n) + " " + what + ", outside 1.." +
         std::to_string(max_batch_));
}

namespace {

FaceFrameOps& face_ops(Backend& backend) {
  FaceFrameOps* ops = backend.face_frame_ops();
  if (!ops) fail("detector: the " + backend.name() + " backend does not read YUV frames");
  return *ops;
}

}  // namespace

void DetectorNet::letterbox(std::span<const YuvView> frames, const ColorSpec& cs) {
  const int n = int(frames.size());
  check_batch(n, "frames");
  face_ops(backend_).letterbox_yuv420(frames, cs, input_.slice(0, n));
}

void DetectorNet::load_squares(std::span<const YuvView> frames, std::span<const FaceSquare> faces,
                               const ColorSpec& cs) {
  const int n = int(faces.size());
  check_batch(n, "faces");
  // The second look's input: the crop's bytes / 127.5 - 1.
  Preprocess pp;
  pp.scale = 1.0f / 127.5f;
  pp.mean = {1.0f, 1.0f, 1.0f};
  face_ops(backend_).face_crops_yuv420(frames, faces, card_.input_size, cs, pp, input_.slice(0, n));
}

void DetectorNet::run(int n) {
  check_batch(n, "frames");
  const Layout layout = backend_.activation_layout();
  std::vector<Tensor> out(card_.layers.size());
  std::vector<Tensor> x;
  for (size_t i = 0; i < card_.layers.size(); ++i) {
    const LayerDesc& l = card_.layers[i];
    x.clear();
    for (int j : l.inputs) x.push_back(j < 0 ? input_.slice(0, n) : out[size_t(j)]);
    if (l.inputs.empty()) x.push_back(i == 0 ? input_.slice(0, n) : out[i - 1]);
    const std::vector<int64_t> shape = l.output_shape(n, layout);
    const Tensor y =
        l.logits
            ? Tensor::view(outputs_[size_t(output_slot_[i])], shape, DType::F32, layout)
            : Tensor::view(arena_[size_t(buffer_of_[i])], shape, backend_.compute_dtype(), layout);
    try {
      prepared_[i]->run(x, y);
    } catch (const Error& e) {
      fail_within("detector layer " + l.name + ": ", e);
    }
    out[i] = y;
  }
}

void DetectorNet::raw_outputs(int n, std::vector<float>& boxes, std::vector<float>& scores) {
  const int values = 4 + 2 * card_.decode.keypoints;
  const size_t a = anchors_.size();
  boxes.assign(size_t(n) * a * values, 0.0f);
  scores.assign(size_t(n) * a, 0.0f);
  // Each scale's output is [n, H, W, anchors per cell * values]: frame by frame, its rows follow
  // the scales before it.
  auto gather = [&](const std::vector<int>& layers, std::vector<float>& dst, int per_anchor) {
    size_t row = 0;
    for (int i : layers) {
      const LayerDesc& l = card_.layers[size_t(i)];
      const int64_t per_frame = l.out_height() * l.out_width() * l.out_channels;
      std::vector<float> host(size_t(per_frame) * n);
      const Tensor t =
          Tensor::view(outputs_[size_t(output_slot_[size_t(i)])], {n, per_frame}, DType::F32);
      backend_.copy_to_host(host.data(), t);
      const size_t rows = size_t(per_frame / per_anchor);
      for (int f = 0; f < n; ++f)
        std::copy_n(host.data() + size_t(f) * per_frame, per_frame,
                    dst.data() + (size_t(f) * a + row) * per_anchor);
      row += rows;
    }
  };
  gather(card_.box_layers, boxes, values);
  gather(card_.score_layers, scores, 1);
}

std::vector<std::vector<Detection>> DetectorNet::detect(int n, float min_score) {
  BoxDecoding decoding = card_.decode;
  if (min_score >= 0) decoding.min_score = min_score;
  run(n);
  std::vector<float> boxes, scores;
  raw_outputs(n, boxes, scores);
  const size_t values = size_t(4 + 2 * card_.decode.keypoints);
  std::vector<std::vector<Detection>> faces;
  for (int f = 0; f < n; ++f) {
    const size_t a = anchors_.size() * size_t(f);
    faces.push_back(weighted_nms(
        decode_detections(boxes.data() + a * values, scores.data() + a, anchors_, decoding),
        card_.decode.nms_iou));
  }
  return faces;
}

}  // namespace fervid
