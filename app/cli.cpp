#include "cli.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "fervid/fervid.h"
#include "output.h"
#include "rows.h"

namespace fervid::cli {

namespace {

constexpr const char* kConvImplHelp =
    "conv3x3: on CUDA cudnn | fervid (fervid's kernel, fp16/bf16, pool fused) | auto (the faster "
    "per layer, timed once); on the CPU onednn (oneDNN's direct convolution) | winograd (oneDNN's "
    "Winograd, fp32, AVX-512; direct where it has none) | blas (im2col + OpenBLAS, the reference) "
    "| auto (winograd in fp32; in bf16 onednn, on the f32 FMA units where the CPU's bf16 dot "
    "product "
    "is the slower; blas in a build without oneDNN)";

constexpr const char* kDecoderHelp =
    "Video decoding: nvdec (the GPU's decoders, frames stay on the device) | cpu (libavcodec) | "
    "auto (NVDEC with the CUDA backend when the driver has it)";
constexpr const char* kCudaGraphsHelp =
    "CUDA: run the frame stage of each batch size as a captured CUDA graph (on) or op by op (off)";
constexpr const char* kStageStreamsHelp =
    "CUDA: preprocess, frame stage and vote of the batches on streams of their own, overlapping "
    "(on), or in order on one stream (off)";
constexpr const char* kDecodeThreadsHelp =
    "Decode threads, each taking clip after clip (0: 1 with the CPU backend, 4 with NVDEC or for "
    "a GPU backend)";

// The options of classify's and eval's rows: explain writes its own files in --out instead, and
// refuses these (CLI11: "not expected") rather than taking them and doing nothing.
void add_row_options(CLI::App* cmd, ClassifyArgs& a) {
  cmd->add_option("--format", a.format,
                  "table | csv | jsonl (default: by --output's name, .csv or .jsonl; else the "
                  "table, for terminals)");
  cmd->add_option("--output", a.output,
                  "Write the per-video rows to FILE (.csv or .jsonl; - for standard output)");
  cmd->add_option("--frames", a.frames, "Write one row per frame to FILE (.csv or .jsonl)");
  cmd->add_flag("--logits", a.logits, "Add logit_<class> columns to --frames");
  cmd->add_option("--shard", a.shard,
                  "K/N: classify only the K-th of N shares of the sorted inputs (join the "
                  "outputs with `fervid merge`)");
  cmd->add_flag("--resume", a.resume,
                "Skip the videos already in --output (JSON Lines) and append the rest");
}

// The options classify, eval and explain share (explain without the rows' options).
void add_run_options(CLI::App* cmd, ClassifyArgs& a, bool rows = true) {
  cmd->add_option("inputs", a.inputs, "Videos, image folders, images or folders to walk")
      ->required();
  cmd->add_option("--weights", a.weights, "Weights (safetensors)")->required();
  cmd->add_option("--spec", a.spec,
                  "Model card overriding the file's metadata: ravdess-vgg16, torchvision-vgg16 or "
                  "a JSON file");
  cmd->add_option("--device", a.device, "auto | cpu | cuda")->capture_default_str();
  cmd->add_option("--precision", a.precision,
                  "fp32 | tf32 | fp16 | bf16 (CPU: fp32, bf16, or int8 with calibrated weights)");
  cmd->add_option("--conv-impl", a.conv_impl, kConvImplHelp)->capture_default_str();
  cmd->add_option("--cuda-graphs", a.cuda_graphs, kCudaGraphsHelp)->capture_default_str();
  cmd->add_option("--stage-streams", a.stage_streams, kStageStreamsHelp)->capture_default_str();
  cmd->add_option("--batch", a.batch, "Frames per batch")->capture_default_str();
  cmd->add_option("--stride", a.stride, "Keep every Nth frame")->capture_default_str();
  cmd->add_option("--max-frames", a.max_frames, "Frames per video at most (0: all)")
      ->capture_default_str();
  cmd->add_option("--fps", a.fps,
                  "Frame rate of image folders, for the per-frame time_s (videos have their own)")
      ->capture_default_str();
  cmd->add_option("--crop", a.crop,
                  "full | center | box=x,y,w,h | face[=DETECTOR] (each frame's largest tracked "
                  "face, turned so that its eyes lie level) | haar (OpenCV's cascade, one box per "
                  "video) | boxes=FILE (default: the card's)");
  cmd->add_option("--vote", a.vote, "majority | confidence (default: the card's)");
  if (rows) add_row_options(cmd, a);
  cmd->add_option("--threads", a.threads, "CPU threads (0: all cores)");
  cmd->add_option("--decoder", a.decoder, kDecoderHelp)->capture_default_str();
  cmd->add_option("--decode-threads", a.decode_threads, kDecodeThreadsHelp);
  cmd->add_flag("--quiet", a.quiet, "No progress, notices or summary line on stderr");
}

// eval's own: the labels, the RAVDESS filters, the metrics files.
void add_annotate_option(CLI::App* cmd, ClassifyArgs& a) {
  cmd->add_option("--annotate", a.annotate,
                  "Write each input's frames with the crop box, label and a bar per class as a "
                  "video: OUT.mp4 (one input) or a folder of <input>.mp4 (H.264, else MPEG-4; "
                  "not for videos --resume finds done)");
}

void add_eval_options(CLI::App* cmd, ClassifyArgs& a) {
  cmd->add_option("--labels", a.labels, "CSV of path,label for datasets without RAVDESS names");
  cmd->add_option("--actors", a.actors, "RAVDESS actors, e.g. 21-24 or 1,3,5-7");
  cmd->add_option("--emotions", a.emotions, "RAVDESS emotions, names or codes: happy,sad");
  cmd->add_option("--modality", a.modality, "video (video-only) | av (audio-video)");
  cmd->add_option("--channel", a.channel, "speech | song");
  cmd->add_option("--summary", a.summary, "Write the metrics as JSON to FILE");
  cmd->add_option("--confusion", a.confusion, "Write the confusion matrix as a PNG to FILE");
}

void add_bench_options(CLI::App* bench, BenchOptions& bo) {
  bench->add_option("--device", bo.device, "cpu | cuda | auto")->capture_default_str();
  bench->add_option("--precision", bo.precision, "fp32 | tf32 | fp16 | bf16 | int8 (CPU)");
  bench->add_option("--conv-impl", bo.conv_impl, kConvImplHelp)->capture_default_str();
  bench->add_option("--detector", bo.detector,
                    "Also time this face detector (docs/faces.md) and its share of the frame "
                    "stage");
  bench->add_option("--cuda-graphs", bo.cuda_graphs, kCudaGraphsHelp)->capture_default_str();
  bench
      ->add_option("--stage-streams", bo.stage_streams,
                   kStageStreamsHelp + std::string(" (--end-to-end)"))
      ->capture_default_str();
  bench->add_option("--weights", bo.weights, "Weights file (default: random weights for --spec)");
  bench->add_option("--spec", bo.spec, "Model card when no --weights")->capture_default_str();
  bench->add_option("--batch", bo.batches, "Batch sizes")->capture_default_str();
  bench->add_option("--iters", bo.iters, "Timed iterations per batch size")->capture_default_str();
  bench->add_option("--warmup", bo.warmup, "Untimed iterations first")->capture_default_str();
  bench->add_option("--threads", bo.threads, "CPU threads (0: all cores)");
  bench->add_option("--decoder", bo.decoder, std::string(kDecoderHelp) + " (--end-to-end)")
      ->capture_default_str();
  bench
      ->add_option("--decode-threads", bo.decode_threads,
                   "Decode thread counts to run (--end-to-end; 0: the decoder's default)")
      ->capture_default_str();
  bench->add_option("--gemm-size", bo.gemm_size, "Reference GEMM size on a GPU (0: none)")
      ->capture_default_str();
  bench->add_flag("--json", bo.json, "Print one JSON object instead of tables");
  bench->add_flag("--decode-only", bo.decode_only,
                  "--end-to-end: the decode threads alone (their frames dropped)");
  bench->add_flag("--end-to-end", bo.end_to_end,
                  "Time the whole job on INPUT... (decode to votes) instead of the frame stage");
  bench->add_option("inputs", bo.inputs, "Videos for --end-to-end");
  bench->add_option("--repeat", bo.repeat, "--end-to-end: the inputs this many times over")
      ->capture_default_str();
  bench->add_option("--stride", bo.stride, "--end-to-end: keep every Nth frame")
      ->capture_default_str();
  bench->add_option("--max-frames", bo.max_frames, "--end-to-end: frames per video at most")
      ->capture_default_str();
  bench->add_option("--crop", bo.crop, "--end-to-end: the crop (default: the card's)");
}

void add_explain_command(CLI::App& app, ExplainArgs& ea) {
  auto* explain = app.add_subcommand(
      "explain",
      "Grad-CAM: the frames behind each video's label as heat-map overlays, a probability "
      "timeline, the maps (.npy) and explain.json in --out");
  add_run_options(explain, ea.run, /*rows=*/false);
  explain->add_option("--out", ea.out, "Folder to write (made when missing)")->required();
  explain->add_option("--top", ea.top, "Frames with the largest probability of the class")
      ->capture_default_str();
  explain->add_option("--spaced", ea.spaced, "Frames evenly spaced over each video")
      ->capture_default_str();
  explain->add_option("--class", ea.cls, "The class to explain (default: each video's label)");
  explain->add_option("--size", ea.size, "Overlay side in pixels")->capture_default_str();
}

void add_merge_command(CLI::App& app, MergeArgs& ma) {
  auto* merge = app.add_subcommand(
      "merge", "Join the JSON Lines outputs of --shard runs (and score eval's, as eval does)");
  merge->add_option("shards", ma.inputs, "Shard outputs (JSON Lines)")->required();
  merge->add_option("--output", ma.output, "The joined output (- for standard output)")->required();
  merge->add_option("--summary", ma.summary, "Write the metrics of eval rows as JSON to FILE");
  merge->add_option("--confusion", ma.confusion,
                    "Write the confusion matrix of eval rows as a PNG to FILE");
  merge->add_flag("--quiet", ma.quiet, "No summary line on stderr");
}

void add_faces_command(CLI::App& app, FacesArgs& fa) {
  auto* faces = app.add_subcommand(
      "faces", "Find and track the faces of every sampled frame (a row per face per frame)");
  faces->add_option("inputs", fa.inputs, "Videos, image folders or images")->required();
  faces->add_option("--detector", fa.detector,
                    "The face detector's weights (default: $FERVID_DETECTOR, else "
                    "~/.cache/fervid/blazeface-short-range.safetensors, which tools/setup.sh "
                    "writes; docs/faces.md)");
  faces->add_option("--output", fa.output, "FILE.csv or FILE.jsonl (default: CSV on stdout)");
  faces->add_option("--format", fa.format, "csv | jsonl (default: from the file's name)");
  faces->add_option("--stride", fa.stride, "Keep every Nth frame")->capture_default_str();
  faces->add_option("--max-frames", fa.max_frames, "At most N frames per video (0: all)");
  faces->add_option("--batch", fa.batch, "Frames per detector batch")->capture_default_str();
  faces->add_option("--threads", fa.threads,
                    "The classifier's CPU threads (0: all cores; the detector runs on one)");
  faces->add_flag("--quiet", fa.quiet, "No summary lines on stderr");
  faces->add_option("--weights", fa.weights,
                    "Classify each face with these weights (safetensors; a row's label and "
                    "probabilities, a vote per track)");
  faces->add_option("--spec", fa.spec, "The weights' card, if they carry none");
  faces
      ->add_option("--device", fa.device,
                   "auto | cpu | cuda[:N]: the classifier's, and the detector's (on the GPU in "
                   "fp32 when the classifier is, or without --weights when this says so)")
      ->capture_default_str();
  faces->add_option("--precision", fa.precision, "The classifier's: fp32 | tf32 | fp16 | bf16");
  faces->add_option("--faces", fa.faces, "all | largest (one face a frame, RAVDESS style)")
      ->capture_default_str();
  faces->add_option("--margin", fa.margin,
                    "The aligned crop's margin, a share of the face's size (default: the card's "
                    "face_margin, 0.25 without one)");
  faces->add_option("--vote", fa.vote, "majority | confidence (default: the card's)");
  faces->add_option("--annotate", fa.annotate,
                    "Write each input's frames with the faces' boxes, track ids and labels (a "
                    "video file for one input, else a folder)");
  faces->add_option("--tracks", fa.tracks,
                    "Write a row per track and per video (FILE.csv or FILE.jsonl)");
  faces->add_option("--labels", fa.labels,
                    "Score each video's label (its main track's vote) against a labels CSV "
                    "(path,label) as eval does; --summary or --confusion alone: RAVDESS names");
  faces->add_option("--summary", fa.summary, "Write the metrics as JSON (eval's summary)");
  faces->add_option("--confusion", fa.confusion, "Draw the confusion matrix (PNG)");
  faces->add_option("--shard", fa.shard,
                    "K/N: only the K-th of N shares of the sorted inputs (as classify's)");
  faces->add_flag("--resume", fa.resume,
                  "Skip the videos already in --output (and --tracks), JSON Lines, and append "
                  "the rest");
}

void add_live_command(CLI::App& app, LiveArgs& la) {
  auto* live = app.add_subcommand(
      "live",
      "Classify live streams as they arrive (rtsp, udp, http, srt URLs, - for standard input): "
      "a vote over a sliding window every hop, as JSON Lines");
  live->add_option("sources", la.sources, "Stream URLs, - (standard input), FIFOs or files")
      ->required();
  live->add_option("--weights", la.weights, "Weights (safetensors)")->required();
  live->add_option("--spec", la.spec, "The weights' card, if they carry none");
  live->add_option("--device", la.device, "auto | cpu | cuda[:N]")->capture_default_str();
  live->add_option("--precision", la.precision, "fp32 | tf32 | fp16 | bf16 | int8 (CPU)");
  live->add_option("--threads", la.threads, "CPU threads (0: all cores)");
  live->add_option("--crop", la.crop, "full | center | box=x,y,w,h | face (default: the card's)");
  live->add_option("--vote", la.vote, "majority | confidence (default: the card's)");
  live->add_option("--window", la.window, "The vote's window: seconds (2s, 1500ms) or frames (50f)")
      ->capture_default_str();
  live->add_option("--hop", la.hop, "Seconds between window rows")->capture_default_str();
  live->add_flag("--frames", la.frames, "A row per classified frame too");
  live->add_option("--output", la.output,
                   "JSON Lines to FILE (appended), a FIFO, or - (default: standard output)");
  live->add_option("--stall", la.stall, "Seconds without data before a source counts as lost")
      ->capture_default_str();
  live->add_option("--give-up", la.give_up,
                   "Seconds a lost network source is retried before it ends (0: forever)")
      ->capture_default_str();
  live->add_option("--source-option", la.source_options,
                   "KEY=VALUE: an FFmpeg option for opening the sources (rtsp_transport=tcp, "
                   "rtsp_flags=listen, ...); repeatable");
  live->add_option("--source-format", la.source_format,
                   "FFmpeg's input format for the sources (v4l2, the default for /dev/video*; "
                   "x11grab, lavfi, mpegts...; default: probed)");
  live->add_flag("--quiet", la.quiet, "Nothing on standard error but errors");
}

void add_calibrate_command(CLI::App& app, CalibrateArgs& ca) {
  auto* cal = app.add_subcommand(
      "calibrate",
      "Measure int8 activation scales on frames you give; write the weights with them "
      "(--precision int8)");
  cal->add_option("inputs", ca.inputs, "Videos, image folders, images or folders to walk")
      ->required();
  cal->add_option("--weights", ca.weights, "Weights (safetensors)")->required();
  cal->add_option("--out", ca.out, "The calibrated copy of the weights to write")->required();
  cal->add_option("--spec", ca.spec, "Model card overriding the file's metadata");
  cal->add_option("--frames", ca.frames, "Frames in all at most, shared over the inputs")
      ->capture_default_str();
  cal->add_option("--stride", ca.stride, "Keep every Nth frame")->capture_default_str();
  cal->add_option("--crop", ca.crop,
                  "full | center | box=x,y,w,h | face (as classify will crop; default: the "
                  "card's)");
  cal->add_option("--threads", ca.threads, "CPU threads (0: all cores)");
  cal->add_flag("--quiet", ca.quiet, "Nothing on standard error but errors");
}

void add_make_weights_command(CLI::App& app, CommandLine& cl) {
  auto* mw =
      app.add_subcommand("make-weights", "Write deterministic He-initialised (untrained) weights");
  mw->add_option("--seed", cl.seed, "Random seed")->required()->check([](const std::string& s) {
    return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos
               ? std::string()
               : "'" + s + "': expected a whole number 0 or more";
  });
  mw->add_option("--out", cl.weights_out, "Output safetensors file")->required();
  mw->add_option("--spec", cl.weights_spec, "ravdess-vgg16, torchvision-vgg16 or a JSON card")
      ->capture_default_str();
  mw->add_option("--dtype", cl.weights_dtype, "f32 | f16 | bf16")->capture_default_str();
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
  auto [spec, origin] = resolve_card(spec_name);
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
            << p.std[1] << ", " << p.std[2] << "]"
            << (p.resize ? ", resize " + std::to_string(p.resize) + " + centre crop" : "") << "\n"
            << "  vote: " << vote_name(s.vote) << ", crop: " << s.crop << "\n"
            << "  parameters: " << s.parameter_count() << ", " << std::fixed << std::setprecision(2)
            << s.macs_per_frame() / 1e9 << " GMAC per frame\n"
            << std::defaultfloat;
  if (!s.int8_scales.empty())
    std::cout << "  int8: input scales of " << s.int8_scales.size() << " conv layers, from "
              << s.int8_frames << " frames (fervid calibrate; --precision int8)\n";
  else
    std::cout << "  int8: not calibrated (fervid calibrate, for --precision int8)\n";
}

// How this machine's default backend (--device auto) prepares each layer of the file's network.
void print_prepared_layers(const std::string& path, const std::string& spec_name) {
  EngineOptions options;
  options.max_batch = 1;
  options.notify = [](const std::string&) {};
  const Engine engine(load_weights(path, spec_name), options);
  std::cout << "layers on " << engine.device_name() << " (--device auto):\n";
  for (const Engine::LayerInfo& l : engine.layers())
    std::cout << "  " << std::left << std::setw(9) << l.name << std::setw(20) << l.impl
              << std::right << l.why << "\n";
}

int inspect(const std::string& path, const std::string& spec_name) {
  SafetensorsFile file = SafetensorsFile::open(path);
  std::cout << "file: " << path << " (" << file.file_size() << " bytes)\n";
  std::optional<ModelSpec> spec;
  std::string origin;
  if (!spec_name.empty()) {
    auto r = resolve_card(spec_name);
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
    print_prepared_layers(path, spec_name);
    return kExitOk;
  }
  std::cout << "matches spec: no\n";
  for (const auto& p : problems) std::cout << "  " << p << "\n";
  return kExitSomeFailed;
}

// "classify " when a subcommand was given, "" otherwise.
std::string subcommand_of(const CLI::App& app) {
  for (const CLI::App* sub : app.get_subcommands()) return sub->get_name() + " ";
  return "";
}

}  // namespace

namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// The arguments with the words people type for help and the version made flags ("fervid help",
// "fervid version", "-v"); a first word that is no command is refused in one line that names
// the nearest one (exit 2, also with --help after it).
std::optional<std::vector<std::string>> command_words(int argc, char** argv,
                                                      const std::vector<std::string>& commands) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) return args;
  std::string& first = args[0];
  if (first == "help") first = "--help";
  if (first == "version" || first == "-v") first = "--version";
  if (first.empty() || first[0] == '-') return args;
  if (std::find(commands.begin(), commands.end(), first) != commands.end()) return args;
  std::string nearest;
  size_t best = 3;  // at most two edits away
  for (const std::string& c : commands)
    if (const size_t d = edit_distance(first, c); d < best) best = d, nearest = c;
  std::string list;
  for (const std::string& c : commands) list += (list.empty() ? "" : ", ") + c;
  std::cerr << "fervid: error: unknown command '" << printable(first) << "'"
            << (nearest.empty() ? " (commands: " + list + ")" : " (did you mean " + nearest + "?)")
            << "\n";
  return std::nullopt;
}

}  // namespace

