// fervid bench: frames/s of the frame stage (preprocessed batch -> VGG16 -> softmax) per batch
// size, with per-layer times. The timing hook synchronises the backend after every layer, so the
// per-layer sum is the frame stage as run layer by layer.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli.h"
#include "fervid/backend.h"
#include "fervid/error.h"
#include "fervid/model.h"
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

}  // namespace

int run_bench(const BenchOptions& o) {
  if (o.batches.empty()) fail("bench: give at least one --batch");
  for (int b : o.batches)
    if (b < 1) fail("bench: batch sizes must be at least 1");
  if (o.iters < 1) fail("bench: --iters must be at least 1");
  Weights w = bench_weights(o);
  auto backend = make_backend({o.device, o.precision, o.threads});
  const int max_batch = *std::max_element(o.batches.begin(), o.batches.end());
  Model model(w, *backend, max_batch);
  const ModelSpec& spec = model.spec();

  // A deterministic synthetic frame per batch slot, preprocessed once: the frame stage starts
  // from a ready input batch.
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
      {"device", backend->name()},
      {"precision", std::string(dtype_name(backend->compute_dtype()))},
      {"threads", o.threads > 0 ? o.threads : int(std::thread::hardware_concurrency())},
      {"model", spec.name},
      {"gflop_per_frame", gflop},
      {"results", nlohmann::json::array()}};
  for (int b : o.batches) {
    std::vector<std::string> order;
    std::map<std::string, double> layer_ms;
    Clock::time_point last;
    auto hook = [&](const std::string& name) {
      backend->synchronize();
      auto now = Clock::now();
      if (!layer_ms.count(name)) order.push_back(name);
      layer_ms[name] += std::chrono::duration<double, std::milli>(now - last).count();
      last = now;
    };
    for (int i = 0; i < o.warmup; ++i) model.forward_preprocessed(b);
    backend->synchronize();
    layer_ms.clear();
    order.clear();
    auto t0 = Clock::now();
    for (int i = 0; i < o.iters; ++i) {
      last = Clock::now();
      model.forward_preprocessed(b, hook);
    }
    backend->synchronize();
    double total_ms =
        std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / o.iters;
    nlohmann::json layers = nlohmann::json::array();
    for (const auto& n : order) layers.push_back({{"layer", n}, {"ms", layer_ms[n] / o.iters}});
    report["results"].push_back({{"batch", b},
                                 {"ms_per_batch", total_ms},
                                 {"frames_per_s", 1000.0 * b / total_ms},
                                 {"gflop_per_s", gflop * b * 1000.0 / total_ms},
                                 {"layers", layers}});
  }
  if (o.json) {
    std::cout << report.dump(2) << "\n";
    return kExitOk;
  }
  std::cout << "fervid bench: " << spec.name << " on " << report["device"].get<std::string>()
            << " (" << report["precision"].get<std::string>() << ", "
            << report["threads"].get<int>() << " threads), " << std::fixed << std::setprecision(2)
            << gflop << " GFLOP per frame, " << o.iters << " iterations\n";
  std::cout << std::setw(6) << "batch" << std::setw(14) << "ms/batch" << std::setw(12) << "frames/s"
            << std::setw(12) << "GFLOP/s"
            << "\n";
  for (const auto& r : report["results"])
    std::cout << std::setw(6) << r["batch"].get<int>() << std::setw(14)
              << r["ms_per_batch"].get<double>() << std::setw(12) << r["frames_per_s"].get<double>()
              << std::setw(12) << r["gflop_per_s"].get<double>() << "\n";
  std::cout << "\nper layer, ms per batch:\n" << std::setw(10) << "layer";
  for (const auto& r : report["results"])
    std::cout << std::setw(11) << ("b=" + std::to_string(r["batch"].get<int>()));
  std::cout << "\n";
  const auto& first = report["results"][0]["layers"];
  for (size_t i = 0; i < first.size(); ++i) {
    std::cout << std::setw(10) << first[i]["layer"].get<std::string>();
    for (const auto& r : report["results"])
      std::cout << std::setw(11) << r["layers"][i]["ms"].get<double>();
    std::cout << "\n";
  }
  return kExitOk;
}

}  // namespace fervid::cli
