// fervid::Engine (fervid/fervid.h): a backend, a model prepared on it, and classify runs.
#include <algorithm>
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>

#include "backend_factory.h"
#include "backends/cpu/conv_policy.h"
#include "backends/cuda/cuda_probe.h"
#include "cards.h"
#include "classifier.h"
#include "face.h"
#include "face_follower.h"
#include "fervid/fervid.h"
#include "model.h"
#include "run_clock.h"
#include "video.h"

namespace fervid {

BuildInfo build_info() {
  return {FERVID_VERSION, cuda_built(), cuda_built() ? cuda_library_versions() : ""};
}

std::pair<ModelSpec, std::string> resolve_card(const std::string& name_or_path) {
  if (name_or_path == "ravdess-vgg16")
    return {ModelSpec::from_json(nlohmann::json::parse(kRavdessCard), "built-in ravdess-vgg16"),
            "built-in card ravdess-vgg16"};
  if (name_or_path == "torchvision-vgg16")
    return {
        ModelSpec::from_json(nlohmann::json::parse(kTorchvisionCard), "built-in torchvision-vgg16"),
        "built-in card torchvision-vgg16"};
  return {ModelSpec::load_card(name_or_path), name_or_path};
}

Weights load_weights(const std::string& path, const std::string& card) {
  try {
    if (card.empty()) return Weights::load(path);
    auto [spec, origin] = resolve_card(card);
    return Weights::load(path, spec, origin);
  } catch (const WeightsError&) {
    throw;
  } catch (const Error& e) {
    throw WeightsError(e.what());
  }
}

namespace {

void print_notice(const std::string& line) { std::cerr << "fervid: notice: " << line << "\n"; }

// A sink that gets the engine's notices ({{key}} for options) in `wording`'s words.
NoticeSink worded(NoticeSink sink, Wording wording) {
  return
      [sink = std::move(sink), wording](const std::string& line) { sink(in_words(line, wording)); };
}

std::string graphs_failure(Backend& be) {
  GraphReplay* graphs = be.graph_replay();
  return graphs ? graphs->replay_stats().failure : "";
}

}  // namespace

struct Engine::Impl {
  ModelSpec spec;
  NoticeSink notify;  // in the caller's words (EngineOptions::wording)
  Wording wording = Wording::Cli;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
  std::vector<LayerWeights> dense;  // with EngineOptions::explain: the head's, f32 on the host
  // classify_frames with crop haar, or face (its detector's file, weights and follower): made
  // on first use.
  std::unique_ptr<FaceFinder> faces;
  std::string detector_file;
  std::optional<DetectorWeights> detector;
  std::unique_ptr<FaceFollower> follower;
  std::optional<CropRect> own_face(const ImageView& frame, const CropSpec& crop);
  void take_scores(FrameScores& s, int first, int n);
};

// `frame`'s largest face alone (a new track each time: a frame's crop never depends on the
// frames beside it).
std::optional<CropRect> Engine::Impl::own_face(const ImageView& frame, const CropSpec& crop) {
  if (crop.mode == CropSpec::Mode::Haar) {
    if (!faces) faces = std::make_unique<FaceFinder>();
    const ImageView one[] = {frame};
    return faces->video_box(one, crop.margin);
  }
  if (!follower || detector_file != crop.detector_file()) {
    follower.reset();
    detector = load_crop_detector(crop);
    detector_file = crop.detector_file();
    follower = std::make_unique<FaceFollower>(*detector, FacesOptions{});
  }
  follower->restart();
  const std::vector<FaceRow> rows = follower->next(frame, 0, 0);
  if (auto face = largest_face_crop(rows, crop.margin, frame.width, frame.height))
    return face->rect;
  return std::nullopt;
}

Engine::Engine(Weights weights, const EngineOptions& options) : impl_(std::make_unique<Impl>()) {
  if (options.max_batch < 1)
    fail_option("{{batch}} " + std::to_string(options.max_batch) + ": must be at least 1");
  impl_->spec = weights.spec;
  impl_->wording = options.wording;
  impl_->notify =
      worded(options.notify ? options.notify : NoticeSink(print_notice), options.wording);
  impl_->backend = make_backend(options.backend, impl_->notify);
  impl_->model =
      std::make_unique<Model>(weights, *impl_->backend, options.max_batch, options.explain);
  if (options.explain) impl_->dense = std::move(weights.dense);
}

Engine::~Engine() = default;

const ModelSpec& Engine::spec() const { return impl_->spec; }
std::vector<Engine::LayerInfo> Engine::layers() const {
  std::vector<LayerInfo> out;
  const Model& model = *impl_->model;
  for (size_t i = 0; i < model.layers().size(); ++i) {
    const std::vector<LayerPlan> plans = model.plans(i);
    LayerInfo info{model.layers()[i].name, "", ""};
    const LayerPlan* p = plans.empty() ? nullptr : &plans.front();
    for (const LayerPlan& q : plans)
      if (q.timed_batch > p->timed_batch) p = &q;
    if (p) {
      info.impl = p->impl;
      info.why = in_words(p->why, impl_->wording);
    }
    out.push_back(info);
  }
  return out;
}

std::string Engine::backend_name() const { return impl_->backend->name(); }
std::string Engine::device_name() const { return impl_->backend->device_name(); }
Precision Engine::precision() const { return impl_->backend->precision(); }
int Engine::max_batch() const { return impl_->model->max_batch(); }
Model& Engine::model() { return *impl_->model; }
Backend& Engine::backend() { return *impl_->backend; }

// The options with the face crops' margin the card sets (ModelSpec::face_margin).
ClassifyOptions Engine::with_card_margin(ClassifyOptions options) const {
  options.crop.margin = impl_->spec.face_margin;
  return options;
}

ClassifyOptions Engine::default_options() const {
  ClassifyOptions o;
  o.batch = max_batch();
  o.crop = CropSpec::parse(impl_->spec.crop);
  o.vote = impl_->spec.vote;
  return o;
}

RunStats Engine::classify(const std::vector<InputItem>& inputs, const ClassifyOptions& options,
                          const OnVideo& on_video, const NoticeSink& notify, std::stop_token stop) {
  const NoticeSink tell = notify ? worded(notify, impl_->wording) : impl_->notify;
  Classifier classifier(*impl_->model, with_card_margin(options));
  const bool videos = std::any_of(inputs.begin(), inputs.end(),
                                  [](const InputItem& i) { return i.kind == InputKind::Video; });
  if (!classifier.decoder_notice().empty() && videos) tell(classifier.decoder_notice());
  Progress progress;
  progress.videos_total = inputs.size();
  const auto t0 = Clock::now();
  RunStats stats = classifier.run(
      inputs,
      [&](const VideoResult& r) {
        ++progress.videos_done;
        progress.frames += r.frames;
        progress.seconds = seconds_since(t0);
        on_video(r, progress);
      },
      stop);
  const std::string failure = graphs_failure(*impl_->backend);
  if (!failure.empty())
    tell("CUDA graphs: off after a failed capture (" + failure + "); the frame stage ran op by op");
  return stats;
}

RunStats Engine::decode_only(const std::vector<InputItem>& inputs, const ClassifyOptions& options) {
  return Classifier(*impl_->model, with_card_margin(options)).decode_only(inputs);
}

// Each frame's crop for classify_frames: the spec's rectangle; for `face` and `haar`, the face of
// that frame alone (the centre crop where it has none, marked in `no_face`).
std::vector<CropRect> Engine::frame_crops(std::span<const ImageView> frames, const CropSpec& crop,
                                          std::vector<uint8_t>& no_face) {
  if (crop.mode == CropSpec::Mode::Boxes)
    fail_option(
        "{{crop}} boxes=FILE names boxes per video file; frames in memory take full, "
        "center, box=x,y,w,h, face or haar");
  std::vector<CropRect> crops;
  no_face.assign(frames.size(), 0);
  for (const ImageView& f : frames) {
    if (!f.data || f.width < 1 || f.height < 1 || f.stride < f.width * 3)
      fail_input("frame " + std::to_string(crops.size()) + ": not an 8-bit RGB image (" +
                 std::to_string(f.width) + "x" + std::to_string(f.height) + ", stride " +
                 std::to_string(f.stride) + ")");
    if (!crop.finds_faces()) {
      crops.push_back(crop.rect_for(f.width, f.height));
      continue;
    }
    CropSpec carded = crop;
    carded.margin = impl_->spec.face_margin;
    const std::optional<CropRect> box = impl_->own_face(f, carded);
    no_face[crops.size()] = !box;
    crops.push_back(box ? *box : centre_square(f.width, f.height));
  }
  return crops;
}

FrameScores Engine::classify_frames(std::span<const ImageView> frames, const CropSpec& crop) {
  Model& model = *impl_->model;
  FrameScores s;
  s.frames = int(frames.size());
  s.classes = impl_->spec.num_classes();
  s.labels.resize(frames.size());
  s.probs.resize(frames.size() * size_t(s.classes));
  s.logits.resize(s.probs.size());
  s.crops = frame_crops(frames, crop, s.no_face);
  const std::vector<CropRect>& crops = s.crops;
  for (int first = 0; first < s.frames; first += model.max_batch()) {
    const int n = std::min(model.max_batch(), s.frames - first);
    model.forward(frames.subspan(first, n), std::span<const CropRect>(crops).subspan(first, n));
    impl_->take_scores(s, first, n);
  }
  return s;
}

// Frames [first, first + n) of `s` from the model's outputs; a row whose probabilities are not
// all finite gets label -1.
void Engine::Impl::take_scores(FrameScores& s, int first, int n) {
  const size_t row = size_t(first) * s.classes;
  backend->copy_to_host(s.labels.data() + first, model->labels().slice(0, n));
  backend->copy_to_host(s.probs.data() + row, model->probs().slice(0, n));
  backend->copy_to_host(s.logits.data() + row, model->logits().slice(0, n));
  for (int i = first; i < first + n; ++i)
    if (!std::all_of(s.probs.begin() + size_t(i) * s.classes,
                     s.probs.begin() + size_t(i + 1) * s.classes,
                     [](float p) { return std::isfinite(p); }))
      s.labels[size_t(i)] = -1;
}

NetworkInputs Engine::network_inputs(const InputItem& input, const SamplingOptions& sampling,
                                     const CropSpec& crop) {
  Model& model = *impl_->model;
  Backend& be = *impl_->backend;
  if (be.compute_dtype() != DType::F32)
    fail_option("network inputs need an engine computing in f32 ({{precision}} fp32)");
  const bool face = crop.mode == CropSpec::Mode::Face;
  if (crop.mode == CropSpec::Mode::Haar || crop.mode == CropSpec::Mode::Boxes)
    fail_option("network inputs take {{crop}} full, center, box=x,y,w,h or face");
  if (input.kind == InputKind::Invalid) fail_input(input.path + ": " + input.error);
  SamplingOptions s = sampling;
  s.keep_yuv = false;  // the CPU's reference path: swscale's RGB
  std::unique_ptr<FrameSource> source = open_frames(input, s);
  std::optional<DetectorWeights> detector;
  std::unique_ptr<FaceFollower> follower;
  if (face) {
    detector = load_crop_detector(crop);
    FacesOptions follow;
    follow.sampling = s;
    follower = std::make_unique<FaceFollower>(*detector, follow);
  }
  const double margin = impl_->spec.face_margin;
  NetworkInputs out;
  out.size = impl_->spec.input_size;
  const size_t per = size_t(out.size) * out.size * 3;
  std::vector<Frame> batch;
  std::vector<CropRect> crops;
  auto flush = [&] {
    if (batch.empty()) return;
    const int n = int(batch.size());
    model.preprocess(batch, crops, 0);
    out.values.resize(out.values.size() + size_t(n) * per);
    be.copy_to_host(out.values.data() + out.values.size() - size_t(n) * per,
                    model.input(0).slice(0, n));
    batch.clear();
    crops.clear();
  };
  for (Frame f; source->next(f);) {
    CropRect r;
    bool none = false;
    if (face) {
      const std::vector<FaceRow> rows = follower->next(f.view(), f.index, f.time_s);
      const std::optional<FaceCrop> c = largest_face_crop(rows, margin, f.width, f.height);
      none = !c;
      r = c ? c->rect : centre_square(f.width, f.height);
    } else {
      r = crop.rect_for(f.width, f.height);
    }
    out.index.push_back(f.index);
    out.time_s.push_back(f.time_s);
    out.crops.push_back(r);
    out.no_face.push_back(none ? 1 : 0);
    batch.push_back(std::move(f));
    crops.push_back(r);
    if (int(batch.size()) == model.max_batch()) flush();
  }
  flush();
  out.frames = int(out.index.size());
  return out;
}

std::vector<std::string> int8_layers(const ModelSpec& spec) {
  const Preprocess& pp = spec.preprocess;
  const bool image = pp.mean[0] <= 0 && pp.mean[1] <= 0 && pp.mean[2] <= 0;
  const std::vector<ConvLayer> convs = spec.conv_layers();
  std::vector<std::string> out;
  for (size_t i = 0; i < convs.size(); ++i)
    if (i == 0 ? image : convs[i].in_channels >= cpu::CpuConvPolicy::kInt8MinChannels)
      out.push_back(convs[i].name);
  return out;
}

Engine::Int8Calibration Engine::calibrate_int8(const std::vector<InputItem>& inputs,
                                               const SamplingOptions& sampling,
                                               const CropSpec& crop, int64_t max_frames) {
  Model& model = *impl_->model;
  Backend& be = *impl_->backend;
  if (be.compute_dtype() != DType::F32 || be.precision() != Precision::Fp32)
    fail_option("calibration runs the network in fp32 ({{precision}} fp32)");
  if (inputs.empty()) fail_option("calibration needs frames: give videos, images or folders");
  if (max_frames < 1) fail_option("calibration needs at least one frame");
  const std::vector<LayerDesc>& layers = model.layers();
  // The conv layers that get a scale (int8_layers), each by the layer whose output it reads;
  // the first reads the image.
  const std::vector<std::string> scaled = int8_layers(impl_->spec);
  const Preprocess& pp = impl_->spec.preprocess;
  std::map<std::string, size_t> reader_of;  // producer's name -> conv layer index
  bool first_int8 = false;
  for (size_t i = 0; i < layers.size(); ++i) {
    if (std::find(scaled.begin(), scaled.end(), layers[i].name) == scaled.end()) continue;
    if (i == 0)
      first_int8 = true;
    else
      reader_of[layers[i - 1].name] = i;
  }
  std::vector<double> peak(layers.size(), 0.0);
  std::map<std::string, size_t> index_of;
  for (size_t i = 0; i < layers.size(); ++i) index_of[layers[i].name] = i;
  Int8Calibration out;
  std::vector<float> host;
  for (size_t k = 0; k < inputs.size() && out.frames < max_frames; ++k) {
    const InputItem& input = inputs[k];
    // This input's share of what is left: a short or unreadable one leaves its rest to the next.
    const int64_t left = int64_t(inputs.size() - k);
    const int64_t share = (max_frames - out.frames + left - 1) / left;
    SamplingOptions s = sampling;
    s.max_frames = int(std::min<int64_t>(share, s.max_frames > 0 ? s.max_frames : share));
    NetworkInputs in;
    try {
      in = network_inputs(input, s, crop);
    } catch (const Error& e) {
      // An input that cannot be read (or decoded to its end) is skipped; a bad option is not.
      if (dynamic_cast<const OptionError*>(&e) || dynamic_cast<const DeviceError*>(&e)) throw;
      out.skipped.push_back(e.what());
      continue;
    }
    const size_t per = size_t(in.size) * in.size * 3;
    const int frames = int(std::min<int64_t>(in.frames, max_frames - out.frames));
    for (int first = 0; first < frames; first += model.max_batch()) {
      const int n = std::min(model.max_batch(), frames - first);
      be.copy_from_host(model.input(0).slice(0, n), in.values.data() + size_t(first) * per);
      model.frame_stage(n, [&](const std::string& name) {
        const auto it = reader_of.find(name);
        if (it == reader_of.end()) return;
        const Tensor y = model.layer_output(index_of.at(name), n);
        host.resize(size_t(y.numel()));
        be.copy_to_host(host.data(), y);
        double& m = peak[it->second];
        for (float v : host)
          if (std::isfinite(v)) m = std::max(m, double(v));
      });
    }
    out.frames += frames;
  }
  if (out.frames == 0)
    fail_input("calibration read no frames" +
               (out.skipped.empty() ? std::string() : " (" + out.skipped.front() + ")"));
  // The image's scale is its range, not what the frames showed: (255 x scale - mean) / std at
  // most, so that no brighter frame saturates (for the study's card, 1 / 255: every 8-bit value
  // exact).
  if (first_int8) {
    reader_of[""] = 0;
    for (int c = 0; c < 3; ++c)
      peak[0] = std::max(peak[0], (255.0 * pp.scale - pp.mean[size_t(c)]) / pp.std[size_t(c)]);
  }
  // Elsewhere the largest value seen, nothing clipped: on the study's and torchvision's networks
  // a percentile (99.9 to 99.999 %) gave no smaller error of the logits (docs/int8.md).
  for (const auto& [producer, i] : reader_of)
    // A layer whose input was 0 on every frame keeps a scale that makes 0 exact and anything
    // else saturate at once (a dead layer on the calibration frames).
    out.scales[layers[i].name] = float(peak[i] > 0 ? peak[i] / 255.0 : 1.0 / 255.0);
  return out;
}

bool Engine::reads_yuv_faces() const { return impl_->backend->face_frame_ops() != nullptr; }

int Engine::face_crop_size() const {
  const Preprocess& p = impl_->spec.preprocess;
  return p.resize > 0 ? p.resize : impl_->spec.input_size;
}

FrameScores Engine::classify_faces(std::span<const YuvView> frames,
                                   std::span<const FaceSquare> faces, const ColorSpec& cs) {
  FaceFrameOps* ops = impl_->backend->face_frame_ops();
  if (!ops) fail("classify_faces: the " + impl_->backend->name() + " backend reads RGB frames");
  Model& model = *impl_->model;
  FrameScores s;
  s.frames = int(faces.size());
  s.classes = impl_->spec.num_classes();
  s.labels.resize(faces.size());
  s.probs.resize(faces.size() * size_t(s.classes));
  s.logits.resize(s.probs.size());
  s.no_face.assign(faces.size(), 0);
  for (int first = 0; first < s.frames; first += model.max_batch()) {
    const int n = std::min(model.max_batch(), s.frames - first);
    ops->face_crops_yuv420(frames, faces.subspan(size_t(first), size_t(n)), face_crop_size(), cs,
                           impl_->spec.preprocess, model.input(0).slice(0, n));
    model.frame_stage(n);
    impl_->take_scores(s, first, n);
  }
  return s;
}

std::vector<FrameExplanation> Engine::explain_frames(std::span<const ImageView> frames,
                                                     std::span<const CropRect> crops,
                                                     std::span<const int> classes) {
  const ModelSpec& spec = impl_->spec;
  if (impl_->dense.empty())
    fail_option("Grad-CAM needs an engine made with {{explain}} (the head's weights)");
  if (crops.size() != frames.size() || classes.size() != frames.size())
    fail("explain: one crop and one class per frame are needed");
  const auto convs = spec.conv_layers();
  if (convs.empty() || !convs.back().pool)
    fail_option("Grad-CAM needs the card's last conv layer followed by its 2x2 pool (VGG16's)");
  const int c = spec.num_classes(), S = spec.input_size;
  for (size_t i = 0; i < frames.size(); ++i) {
    const ImageView& f = frames[i];
    if (!f.data || f.width < 1 || f.height < 1 || f.stride < f.width * 3)
      fail_input("frame " + std::to_string(i) + ": not an 8-bit RGB image");
    if (classes[i] < -1 || classes[i] >= c)
      fail_option("explain: class " + std::to_string(classes[i]) + " outside 0.." +
                  std::to_string(c - 1));
  }
  const auto layers = spec.dense_layers();
  std::vector<DenseWeights> dense;
  for (size_t i = 0; i < impl_->dense.size(); ++i)
    dense.push_back({&impl_->dense[i].weight.tensor, &impl_->dense[i].bias.tensor, layers[i].relu});
  DeviceGradcam* gradcam = impl_->backend->device_gradcam();
  if (!gradcam) fail("explain: the " + impl_->backend->name() + " backend has no Grad-CAM");
  Model& model = *impl_->model;
  std::vector<FrameExplanation> out(frames.size());
  for (size_t first = 0; first < frames.size(); first += size_t(model.max_batch())) {
    const int n = int(std::min(frames.size() - first, size_t(model.max_batch())));
    const Tensor acts = model.forward_features(frames.subspan(first, n), crops.subspan(first, n));
    std::vector<float> maps(size_t(n) * S * S), logits(size_t(n) * c);
    std::vector<int> cls(classes.begin() + first, classes.begin() + first + n);
    const Tensor tmaps(maps.data(), {n, S, S}, DType::F32),
        tlogits(logits.data(), {n, c}, DType::F32);
    // Where the activations are (CUDA: kernels and cuBLASLt; CPU: the float64 reference).
    gradcam->gradcam(acts, spec.head, dense, cls, tmaps, tlogits);
    for (int i = 0; i < n; ++i) {
      FrameExplanation& e = out[first + i];
      e.crop = crops[first + i];
      e.cls = cls[i];
      e.map_size = S;
      e.map.assign(maps.begin() + size_t(i) * S * S, maps.begin() + size_t(i + 1) * S * S);
      // Softmax of the head's logits, in float64.
      const float* lg = logits.data() + size_t(i) * c;
      const double top = *std::max_element(lg, lg + c);
      double sum = 0;
      for (int j = 0; j < c; ++j) sum += std::exp(double(lg[j]) - top);
      for (int j = 0; j < c; ++j) e.probs.push_back(float(std::exp(double(lg[j]) - top) / sum));
    }
  }
  return out;
}

std::vector<FrameExplanation> Engine::explain(const InputItem& input,
                                              const SamplingOptions& sampling,
                                              std::span<const ExplainRequest> requests) {
  if (requests.empty()) return {};
  if (input.kind == InputKind::Invalid) fail_input(input.path + ": " + input.error);
  std::map<int64_t, std::vector<size_t>> wanted;  // frame index -> requests
  for (size_t i = 0; i < requests.size(); ++i) wanted[requests[i].frame_index].push_back(i);
  std::vector<Frame> kept(requests.size());
  size_t found = 0;
  read_frames(input, sampling, [&](const InputFrame& f) {
    auto it = wanted.find(f.index);
    if (it == wanted.end()) return true;
    for (size_t r : it->second) {
      Frame& k = kept[r];
      k.index = f.index;
      k.time_s = f.time_s;
      k.width = f.image.width;
      k.height = f.image.height;
      k.stride = f.image.width * 3;
      k.rgb.resize(size_t(k.stride) * k.height);
      for (int y = 0; y < k.height; ++y)
        std::copy_n(f.image.data + size_t(y) * f.image.stride, size_t(k.stride),
                    k.rgb.data() + size_t(y) * k.stride);
      ++found;
    }
    return found < requests.size();
  });
  if (found < requests.size())
    for (const ExplainRequest& r : requests)
      if (std::none_of(kept.begin(), kept.end(),
                       [&](const Frame& f) { return f.index == r.frame_index && !f.rgb.empty(); }))
        fail_input(input.path + ": has no frame " + std::to_string(r.frame_index) +
                   " (with this sampling)");
  std::vector<ImageView> views;
  std::vector<CropRect> crops;
  std::vector<int> classes;
  for (size_t i = 0; i < requests.size(); ++i) {
    views.push_back(kept[i].view());
    crops.push_back(requests[i].crop);
    classes.push_back(requests[i].cls);
  }
  std::vector<FrameExplanation> out = explain_frames(views, crops, classes);
  for (size_t i = 0; i < out.size(); ++i) {
    Frame& f = kept[i];
    out[i].frame_index = f.index;
    out[i].time_s = f.time_s;
    out[i].width = f.width;
    out[i].height = f.height;
    out[i].rgb = std::move(kept[i].rgb);  // rows of width * 3 bytes already
  }
  return out;
}

}  // namespace fervid
