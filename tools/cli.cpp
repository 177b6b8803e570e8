#include "cli.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "cards.h"
#include "fervid/backend.h"
#include "fervid/cuda_probe.h"
#include "fervid/error.h"
#include "fervid/pipeline.h"
#include "fervid/weights.h"
#include "output.h"

namespace fervid::cli {

std::pair<ModelSpec, std::string> resolve_spec(const std::string& name_or_path) {
  if (name_or_path == "ravdess-vgg16")
    return {ModelSpec::from_json(nlohmann::json::parse(kRavdessCard), "built-in ravdess-vgg16"),
            "built-in card ravdess-vgg16"};
  if (name_or_path == "torchvision-vgg16")
    return {
        ModelSpec::from_json(nlohmann::json::parse(kTorchvisionCard), "built-in torchvision-vgg16"),
        "built-in card torchvision-vgg16"};
  return {ModelSpec::load_card(name_or_path), name_or_path};
}

namespace {

constexpr const char* kConvImplHelp =
    "CUDA conv3x3: cudnn | fervid (fervid's kernel, fp16/bf16, pool fused) | auto (the faster "
    "per layer, timed once)";

struct ClassifyArgs {
  std::vector<std::string> inputs;
  std::string weights, spec, device = "auto", precision, conv_impl = "auto", crop, vote,
                             format = "table", output, frames;
  int batch = 8, stride = 1, max_frames = 0, threads = 0;
  bool logits = false, quiet = false;
};

Weights load_weights(const std::string& path, const std::string& spec) {
  if (spec.empty()) return Weights::load(path);
  auto [s, origin] = resolve_spec(spec);
  return Weights::load(path, s, origin);
}

int classify(const ClassifyArgs& a) {
  if (a.batch < 1) fail("--batch must be at least 1");
  if (a.stride < 1) fail("--stride must be at least 1");
  if (a.max_frames < 0) fail("--max-frames must be 0 (no cap) or more");
  if (a.logits && a.frames.empty()) fail("--logits adds columns to --frames FILE; give --frames");
  const Format format = parse_format(a.format);
  Weights weights = load_weights(a.weights, a.spec);
  const ModelSpec& spec = weights.spec;
  ClassifyOptions opt;
  opt.batch = a.batch;
  opt.sampling = {a.stride, a.max_frames};
  opt.crop = CropSpec::parse(a.crop.empty() ? spec.crop : a.crop);
  opt.vote = a.vote.empty() ? spec.vote : parse_vote(a.vote);
  opt.keep_frames = !a.frames.empty();
  opt.keep_logits = a.logits;

  auto backend = make_backend({a.device, a.precision, a.threads, a.conv_impl});
  Model model(weights, *backend, a.batch);
  auto items = expand_inputs(a.inputs);

  std::optional<AtomicFile> out_file, frames_file;
  if (!a.output.empty()) out_file.emplace(a.output);
  if (!a.frames.empty()) frames_file.emplace(a.frames);
  std::ostream& out = out_file ? out_file->stream() : std::cout;
  VideoWriter videos(out, format, spec.classes);
  std::optional<FrameWriter> frame_rows;
  if (frames_file) {
    frame_rows.emplace(frames_file->stream(), spec.classes, a.logits);
    frame_rows->header();
  }
  videos.header();
  Classifier classifier(model, opt);
  RunStats stats = classifier.run(items, [&](const VideoResult& r) {
    videos.row(r);
    if (frame_rows) frame_rows->rows(r);
    if (!r.ok()) std::cerr << "fervid: " << r.error << "\n";
  });
  if (out_file) out_file->commit();
  if (frames_file) frames_file->commit();
  if (!a.quiet) {
    std::ostringstream s;
    s << "fervid: " << (stats.videos_ok + stats.videos_failed) << " videos (" << stats.videos_failed
      << " failed), " << stats.frames << " frames in " << std::fixed << std::setprecision(2)
      << stats.seconds << " s (" << std::setprecision(1)
      << (stats.seconds > 0 ? stats.frames / stats.seconds : 0.0) << " frames/s) on "
      << backend->name() << ", vote " << vote_name(opt.vote) << "\n";
    std::cerr << s.str();
  }
  return stats.videos_failed > 0 ? kExitSomeFailed : kExitOk;
}

int make_weights_cmd(uint64_t seed, const std::string& out, const std::string& spec_name,
                     const std::string& dtype) {
  StDType dt;
  if (dtype == "f32") {
    dt = StDType::F32;
  } else if (dtype == "f16") {
    dt = StDType::F16;
  } else if (dtype == "bf16") {
    dt = StDType::BF16;
  } else {
    fail("--dtype " + dtype + ": expected f32, f16 or bf16");
  }
  auto [spec, origin] = resolve_spec(spec_name);
  make_weights(spec, seed, dt, out);
  std::cout << "wrote " << out << ": " << spec.name << ", " << spec.parameter_count()
            << " parameters, " << dtype << ", seed " << seed << ", untrained\n";
  return kExitOk;
}

std::string join_config(const std::vector<int>& config) {
  std::string s;
  for (size_t i = 0; i < config.size(); ++i)
    s += (i ? "," : "") +
         (config[i] == ModelSpec::kPool ? std::string("M") : std::to_string(config[i]));
  return s;
}

void print_spec(const ModelSpec& s, const std::string& origin) {
  std::cout << "spec: " << s.name << " (" << origin << ")\n"
            << "  config: " << join_config(s.config) << "\n"
            << "  input: " << s.input_size << "x" << s.input_size << ", head " << head_name(s.head)
            << ", dense";
  for (const auto& l : s.dense_layers())
    std::cout << " " << l.in_features << "->" << l.out_features;
  std::cout << "\n  classes (" << s.num_classes() << "):";
  for (const auto& c : s.classes) std::cout << " " << c;
  const auto& p = s.preprocess;
  std::cout << "\n  preprocess: " << (p.bgr ? "bgr" : "rgb") << ", scale " << p.scale << ", mean ["
            << p.mean[0] << ", " << p.mean[1] << ", " << p.mean[2] << "], std [" << p.std[0] << ", "
            << p.std[1] << ", " << p.std[2] << "]\n"
            << "  vote: " << vote_name(s.vote) << ", crop: " << s.crop << "\n"
            << "  parameters: " << s.parameter_count() << ", " << std::fixed << std::setprecision(2)
            << s.macs_per_frame() / 1e9 << " GMAC per frame\n"
            << std::defaultfloat;
}

int inspect(const std::string& path, const std::string& spec_name) {
  SafetensorsFile file = SafetensorsFile::open(path);
  std::cout << "file: " << path << " (" << file.file_size() << " bytes)\n";
  std::optional<ModelSpec> spec;
  std::string origin;
  if (!spec_name.empty()) {
    auto r = resolve_spec(spec_name);
    spec = r.first;
    origin = r.second;
  } else if ((spec = spec_from_metadata(file))) {
    origin = "from the file's metadata";
  }
  if (spec) {
    print_spec(*spec, origin);
  } else {
    std::cout << "spec: none in the metadata (give --spec to check against a card)\n";
  }
  std::cout << "metadata:";
  size_t shown = 0;
  for (const auto& [k, v] : file.metadata())
    if (k != kSpecMetadataKey) {
      std::cout << "\n  " << k << ": " << v;
      ++shown;
    }
  std::cout << (shown ? "\n" : " none\n");
  int64_t params = 0;
  std::cout << "tensors (" << file.tensors().size() << "):\n";
  for (const auto& t : file.tensors()) {
    std::ostringstream shape;
    shape << "[";
    for (size_t i = 0; i < t.shape.size(); ++i) shape << (i ? "," : "") << t.shape[i];
    shape << "]";
    std::cout << "  " << std::left << std::setw(24) << t.name << " " << std::setw(5) << t.dtype_text
              << " " << shape.str() << "\n";
    params += t.numel();
  }
  std::cout << std::right << "parameters in file: " << params << "\n";
  if (!spec) {
    std::cout << "matches spec: unknown (no spec)\n";
    return kExitSomeFailed;
  }
  auto problems = check_against_spec(file, *spec);
  if (problems.empty()) {
    std::cout << "matches spec: yes\n";
    return kExitOk;
  }
  std::cout << "matches spec: no\n";
  for (const auto& p : problems) std::cout << "  " << p << "\n";
  return kExitSomeFailed;
}

}  // namespace

int run(int argc, char** argv) {
  CLI::App app{"fervid: facial emotion recognition in video, VGG16 per frame + a per-video vote"};
  app.set_version_flag("--version", std::string("fervid ") + FERVID_VERSION +
                                        (cuda_built() ? " (CUDA build)" : " (CPU-only build)"));
  app.require_subcommand(1);

  ClassifyArgs ca;
  auto* classify_cmd = app.add_subcommand("classify", "Classify videos, image folders or images");
  classify_cmd->add_option("inputs", ca.inputs, "Videos, image folders, images or folders to walk")
      ->required();
  classify_cmd->add_option("--weights", ca.weights, "Weights (safetensors)")->required();
  classify_cmd->add_option("--spec", ca.spec,
                           "Model card overriding the file's metadata: ravdess-vgg16, "
                           "torchvision-vgg16 or a JSON file");
  classify_cmd->add_option("--device", ca.device, "auto | cpu | cuda")->capture_default_str();
  classify_cmd->add_option("--precision", ca.precision, "fp32 | tf32 | fp16 | bf16 (CPU: fp32)");
  classify_cmd->add_option("--conv-impl", ca.conv_impl, kConvImplHelp)->capture_default_str();
  classify_cmd->add_option("--batch", ca.batch, "Frames per batch")->capture_default_str();
  classify_cmd->add_option("--stride", ca.stride, "Keep every Nth frame")->capture_default_str();
  classify_cmd->add_option("--max-frames", ca.max_frames, "Frames per video at most (0: all)")
      ->capture_default_str();
  classify_cmd->add_option("--crop", ca.crop, "full | center | box=x,y,w,h (default: the card's)");
  classify_cmd->add_option("--vote", ca.vote, "majority | confidence (default: the card's)");
  classify_cmd->add_option("--format", ca.format, "table | csv | jsonl")->capture_default_str();
  classify_cmd->add_option("--output", ca.output, "Write the per-video rows to FILE");
  classify_cmd->add_option("--frames", ca.frames, "Write one CSV row per frame to FILE");
  classify_cmd->add_flag("--logits", ca.logits, "Add logit_<class> columns to --frames");
  classify_cmd->add_option("--threads", ca.threads, "CPU threads (0: all cores)");
  classify_cmd->add_flag("--quiet", ca.quiet, "No summary line on stderr");

  uint64_t seed = 0;
  std::string mw_out, mw_spec = "ravdess-vgg16", mw_dtype = "f32";
  auto* mw =
      app.add_subcommand("make-weights", "Write deterministic He-initialised (untrained) weights");
  mw->add_option("--seed", seed, "Random seed")->required();
  mw->add_option("--out", mw_out, "Output safetensors file")->required();
  mw->add_option("--spec", mw_spec, "ravdess-vgg16, torchvision-vgg16 or a JSON card")
      ->capture_default_str();
  mw->add_option("--dtype", mw_dtype, "f32 | f16 | bf16")->capture_default_str();

  std::string in_path, in_spec;
  auto* ins =
      app.add_subcommand("inspect", "Show a weights file's spec, tensors and whether they match");
  ins->add_option("file", in_path, "Weights (safetensors)")->required();
  ins->add_option("--spec", in_spec, "Check against this card instead of the file's metadata");

  BenchOptions bo;
  auto* bench = app.add_subcommand("bench", "Time the frame stage (frames/s, per-layer times)");
  bench->add_option("--device", bo.device, "cpu | cuda | auto")->capture_default_str();
  bench->add_option("--precision", bo.precision, "fp32 | tf32 | fp16 | bf16");
  bench->add_option("--conv-impl", bo.conv_impl, kConvImplHelp)->capture_default_str();
  bench->add_option("--weights", bo.weights, "Weights file (default: random weights for --spec)");
  bench->add_option("--spec", bo.spec, "Model card when no --weights")->capture_default_str();
  bench->add_option("--batch", bo.batches, "Batch sizes")->capture_default_str();
  bench->add_option("--iters", bo.iters, "Timed iterations per batch size")->capture_default_str();
  bench->add_option("--warmup", bo.warmup, "Untimed iterations first")->capture_default_str();
  bench->add_option("--threads", bo.threads, "CPU threads (0: all cores)");
  bench->add_option("--gemm-size", bo.gemm_size, "Reference GEMM size on a GPU (0: none)")
      ->capture_default_str();
  bench->add_flag("--json", bo.json, "Print one JSON object instead of tables");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? kExitOk : kExitFatal;
  }
  try {
    if (*classify_cmd) return classify(ca);
    if (*mw) return make_weights_cmd(seed, mw_out, mw_spec, mw_dtype);
    if (*ins) return inspect(in_path, in_spec);
    if (*bench) return run_bench(bo);
  } catch (const std::exception& e) {
    std::cerr << "fervid: error: " << e.what() << "\n";
    return kExitFatal;
  }
  return kExitFatal;
}

}  // namespace fervid::cli