int parse_command_line(int argc, char** argv, CommandLine& cl) {
  CLI::App app{"fervid: facial emotion recognition in video, VGG16 per frame + a per-video vote",
               "fervid"};
  const BuildInfo build = build_info();
  app.set_version_flag("--version", "fervid " + build.version +
                                        (build.cuda ? " (CUDA build: " + build.cuda_libraries + ")"
                                                    : " (CPU-only build)"));
  app.require_subcommand(1);

  auto* classify_cmd = app.add_subcommand("classify", "Classify videos, image folders or images");
  add_run_options(classify_cmd, cl.run);
  add_annotate_option(classify_cmd, cl.run);

  auto* eval_cmd = app.add_subcommand(
      "eval", "Classify a labelled dataset (RAVDESS names or --labels CSV) and score it");
  add_run_options(eval_cmd, cl.run);
  add_annotate_option(eval_cmd, cl.run);
  add_eval_options(eval_cmd, cl.run);

  add_explain_command(app, cl.explain);
  add_faces_command(app, cl.faces);
  add_live_command(app, cl.live);
  add_calibrate_command(app, cl.calibrate);
  add_merge_command(app, cl.merge);
  add_make_weights_command(app, cl);
  auto* ins =
      app.add_subcommand("inspect", "Show a weights file's spec, tensors and whether they match");
  ins->add_option("file", cl.inspect_path, "Weights (safetensors)")->required();
  ins->add_option("--spec", cl.inspect_spec,
                  "Check against this card instead of the file's metadata");

  auto* bench = app.add_subcommand("bench", "Time the frame stage (frames/s, per-layer times)");
  add_bench_options(bench, cl.bench);

  std::vector<std::string> commands;
  for (const CLI::App* sub : app.get_subcommands({})) commands.push_back(sub->get_name());
  std::optional<std::vector<std::string>> args = command_words(argc, argv, commands);
  if (!args) return kExitFatal;
  try {
    std::reverse(args->begin(), args->end());  // CLI11 takes them last first
    app.parse(*args);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0)
      return app.exit(e) == 0 ? kExitOk : kExitFatal;  // --help, --version
    // One line like every other error: CLI11's message, then where the options are listed.
    std::string what = e.what();
    std::replace(what.begin(), what.end(), '\n', ' ');
    what = printable(what);
    std::cerr << "fervid: error: " << what << " (fervid " << subcommand_of(app)
              << "--help lists the options)\n";
    return kExitFatal;
  }
  for (const CLI::App* sub : app.get_subcommands()) cl.command = sub->get_name();
  return -1;
}

