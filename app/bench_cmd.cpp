// fervid bench: the options of the benchmarks in bench/ (frame_stage.h), run, and their reports
// printed as tables (or as JSON with --json).
#include <unistd.h>

#include <algorithm>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.h"
#include "fervid/fervid.h"
#include "frame_stage.h"

namespace fervid::cli {

namespace {

// How the frame stage ran: "CUDA graphs: on, 3 captured, 120 replays", "CUDA graphs: off", or
// "CUDA graphs: off after a failed capture (<why>)".
std::string graphs_text(const nlohmann::json& g) {
  if (g.contains("failure"))
    return "CUDA graphs: off after a failed capture (" + g["failure"].get<std::string>() + ")";
  if (!g["enabled"].get<bool>()) return "CUDA graphs: off";
  return "CUDA graphs: on, " + std::to_string(g["graphs"].get<int>()) + " captured, " +
         std::to_string(g["replays"].get<int64_t>()) + " replays";
}

// Each layer as the backend prepared it: what runs it and why; with timing (--conv-impl auto on
// CUDA), cuDNN's time (+ the pool kernel) against fervid's kernel at the batch it was timed at.
void print_layers(const nlohmann::json& report) {
  const auto& layers = report["layers"];
  if (layers.empty()) return;
  std::cout << "\nlayers as prepared (--conv-impl " << report["conv_impl"].get<std::string>()
            << ")\n"
            << std::setw(10) << "layer" << std::setw(16) << "shape" << std::setw(6) << "pool"
            << std::setw(20) << "runs on" << std::setw(11) << "cudnn ms" << std::setw(11)
            << "fervid ms" << std::setw(8) << "batch"
            << "  why\n";
  std::cout << std::setprecision(3);
  for (const auto& l : layers) {
    const bool conv = l.contains("in_channels");
    const std::string shape = conv ? std::to_string(l["size"].get<int>()) + "^2 " +
                                         std::to_string(l["in_channels"].get<int>()) + ">" +
                                         std::to_string(l["out_channels"].get<int>())
                                   : "";
    std::cout << std::setw(10) << l["layer"].get<std::string>() << std::setw(16) << shape
              << std::setw(6) << (conv && l["pool"].get<bool>() ? "yes" : "") << std::setw(20)
              << l["impl"].get<std::string>();
    if (l.contains("timed_batch"))
      std::cout << std::setw(11) << l["cudnn_ms"].get<double>() << std::setw(11)
                << l["fervid_ms"].get<double>() << std::setw(8) << l["timed_batch"].get<int>();
    else
      std::cout << std::setw(30) << "";
    std::cout << "  " << l["why"].get<std::string>() << "\n";
  }
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

void print_end_to_end(const bench::Report& r, const BenchOptions& o) {
  const nlohmann::json& report = r.json;
  std::cout << "fervid bench --end-to-end: " << report["videos"].get<size_t>() << " videos, "
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
  if (r.graph_replay)
    std::cout << graphs_text(report["cuda_graphs"]) << "; stage streams " << o.stage_streams
              << "\n";
}

void print_frame_stage(const bench::Report& r, const BenchOptions& o) {
  const nlohmann::json& report = r.json;
  std::cout << "fervid bench: " << report["model"].get<std::string>() << " on "
            << report["device"].get<std::string>() << " ["
            << report["device_name"].get<std::string>() << "], "
            << report["precision"].get<std::string>() << ", " << std::fixed << std::setprecision(2)
            << report["gflop_per_frame"].get<double>() << " GFLOP per frame, " << o.iters
            << " iterations\n";
  if (report.contains("gemm"))
    std::cout << "reference: " << report["precision"].get<std::string>() << " GEMM " << o.gemm_size
              << "^3 through cuBLASLt: " << std::setprecision(1)
              << report["gemm"]["tflop_per_s"].get<double>() << " TFLOP/s\n";
  std::cout << "peak memory held by the backend: " << std::setprecision(1)
            << report["peak_memory_mib"].get<double>() << " MiB\n";
  if (r.graph_replay)
    std::cout << graphs_text(report["cuda_graphs"])
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
  print_layers(report);
}

// The face detector's line per batch size: frames/s and its time as a share of the frame stage's.
void print_detector(const nlohmann::json& d) {
  std::cout << "\nface detector " << d["model"].get<std::string>() << ":\n";
  for (const auto& r : d["results"]) {
    std::cout << "  batch " << std::setw(4) << r["batch"].get<int>() << ": " << std::fixed
              << std::setprecision(1) << std::setw(8) << r["frames_per_s"].get<double>()
              << " frames/s";
    if (r.contains("share_of_frame_stage"))
      std::cout << ", " << std::setprecision(2) << 100 * r["share_of_frame_stage"].get<double>()
                << " % of the frame stage's time";
    std::cout << "\n";
  }
}

Weights bench_weights(const BenchOptions& o) {
  if (!o.weights.empty()) return load_weights(o.weights);
  Weights w = bench::random_weights(o.spec);
  // int8 on random weights: made-up scales (1/255 for each input fervid calibrate would scale),
  // which time the same as calibrated ones; the answers mean nothing, as the weights' do not.
  if (o.precision == "int8")
    for (const std::string& layer : int8_layers(w.spec)) w.spec.int8_scales[layer] = 1.0f / 255;
  return w;
}

// bench's flags by key (its largest batch is the engine's), typed by plan_of as classify's are.
Plan bench_plan(const BenchOptions& o) {
  OptionValues v;
  v.device = o.device;
  v.precision = o.precision;
  v.conv_impl = o.conv_impl;
  v.cuda_graphs = parse_on_off("cuda_graphs", o.cuda_graphs);
  v.threads = o.threads;
  v.batch = o.batches.empty() ? 1 : *std::max_element(o.batches.begin(), o.batches.end());
  v.stride = o.stride;
  v.max_frames = o.max_frames;
  v.crop = o.crop;
  v.decoder = o.decoder;
  v.stage_streams = parse_on_off("stage_streams", o.stage_streams);
  return plan_of(v);
}

EngineOptions bench_engine(const Plan& plan) {
  EngineOptions e;
  plan.fill(e);
  return e;
}

int run_end_to_end(const BenchOptions& o) {
  if (o.inputs.empty()) fail("bench --end-to-end: give the videos to classify");
  if (o.repeat < 1) fail("bench: --repeat must be at least 1");
  const Plan plan = bench_plan(o);
  bench::EndToEndOptions e;
  e.batches = o.batches;
  e.decode_threads = o.decode_threads;
  e.decode_only = o.decode_only;
  Engine engine(bench_weights(o), bench_engine(plan));
  std::vector<InputItem> items;
  const std::vector<InputItem> once = expand_inputs(o.inputs);
  for (const InputItem& i : once)
    if (i.kind == InputKind::Invalid) fail_option("bench --end-to-end: " + i.path + ": " + i.error);
  for (int r = 0; r < o.repeat; ++r) items.insert(items.end(), once.begin(), once.end());
  e.run = plan.for_card(engine.spec());
  // On a terminal, a line rewritten as each run begins (a log gets the results only).
  const bool terminal = isatty(STDERR_FILENO) == 1;
  if (terminal)
    e.progress = [&](const std::string& what) {
      std::cerr << "\r\033[Kbench: " << what << ": " << items.size() << " inputs, decode alone"
                << (o.decode_only ? "" : " then the whole job") << std::flush;
    };
  const bench::Report r = bench::end_to_end(engine, items, e);
  if (terminal) std::cerr << "\r\033[K" << std::flush;
  // A run whose videos failed timed something else than it says: its figures are printed, the
  // failures said, and the exit code is 1 (none decoded at all: an error, no figures).
  int64_t failed = 0, frames = 0;
  for (const auto& res : r.json["results"]) {
    failed += res.value("videos_failed", int64_t(0));
    frames += res.value("frames", int64_t(0));
  }
  if (frames == 0)
    fail(
        "bench --end-to-end: no frame could be decoded from the inputs (classify them to see why)");
  if (!r.notice.empty() && !o.json) std::cerr << "fervid: notice: " << r.notice << "\n";
  if (o.json) {
    std::cout << r.json.dump(2) << "\n";
  } else {
    print_end_to_end(r, o);
  }
  if (failed == 0) return kExitOk;
  std::cerr << "fervid: bench: " << failed
            << " video runs failed; the figures cover the rest (classify the inputs to see why)\n";
  return kExitSomeFailed;
}

}  // namespace

void check_bench_options(const BenchOptions& o) {
  if (o.batches.empty()) fail("bench: give at least one --batch");
  for (int b : o.batches)
    if (b < 1) fail("bench: batch sizes must be at least 1");
  if (!o.end_to_end && !o.inputs.empty()) fail("bench: inputs are for --end-to-end");
  if (o.end_to_end && !o.detector.empty())
    fail("bench: --detector times the detector against the frame stage, not with --end-to-end");
  if (!o.end_to_end && o.iters < 1) fail("bench: --iters must be at least 1");
  if (o.end_to_end && o.repeat < 1) fail("bench: --repeat must be at least 1");
  bench_plan(o);
}

int run_bench(const BenchOptions& o) {
  check_bench_options(o);
  if (o.end_to_end) return run_end_to_end(o);
  const Plan plan = bench_plan(o);
  bench::FrameStageOptions f;
  f.batches = o.batches;
  f.iters = o.iters;
  f.warmup = o.warmup;
  f.gemm_size = o.gemm_size;
  f.conv_impl = plan.backend.conv_impl;
  Engine engine(bench_weights(o), bench_engine(plan));
  bench::Report r = bench::frame_stage(engine, f);
  if (!o.detector.empty())
    r.json["detector"] = bench::detector_stage(engine, o.detector, f, r.json);
  if (o.json) {
    std::cout << r.json.dump(2) << "\n";
    return kExitOk;
  }
  print_frame_stage(r, o);
  if (r.json.contains("detector")) print_detector(r.json["detector"]);
  return kExitOk;
}

}  // namespace fervid::cli
