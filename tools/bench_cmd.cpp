// fervid bench: frames/s of the frame stage (preprocessed batch -> VGG16 -> softmax) per batch
// size, timed back to back; then per-layer times from the backend's timeline (CUDA events on
// the GPU, a host clock on the CPU), the peak memory the backend held and, on a GPU, the rate of
// one large cuBLASLt GEMM of the same precision measured in the same run.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.h"
#include "fervid/backend.h"
#include "fervid/cuda_backend.h"
#include "fervid/error.h"
#include "fervid/model.h"
#include "fervid/pipeline.h"
#include "fervid/video.h"
#include "fervid/weights.h"

namespace fervid::cli {

namespace {

Weights bench_weights(const BenchOptions& o) {
  if (!o.weights.empty()) return Weights::load(o.weights);
  auto [spec, origin] = resolve_spec(o.spec);
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

void print_conv_layers(const nlohmann::json& report) {
  const auto& layers = report["conv_layers"];
  if (layers.empty()) return;
  std::cout << "\nconv3x3 per layer (--conv-impl " << report["conv_impl"].get<std::string>()
            << "): cudnn = cuDNN's fused conv+bias+ReLU (+ the pool kernel), fervid = fervid's "
               "kernel with the pool fused\n"
            << std::setw(10) << "layer" << std::setw(16) << "shape" << std::setw(6) << "pool"
            << std::setw(8) << "runs" << std::setw(11) << "cudnn ms" << std::setw(11) << "fervid ms"
            << std::setw(14) << "cudnn/fervid" << std::setw(8) << "batch\n";
  std::cout << std::setprecision(3);
  for (const auto& l : layers) {
    const std::string shape = std::to_string(l["size"].get<int>()) + "^2 " +
                              std::to_string(l["in_channels"].get<int>()) + ">" +
                              std::to_string(l["out_channels"].get<int>());
    std::cout << std::setw(10) << l["layer"].get<std::string>() << std::setw(16) << shape
              << std::setw(6) << (l["pool"].get<bool>() ? "yes" : "") << std::setw(8)
              << l["impl"].get<std::string>();
    if (l.contains("timed_batch"))
      std::cout << std::setw(11) << l["cudnn_ms"].get<double>() << std::setw(11)
                << l["fervid_ms"].get<double>() << std::setw(13)
                << l["cudnn_ms"].get<double>() / l["fervid_ms"].get<double>() << "x" << std::setw(7)
                << l["timed_batch"].get<int>();
    std::cout << "\n";
  }
}

}  // namespace

nlohmann::json graphs_json(const Backend& backend) {
  const ReplayStats r = backend.replay_stats();
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

void print_stage_shares(const nlohmann::json& results) {
  std::cout << "\nshare of each run's wall time (decode: the model waiting for frames; preprocess "
               "includes the upload of host frames; host: the model thread's own work; stages "
               "on streams of their own overlap, so shares may add to more than 100%)\n"
            << std::setw(6) << "batch" << std::setw(9) << "threads" << std::setw(9) << "decode"
            << std::setw(12) << "preprocess" << std::setw(13) << "frame stage" << std::setw(8)
            << "vote" << std::setw(8) << "host"
            << "  bottleneck\n";
  for (const auto& r : results) {
    const auto& st = r["stages"];
    std::cout << std::fixed << std::setprecision(0) << std::setw(6) << r["batch"].get<int>()
              << std::setw(9) << r["decode_threads"].get<int>();
    const std::pair<const char*, int> columns[] = {
        {"decode", 9}, {"preprocess", 12}, {"frame_stage", 13}, {"vote", 8}, {"host", 8}};
    for (const auto& [stage, width] : columns)
      std::cout << std::setw(width - 1) << 100 * st[stage].get<double>() << "%";
    std::string worst = st["bottleneck"].get<std::string>();
    std::replace(worst.begin(), worst.end(), '_', ' ');
    std::cout << "  " << worst << "\n";
  }
}

// The whole job on real inputs, once per batch size: files in, votes out. Frames/s and videos/s
// of the run, and where the time went (RunStats): a model thread starved of frames means the run
// is decode-bound, a decode thread blocked on a full queue means it is model-bound.
int run_end_to_end(const BenchOptions& o) {
  if (o.inputs.empty()) fail("bench --end-to-end: give the videos to classify");
  if (o.repeat < 1) fail("bench: --repeat must be at least 1");
  Weights w = bench_weights(o);
  auto backend = backend_for(o.device, o.precision, o.threads, o.conv_impl, o.cuda_graphs);
  const bool stage_streams = on_off("--stage-streams", o.stage_streams);
  std::vector<InputItem> items;
  const std::vector<InputItem> once = expand_inputs(o.inputs);
  for (int r = 0; r < o.repeat; ++r) items.insert(items.end(), once.begin(), once.end());
  const int max_batch = *std::max_element(o.batches.begin(), o.batches.end());
  Model model(w, *backend, max_batch);
  nlohmann::json report{{"mode", "end-to-end"},
                        {"device", backend->name()},
                        {"device_name", backend->device_name()},
                        {"precision", backend->precision()},
                        {"model", model.spec().name},
                        {"videos", items.size()},
                        {"results", nlohmann::json::array()}};
  const CropSpec crop = CropSpec::parse(o.crop.empty() ? model.spec().crop : o.crop);
  const DecoderKind decoder = decoder_for(o.decoder, *backend, crop, items, o.json);
  report["decoder"] = decoder == DecoderKind::Nvdec ? "nvdec" : "cpu";
  for (int b : o.batches)
    for (int t : o.decode_threads) {
      ClassifyOptions opt;
      opt.batch = b;
      opt.sampling = {o.stride, o.max_frames};
      opt.crop = crop;
      opt.vote = model.spec().vote;
      opt.decoder = decoder;
      opt.decode_threads = t;
      opt.stage_times = !o.decode_only;
      opt.stage_streams = stage_streams;
      int failed = 0;
      Classifier classifier(model, opt);
      // The decode ceiling first: the same decoders and threads, the frames dropped.
      const RunStats d = classifier.decode_only(items);
      RunStats s = d;
      if (!o.decode_only)
        s = classifier.run(items, [&](const VideoResult& r) { failed += !r.ok(); });
      else
        failed = d.videos_failed;
      report["results"].push_back({{"batch", b},
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
      if (s.staged) report["results"].back()["stages"] = stage_shares(s);
    }
  report["peak_memory_mib"] = double(backend->peak_memory_bytes()) / double(1 << 20);
  report["cuda_graphs"] = graphs_json(*backend);
  report["stage_streams"] = stage_streams;
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  report["peak_host_rss_mib"] = double(ru.ru_maxrss) / 1024.0;
  if (o.json) {
    std::cout << report.dump(2) << "\n";
    return kExitOk;
  }
  std::cout << "fervid bench --end-to-end: " << items.size() << " videos, "
            << report["model"].get<std::string>() << " on " << report["device"].get<std::string>()
            << " [" << report["device_name"].get<std::string>() << "], "
            << report["precision"].get<std::string>() << "; decoder "
            << report["decoder"].get<std::string>() << " (FFmpeg)\n"
            << std::setw(6) << "batch" << std::setw(9) << "threads" << std::setw(10) << "frames"
            << std::setw(10) << "seconds" << std::setw(11) << "frames/s" << std::setw(10)
            << "videos/s" << std::setw(10) << "starved" << std::setw(10) << "blocked"
            << std::setw(13) << "decode-only" << std::setw(8) << "of it"
            << "\n  (starved: the model waiting for decode; blocked: decode waiting for the model; "
               "decode-only: frames/s of the decode threads alone, this run's ceiling)\n";
  for (const auto& r : report["results"])
    std::cout << std::fixed << std::setprecision(2) << std::setw(6) << r["batch"].get<int>()
              << std::setw(9) << r["decode_threads"].get<int>() << std::setw(10)
              << r["frames"].get<int64_t>() << std::setw(10) << r["seconds"].get<double>()
              << std::setw(11) << std::setprecision(1) << r["frames_per_s"].get<double>()
              << std::setw(10) << std::setprecision(2) << r["videos_per_s"].get<double>()
              << std::setw(9) << std::setprecision(0) << 100 * r["model_starved"].get<double>()
              << "%" << std::setw(9) << 100 * r["decode_blocked"].get<double>() << "%"
              << std::setw(13) << std::setprecision(1)
              << r["decode_only_frames_per_s"].get<double>() << std::setw(7) << std::setprecision(0)
              << 100 * r["frames_per_s"].get<double>() / r["decode_only_frames_per_s"].get<double>()
              << "%\n";
  if (!o.decode_only) print_stage_shares(report["results"]);
  std::cout << std::setprecision(1) << "peak memory: backend "
            << report["peak_memory_mib"].get<double>() << " MiB, host RSS "
            << report["peak_host_rss_mib"].get<double>() << " MiB\n";
  if (backend->device() == Device::Cuda)
    std::cout << graphs_text(*backend) << "; stage streams " << o.stage_streams << "\n";
  return kExitOk;
}

int run_bench(const BenchOptions& o) {
  if (o.end_to_end) return run_end_to_end(o);
  if (!o.inputs.empty()) fail("bench: inputs are for --end-to-end");
  if (o.batches.empty()) fail("bench: give at least one --batch");
  for (int b : o.batches)
    if (b < 1) fail("bench: batch sizes must be at least 1");
  if (o.iters < 1) fail("bench: --iters must be at least 1");
  Weights w = bench_weights(o);
  auto backend = backend_for(o.device, o.precision, o.threads, o.conv_impl, o.cuda_graphs);
  const int max_batch = *std::max_element(o.batches.begin(), o.batches.end());
  Model model(w, *backend, max_batch);
  const ModelSpec& spec = model.spec();

  // A deterministic synthetic frame per batch slot, preprocessed once: the frame stage starts
  // from a ready input batch. The first forward also plans every layer (cuDNN's search).
  const int S = spec.input_size;
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

  using Clock = std::chrono::steady_clock;
  const double gflop = 2.0 * spec.macs_per_frame() / 1e9;
  nlohmann::json report{
      {"device", backend->name()},         {"device_name", backend->device_name()},
      {"precision", backend->precision()}, {"model", spec.name},
      {"gflop_per_frame", gflop},          {"results", nlohmann::json::array()}};
  auto timeline = backend->make_timeline();
  for (int b : o.batches) {
    model.forward_preprocessed(b);  // plans this batch size
    model.forward_preprocessed(b);  // captures its graph (CUDA, --cuda-graphs on)
    for (int i = 0; i < o.warmup; ++i) model.forward_preprocessed(b);
    backend->synchronize();
    // Throughput: back-to-back batches, one synchronise at the end.
    auto t0 = Clock::now();
    for (int i = 0; i < o.iters; ++i) model.forward_preprocessed(b);
    backend->synchronize();
    const double total_ms =
        std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / o.iters;
    // Per layer: device time stamps between the layers (CUDA events on the GPU).
    std::vector<std::string> order;
    std::vector<double> layer_ms;
    for (int i = 0; i < o.iters; ++i) {
      order.clear();
      timeline->mark();
      model.forward_preprocessed(b, [&](const std::string& name) {
        order.push_back(name);
        timeline->mark();
      });
      std::vector<double> ms = timeline->take_ms();
      layer_ms.resize(ms.size(), 0.0);
      for (size_t k = 0; k < ms.size(); ++k) layer_ms[k] += ms[k];
    }
    nlohmann::json layers = nlohmann::json::array();
    for (size_t k = 0; k < order.size() && k < layer_ms.size(); ++k)
      layers.push_back({{"layer", order[k]}, {"ms", layer_ms[k] / o.iters}});
    report["results"].push_back({{"batch", b},
                                 {"ms_per_batch", total_ms},
                                 {"frames_per_s", 1000.0 * b / total_ms},
                                 {"tflop_per_s", gflop * b / total_ms},
                                 {"layers", layers}});
  }
  // Which conv3x3 ran each layer; with --conv-impl auto, both implementations' times.
  const std::vector<ConvPlanInfo> plans = backend->conv_plans();
  report["conv_impl"] = o.conv_impl;
  report["conv_layers"] = nlohmann::json::array();
  int size = spec.input_size;
  for (const ConvLayer& l : spec.conv_layers()) {
    for (const ConvPlanInfo& p : plans) {
      if (p.height != size || p.width != size || p.in_channels != l.in_channels ||
          p.out_channels != l.out_channels || p.pool != l.pool)
        continue;
      nlohmann::json j{{"layer", l.name},
                       {"size", size},
                       {"in_channels", l.in_channels},
                       {"out_channels", l.out_channels},
                       {"pool", l.pool},
                       {"impl", p.impl}};
      if (p.timed_batch > 0) {
        j["timed_batch"] = p.timed_batch;
        j["cudnn_ms"] = p.cudnn_ms;
        j["fervid_ms"] = p.fervid_ms;
      }
      report["conv_layers"].push_back(j);
      break;
    }
    if (l.pool) size /= 2;
  }
  report["peak_memory_mib"] = double(backend->peak_memory_bytes()) / double(1 << 20);
  report["cuda_graphs"] = graphs_json(*backend);
  if (backend->device() == Device::Cuda && o.gemm_size > 0) {
    // The reference rate: one large GEMM in the same precision, in the same run.
    const double tflops = cuda_gemm_tflops(backend->precision(), o.gemm_size, 20);
    report["gemm"] = {{"size", o.gemm_size}, {"tflop_per_s", tflops}};
    for (auto& r : report["results"])
      r["fraction_of_gemm"] = r["tflop_per_s"].get<double>() / tflops;
  }
  if (o.json) {
    std::cout << report.dump(2) << "\n";
    return kExitOk;
  }
  std::cout << "fervid bench: " << spec.name << " on " << report["device"].get<std::string>()
            << " [" << report["device_name"].get<std::string>() << "], "
            << report["precision"].get<std::string>() << ", " << std::fixed << std::setprecision(2)
            << gflop << " GFLOP per frame, " << o.iters << " iterations\n";
  if (report.contains("gemm"))
    std::cout << "reference: " << report["precision"].get<std::string>() << " GEMM " << o.gemm_size
              << "^3 through cuBLASLt: " << std::setprecision(1)
              << report["gemm"]["tflop_per_s"].get<double>() << " TFLOP/s\n";
  std::cout << "peak memory held by the backend: " << std::setprecision(1)
            << report["peak_memory_mib"].get<double>() << " MiB\n";
  if (backend->device() == Device::Cuda)
    std::cout << graphs_text(*backend)
              << " (ms/batch and frames/s; the per-layer times run op by op)\n";
  std::cout << std::setprecision(2) << std::setw(6) << "batch" << std::setw(12) << "ms/batch"
            << std::setw(12) << "frames/s" << std::setw(10) << "TFLOP/s";
  if (report.contains("gemm")) std::cout << std::setw(12) << "of GEMM";
  std::cout << "\n";
  for (const auto& r : report["results"]) {
    std::cout << std::setw(6) << r["batch"].get<int>() << std::setw(12)
              << r["ms_per_batch"].get<double>() << std::setw(12) << std::setprecision(1)
              << r["frames_per_s"].get<double>() << std::setw(10) << std::setprecision(3)
              << r["tflop_per_s"].get<double>();
    if (r.contains("fraction_of_gemm"))
      std::cout << std::setw(11) << std::setprecision(1)
                << 100.0 * r["fraction_of_gemm"].get<double>() << "%";
    std::cout << std::setprecision(2) << "\n";
  }
  std::cout << "\nper layer, ms per batch:\n" << std::setw(10) << "layer";
  for (const auto& r : report["results"])
    std::cout << std::setw(11) << ("b=" + std::to_string(r["batch"].get<int>()));
  std::cout << "\n" << std::setprecision(3);
  const auto& first = report["results"][0]["layers"];
  for (size_t i = 0; i < first.size(); ++i) {
    std::cout << std::setw(10) << first[i]["layer"].get<std::string>();
    for (const auto& r : report["results"])
      std::cout << std::setw(11)
                << (i < r["layers"].size() ? r["layers"][i]["ms"].get<double>() : 0.0);
    std::cout << "\n";
  }
  print_conv_layers(report);
  return kExitOk;
}

}  // namespace fervid::cli