void check_command_line(const CommandLine& cl) {
  if (cl.command == "classify" || cl.command == "eval")
    check_run_args(cl.run, cl.command == "eval");
  if (cl.command == "bench") check_bench_options(cl.bench);
  if (cl.command == "explain") check_explain_args(cl.explain);
  if (cl.command == "live") check_live_args(cl.live);
  if (cl.command == "calibrate") check_calibrate_args(cl.calibrate);
}

int run(int argc, char** argv) {
  CommandLine cl;
  if (const int code = parse_command_line(argc, argv, cl); code >= 0) return code;
  try {
    if (cl.command == "classify") return classify_videos(cl.run, false);
    if (cl.command == "eval") return classify_videos(cl.run, true);
    if (cl.command == "explain") return run_explain(cl.explain);
    if (cl.command == "faces") return run_faces(cl.faces);
    if (cl.command == "live") return run_live(cl.live);
    if (cl.command == "calibrate") return run_calibrate(cl.calibrate);
    if (cl.command == "merge") return merge_outputs(cl.merge);
    if (cl.command == "make-weights")
      return make_weights_cmd(cl.seed, cl.weights_out, cl.weights_spec, cl.weights_dtype);
    if (cl.command == "inspect") return inspect(cl.inspect_path, cl.inspect_spec);
    if (cl.command == "bench") return run_bench(cl.bench);
  } catch (const std::exception& e) {
    std::cerr << "fervid: error: " << e.what() << "\n";
    return kExitFatal;
  }
  return kExitFatal;
}

}  // namespace fervid::cli
