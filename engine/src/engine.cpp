// fervid::Engine (fervid/fervid.h): a backend, a model prepared on it, and classify runs.
#include <algorithm>
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>

#include "backend_factory.h"
#include "backends/cuda/cuda_probe.h"
#include "cards.h"
#include "classifier.h"
#include "fervid/fervid.h"
#include "model.h"
#include "run_clock.h"

namespace fervid {

BuildInfo build_info() { return {FERVID_VERSION, cuda_built()}; }

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

std::string graphs_failure(Backend& be) {
  GraphReplay* graphs = be.graph_replay();
  return graphs ? graphs->replay_stats().failure : "";
}

}  // namespace

struct Engine::Impl {
  ModelSpec spec;
  NoticeSink notify;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
};

Engine::Engine(Weights weights, const EngineOptions& options) : impl_(std::make_unique<Impl>()) {
  if (options.max_batch < 1) fail_option("--batch must be at least 1");
  impl_->spec = weights.spec;
  impl_->notify = options.notify ? options.notify : NoticeSink(print_notice);
  impl_->backend = make_backend(options.backend, impl_->notify);
  impl_->model = std::make_unique<Model>(weights, *impl_->backend, options.max_batch);
}

Engine::~Engine() = default;

const ModelSpec& Engine::spec() const { return impl_->spec; }
std::string Engine::backend_name() const { return impl_->backend->name(); }
std::string Engine::device_name() const { return impl_->backend->device_name(); }
Precision Engine::precision() const { return impl_->backend->precision(); }
int Engine::max_batch() const { return impl_->model->max_batch(); }
Model& Engine::model() { return *impl_->model; }
Backend& Engine::backend() { return *impl_->backend; }

ClassifyOptions Engine::default_options() const {
  ClassifyOptions o;
  o.batch = max_batch();
  o.crop = CropSpec::parse(impl_->spec.crop);
  o.vote = impl_->spec.vote;
  return o;
}

RunStats Engine::classify(const std::vector<InputItem>& inputs, const ClassifyOptions& options,
                          const OnVideo& on_video, const NoticeSink& notify, std::stop_token stop) {
  const NoticeSink& tell = notify ? notify : impl_->notify;
  Classifier classifier(*impl_->model, options);
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
  return Classifier(*impl_->model, options).decode_only(inputs);
}

FrameScores Engine::classify_frames(std::span<const ImageView> frames, const CropSpec& crop) {
  Model& model = *impl_->model;
  Backend& be = *impl_->backend;
  FrameScores s;
  s.frames = int(frames.size());
  s.classes = impl_->spec.num_classes();
  s.labels.resize(frames.size());
  s.probs.resize(frames.size() * size_t(s.classes));
  s.logits.resize(s.probs.size());
  std::vector<CropRect> crops;
  for (const ImageView& f : frames) {
    if (!f.data || f.width < 1 || f.height < 1 || f.stride < f.width * 3)
      fail_input("frame " + std::to_string(crops.size()) + ": not an 8-bit RGB image (" +
                 std::to_string(f.width) + "x" + std::to_string(f.height) + ", stride " +
                 std::to_string(f.stride) + ")");
    crops.push_back(crop.rect_for(f.width, f.height));
  }
  for (int first = 0; first < s.frames; first += model.max_batch()) {
    const int n = std::min(model.max_batch(), s.frames - first);
    model.forward(frames.subspan(first, n), std::span<const CropRect>(crops).subspan(first, n));
    const size_t row = size_t(first) * s.classes;
    be.copy_to_host(s.labels.data() + first, model.labels().slice(0, n));
    be.copy_to_host(s.probs.data() + row, model.probs().slice(0, n));
    be.copy_to_host(s.logits.data() + row, model.logits().slice(0, n));
  }
  for (size_t i = 0; i < s.labels.size(); ++i)
    if (!std::all_of(s.probs.begin() + i * s.classes, s.probs.begin() + (i + 1) * s.classes,
                     [](float p) { return std::isfinite(p); }))
      s.labels[i] = -1;
  return s;
}

}  // namespace fervid
