#include "frame_stage.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <random>

#include "backends/backend.h"
#include "backends/cpu/cpu_backend.h"
#include "classifier.h"
#include "face_detector.h"
#include "model.h"

namespace fervid::bench {

namespace {

nlohmann::json graphs_json(Backend& backend) {
  GraphReplay* graphs = backend.graph_replay();
  const ReplayStats r = graphs ? graphs->replay_stats() : ReplayStats{};
  nlohmann::json j{{"enabled", r.enabled}, {"graphs", r.graphs}, {"replays", r.replays}};
  if (!r.failure.empty()) j["failure"] = r.failure;
  return j;
}

// Where the model thread's wall time went, as shares of the run: waiting for decoded frames,
// the backend's time (device time on CUDA) in upload + preprocess, the frame stage and the vote,
// and the rest of its busy time (host work the device did not hide). The largest share is the
// stage that bounds the run.
nlohmann::json stage_shares(const RunStats& s) {
  const double device = s.preprocess_s + s.frame_stage_s + s.vote_s;
  nlohmann::json j{{"decode", s.model_starved_s / s.seconds},
                   {"preprocess", s.preprocess_s / s.seconds},
                   {"frame_stage", s.frame_stage_s / s.seconds},
                   {"vote", s.vote_s / s.seconds},
                   {"host", std::max(0.0, s.model_s - device) / s.seconds}};
  std::string worst;
  for (const auto& [stage, share] : j.items())
    if (worst.empty() || share.get<double>() > j[worst].get<double>()) worst = stage;
  j["bottleneck"] = worst;
  return j;
}

// A deterministic synthetic frame per batch slot, preprocessed once: the frame stage starts
// from a ready input batch. The first forward also plans every layer (cuDNN's search).
void prepare_input(Model& model) {
  const int S = model.spec().input_size, max_batch = model.max_batch();
  std::vector<std::vector<uint8_t>> pixels(max_batch, std::vector<uint8_t>(size_t(S) * S * 3));
  std::vector<ImageView> views;
  std::vector<CropRect> crops;
  uint32_t state = 12345;
  for (auto& p : pixels) {
    for (auto& v : p) v = uint8_t((state = state * 1664525u + 1013904223u) >> 24);
    views.push_back({p.data(), S, S, S * 3});
    crops.push_back({0, 0, S, S});
  }
  model.forward(views, crops);
}

// ms per batch of `b` frames, back to back with one synchronise at the end, and the per-layer
// times of the same batch run op by op with a time stamp after each layer.
nlohmann::json time_batch(Model& model, Timeline& timeline, int b, const FrameStageOptions& o) {
  using Clock = std::chrono::steady_clock;
  Backend& backend = model.backend();
  const double gflop = 2.0 * model.spec().macs_per_frame() / 1e9;
  model.frame_stage(b);  // plans this batch size
  model.frame_stage(b);  // captures its graph (CUDA, --cuda-graphs on)
  for (int i = 0; i < o.warmup; ++i) model.frame_stage(b);
  backend.synchronize();
  auto t0 = Clock::now();
  for (int i = 0; i < o.iters; ++i) model.frame_stage(b);
  backend.synchronize();
  const double total_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / o.iters;
  std::vector<std::string> order;
  std::vector<double> layer_ms;
  for (int i = 0; i < o.iters; ++i) {
    order.clear();
    timeline.mark();
    model.frame_stage(b, [&](const std::string& name) {
      order.push_back(name);
      timeline.mark();
    });
    std::vector<double> ms = timeline.take_ms();
    layer_ms.resize(ms.size(), 0.0);
    for (size_t k = 0; k < ms.size(); ++k) layer_ms[k] += ms[k];
  }
  nlohmann::json layers = nlohmann::json::array();
  for (size_t k = 0; k < order.size() && k < layer_ms.size(); ++k)
    layers.push_back({{"layer", order[k]}, {"ms", layer_ms[k] / o.iters}});
  return {{"batch", b},
          {"ms_per_batch", total_ms},
          {"frames_per_s", 1000.0 * b / total_ms},
          {"tflop_per_s", gflop * b / total_ms},
          {"layers", layers}};
}

// How each layer ran: its implementation and why; a conv layer's size and channels, and with
// timing (--conv-impl auto on CUDA) both implementations' times at the largest batch timed (the
// bench's largest batch runs last).
nlohmann::json layer_plans(const Model& model) {
  nlohmann::json out = nlohmann::json::array();
  const std::vector<LayerDesc>& layers = model.layers();
  for (size_t i = 0; i < layers.size(); ++i) {
    const LayerDesc& l = layers[i];
    const std::vector<LayerPlan> plans = model.plans(i);
    if (plans.empty()) continue;
    const LayerPlan* p = &plans.front();
    for (const LayerPlan& q : plans)
      if (q.timed_batch > p->timed_batch) p = &q;
    nlohmann::json j{{"layer", l.name}, {"impl", p->impl}, {"why", in_words(p->why, Wording::Cli)}};
    if (l.kind == LayerKind::Conv) {
      j["size"] = l.height;
      j["in_channels"] = l.in_channels;
      j["out_channels"] = l.out_channels;
      j["pool"] = l.pool;
    }
    if (p->timed_batch > 0) {
      j["timed_batch"] = p->timed_batch;
      j["cudnn_ms"] = p->cudnn_ms;
      j["fervid_ms"] = p->igemm_ms;
    }
    out.push_back(j);
  }
  return out;
}

}  // namespace

Weights random_weights(const std::string& card) {
  auto [spec, origin] = resolve_card(card);
  char path[] = "/tmp/fervid-bench-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) fail("bench: cannot create a temporary weights file in /tmp");
  close(fd);
  try {
    make_weights(spec, 1, StDType::F32, path);
    Weights w = Weights::load(path);
    unlink(path);
    return w;
  } catch (...) {
    unlink(path);
    throw;
  }
}

Report frame_stage(Engine& engine, const FrameStageOptions& o) {
  Model& model = engine.model();
  Backend& backend = engine.backend();
  const ModelSpec& spec = model.spec();
  prepare_input(model);
  Report report;
  report.graph_replay = backend.graph_replay() != nullptr;
  nlohmann::json& j = report.json;
  j = {{"device", backend.name()},
       {"device_name", backend.device_name()},
       {"precision", precision_name(backend.precision())},
       {"model", spec.name},
       {"gflop_per_frame", 2.0 * spec.macs_per_frame() / 1e9},
       {"results", nlohmann::json::array()}};
  Timelines* timelines = backend.timelines();
  if (!timelines) fail("bench: the " + backend.name() + " backend has no timeline");
  auto timeline = timelines->make_timeline();
  for (int b : o.batches) j["results"].push_back(time_batch(model, *timeline, b, o));
  j["conv_impl"] = conv_impl_name(o.conv_impl);
  j["layers"] = layer_plans(model);
  j["conv_layers"] = nlohmann::json::array();  // the conv entries of "layers" (as before)
  for (const auto& l : j["layers"])
    if (l.contains("in_channels")) j["conv_layers"].push_back(l);
  j["peak_memory_mib"] = double(backend.peak_memory_bytes()) / double(1 << 20);
  j["cuda_graphs"] = graphs_json(backend);
  ReferenceGemm* gemm = backend.reference_gemm();
  if (gemm && o.gemm_size > 0) {
    // The reference rate: one large GEMM in the same precision, in the same run.
    const double tflops = gemm->gemm_tflops(o.gemm_size, 20);
    j["gemm"] = {{"size", o.gemm_size}, {"tflop_per_s", tflops}};
    for (auto& r : j["results"]) r["fraction_of_gemm"] = r["tflop_per_s"].get<double>() / tflops;
  }
  return report;
}

nlohmann::json detector_stage(Engine& engine, const std::string& detector,
                              const FrameStageOptions& o, const nlohmann::json& frame_stage) {
  using Clock = std::chrono::steady_clock;
  Backend& backend = engine.backend();
  const DetectorWeights weights = load_detector(detector);
  const int most = *std::max_element(o.batches.begin(), o.batches.end());
  DetectorNet net(weights, backend, most);
  std::vector<float> host(size_t(net.input().numel()));
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> pixel(-1, 1);
  for (float& v : host) v = pixel(rng);
  backend.copy_from_host(net.input(), host.data());
  nlohmann::json j{{"model", weights.card.name}, {"results", nlohmann::json::array()}};
  // As it runs in fervid faces and --crop face: on one thread (fervid/faces.h).
  const cpu::ScopedOmpThreads one(1);
  for (int b : o.batches) {
    for (int i = 0; i < o.warmup + 1; ++i) net.detect(b);
    const auto t0 = Clock::now();
    for (int i = 0; i < o.iters; ++i) net.detect(b);
    const double ms =
        std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / o.iters;
    nlohmann::json r{{"batch", b}, {"ms_per_batch", ms}, {"frames_per_s", 1000.0 * b / ms}};
    for (const auto& f : frame_stage["results"])
      if (f["batch"] == b) r["share_of_frame_stage"] = ms / f["ms_per_batch"].get<double>();
    j["results"].push_back(r);
  }
  return j;
}

Report end_to_end(Engine& engine, const std::vector<InputItem>& items, const EndToEndOptions& o) {
  Model& model = engine.model();
  Backend& backend = engine.backend();
  Report report;
  report.graph_replay = backend.graph_replay() != nullptr;
  nlohmann::json& j = report.json;
  j = {{"mode", "end-to-end"},
       {"device", backend.name()},
       {"device_name", backend.device_name()},
       {"precision", precision_name(backend.precision())},
       {"model", model.spec().name},
       {"videos", items.size()},
       {"results", nlohmann::json::array()}};
  {
    ClassifyOptions opt = o.run;
    opt.batch = o.batches.front();
    const Classifier first(model, opt);
    j["decoder"] = first.decoder() == DecoderKind::Nvdec ? "nvdec" : "cpu";
    const bool videos = std::any_of(items.begin(), items.end(),
                                    [](const InputItem& i) { return i.kind == InputKind::Video; });
    if (videos) report.notice = in_words(first.decoder_notice(), Wording::Cli);
  }
  const size_t runs = o.batches.size() * o.decode_threads.size();
  size_t run = 0;
  for (int b : o.batches)
    for (int t : o.decode_threads) {
      if (o.progress)
        o.progress("batch " + std::to_string(b) + ", " +
                   (t > 0 ? std::to_string(t) : std::string("the default")) + " decode threads (" +
                   std::to_string(++run) + " of " + std::to_string(runs) + ")");
      ClassifyOptions opt = o.run;
      opt.batch = b;
      opt.decode_threads = t;
      opt.stage_times = !o.decode_only;
      int failed = 0;
      Classifier classifier(model, opt);
      // The decode ceiling first: the same decoders and threads, the frames dropped.
      const RunStats d = classifier.decode_only(items);
      RunStats s = d;
      if (!o.decode_only)
        s = classifier.run(items, [&](const VideoResult& r) { failed += !r.ok(); });
      else
        failed = d.videos_failed;
      j["results"].push_back({{"batch", b},
                              {"decode_threads", s.decode_threads},
                              {"seconds", s.seconds},
                              {"frames", s.frames},
                              {"videos_failed", failed},
                              {"frames_per_s", s.frames / s.seconds},
                              {"decode_only_frames_per_s", d.frames / d.seconds},
                              {"videos_per_s", double(items.size()) / s.seconds},
                              {"decode_busy", s.decode_s / s.seconds},
                              {"decode_blocked", s.decode_blocked_s / s.seconds},
                              {"model_busy", s.model_s / s.seconds},
                              {"model_starved", s.model_starved_s / s.seconds}});
      if (s.staged) j["results"].back()["stages"] = stage_shares(s);
    }
  j["peak_memory_mib"] = double(backend.peak_memory_bytes()) / double(1 << 20);
  j["cuda_graphs"] = graphs_json(backend);
  j["stage_streams"] = o.run.stage_streams;
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  j["peak_host_rss_mib"] = double(ru.ru_maxrss) / 1024.0;
  return report;
}

}  // namespace fervid::bench
