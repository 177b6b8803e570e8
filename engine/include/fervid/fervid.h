// fervid's public C++ API: what a program — the fervid CLI, the Python module, a user's own C++ —
// uses to classify facial emotion in videos. Load weights into an Engine once (with the device,
// precision and batch it should use), then classify inputs: video files, image folders, images,
// or frames already in memory. Each input becomes one VideoResult (label, votes, mean
// probabilities, per-frame rows on request, or the reason it failed), handed over in input order
// as soon as it is final, with the run's progress.
//
//   fervid::EngineOptions eo;
//   eo.backend.device = fervid::parse_device("auto");
//   fervid::Engine engine(fervid::load_weights("model.safetensors"), eo);
//   fervid::ClassifyOptions co = engine.default_options();
//   engine.classify(fervid::expand_inputs({"clips/"}), co,
//                   [](const fervid::VideoResult& r, const fervid::Progress&) { ... });
//
// Errors (bad weights, bad options, no device) throw fervid::Error with a one-line message; a bad
// input is a result with its error, and the run goes on.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include "fervid/crop.h"
#include "fervid/error.h"
#include "fervid/faces.h"
#include "fervid/frame.h"
#include "fervid/inputs.h"
#include "fervid/model_spec.h"
#include "fervid/options.h"
#include "fervid/plan.h"
#include "fervid/run.h"
#include "fervid/weights.h"

namespace fervid {

class Backend;  // engine/backends/backend.h
class Model;    // engine/src/model.h

// This build: its version, whether it has the CUDA backend and, if so, the versions of cuDNN and
// cuBLASLt it loaded ("cuDNN 9.10.2, cuBLASLt 13.1.0"; no device needed).
struct BuildInfo {
  std::string version;
  bool cuda = false;
  std::string cuda_libraries;
};
BuildInfo build_info();

// A built-in model card by name (ravdess-vgg16, torchvision-vgg16) or a JSON card file: the spec
// and where it came from ("built-in card ravdess-vgg16" or the file's path).
std::pair<ModelSpec, std::string> resolve_card(const std::string& name_or_path);
// A weights file (safetensors) checked against `card` (resolve_card) or, when empty, against the
// card in the file's metadata.
Weights load_weights(const std::string& path, const std::string& card = "");

// Where the engine's notices go, a line each without a prefix (which backend or decoder it fell
// back to, and why). Unset: "fervid: notice: <line>" on stderr.
using NoticeSink = std::function<void(const std::string& line)>;

struct EngineOptions {
  BackendOptions backend;
  int max_batch = 8;  // the largest ClassifyOptions::batch of the engine's runs (>= 1)
  // Keep the head's dense weights on the host (f32) for Grad-CAM (Engine::explain*): the gap
  // head's are ~1 MiB, the flatten head's ~480 MiB.
  bool explain = false;
  NoticeSink notify;
  // How notices and the layers' reasons name options: the CLI's flags or Python's keywords
  // (errors carry both: Error::words).
  Wording wording = Wording::Cli;
};

// How far a classify() call is, with each result it hands over.
struct Progress {
  size_t videos_done = 0, videos_total = 0;
  int64_t frames = 0;  // frames classified so far
  double seconds = 0;  // since the call began
};

// Per-frame results of frames classified one by one (Engine::classify_frames), row-major.
struct FrameScores {
  int frames = 0, classes = 0;
  std::vector<int32_t> labels;   // [frames]; -1 where the probabilities are not finite (kNotFinite)
  std::vector<float> probs;      // [frames, classes]
  std::vector<float> logits;     // [frames, classes]
  std::vector<CropRect> crops;   // [frames]: the part of each frame classified
  std::vector<uint8_t> no_face;  // [frames]: 1 where crop face found none (the centre crop used)
};

// The network's inputs for one input's sampled frames (Engine::network_inputs): [frames, S, S, 3]
// f32 (RGB or the card's channel order, normalised), with where each frame came from.
struct NetworkInputs {
  int frames = 0, size = 0;
  std::vector<float> values;
  std::vector<int64_t> index;    // [frames]: the frame's position in the source
  std::vector<double> time_s;    // [frames]
  std::vector<CropRect> crops;   // [frames]
  std::vector<uint8_t> no_face;  // [frames]: crop face found none (the centre crop used)
};

// Grad-CAM of one frame (docs/explain.md): where in the crop the last conv layer's activations
// raised the logit of `cls`.
struct FrameExplanation {
  int64_t frame_index = 0;
  double time_s = 0;
  CropRect crop;
  int cls = 0;               // the class explained
  std::vector<float> probs;  // the frame's class probabilities
  int map_size = 0;          // S, the model's input size
  std::vector<float> map;    // [S * S] over the crop (resized to S x S), in [0, 1]
  // The source frame, 8-bit RGB rows of width * 3 bytes (Engine::explain only).
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
};

// A frame of an input to explain: its index in the source (FrameResult::frame_index), the crop
// its classify run took (FrameResult::crop), and the class (-1: the frame's top class).
struct ExplainRequest {
  int64_t frame_index = 0;
  CropRect crop;
  int cls = -1;
};

class Engine {
 public:
  // Prepares `weights` for the backend the options choose (the weights are not needed after).
  Engine(Weights weights, const EngineOptions& options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const ModelSpec& spec() const;
  // The network's layers as this engine's backend prepared them: each layer's name, what runs it
  // and why ("winograd", "auto: oneDNN's Winograd where a layer has 128 input channels or more").
  // With timing (--conv-impl auto on CUDA), what was chosen at the largest batch timed so far.
  struct LayerInfo {
    std::string name, impl, why;
  };
  std::vector<LayerInfo> layers() const;
  std::string backend_name() const;  // "cpu" or "cuda"
  std::string device_name() const;   // e.g. "CPU, 2 threads" or "NVIDIA H100 80GB HBM3 (sm_90)"
  Precision precision() const;       // as the backend computes (never Default)
  int max_batch() const;

  // The options of a run by default: the card's crop and vote, batch max_batch().
  ClassifyOptions default_options() const;

  using OnVideo = std::function<void(const VideoResult&, const Progress&)>;
  // Classifies `inputs`; each one's result goes to `on_video` in input order, as soon as it and
  // those before it are final. `notify` (else the engine's) gets the run's notices: the decoder
  // taken when auto could not take NVDEC, CUDA graphs given up. Throws only when the run cannot
  // go on (a device error), or Cancelled soon after `stop` is requested (from another thread, or
  // from `on_video`); a bad input is a result. One run at a time per engine.
  RunStats classify(const std::vector<InputItem>& inputs, const ClassifyOptions& options,
                    const OnVideo& on_video, const NoticeSink& notify = {},
                    std::stop_token stop = {});
  // The decode stage of such a run alone (threads, decoders), its frames dropped: the decode
  // ceiling of `options` on `inputs`.
  RunStats decode_only(const std::vector<InputItem>& inputs, const ClassifyOptions& options);
  // Frames in memory, each on its own (no vote), cropped by `crop`: full, center, box, or face
  // (each frame's own face; the centre crop where it has none, said in FrameScores::no_face).
  FrameScores classify_frames(std::span<const ImageView> frames, const CropSpec& crop);
  // What the network reads for `input`'s sampled frames, as a classify or eval run on the CPU
  // backend gives it: decoded by fervid (swscale's RGB), cut by `crop` (full, center, box=, or
  // face: the video's largest face tracked as --crop face tracks it, the card's margin),
  // resized and normalised by the card. For training a model on exactly the pixels fervid
  // classifies (docs/study.md). Needs an engine computing in f32; haar and boxes= are refused.
  // Throws fervid::Error "<path>: <reason>" for an input that cannot be read.
  NetworkInputs network_inputs(const InputItem& input, const SamplingOptions& sampling,
                               const CropSpec& crop);
  // The int8 calibration (fervid calibrate, docs/int8.md): `inputs`' sampled frames (at most
  // `max_frames` in all: each input in turn takes its share of what is left, so a short or
  // unreadable one leaves its rest to the ones after it), cut by `crop`, run through this engine
  // in f32; each conv layer's input scale is the largest value its input took over those frames
  // / 255 (nothing clipped); the first layer's, where the card's preprocessing keeps the image
  // >= 0 (mean <= 0), is the image's whole range / 255; other layers of fewer than 16 input
  // channels get none (they stay fp32). An input that cannot be read is skipped and named in
  // `skipped`; none read at all throws.
  struct Int8Calibration {
    std::map<std::string, float> scales;
    int64_t frames = 0;
    std::vector<std::string> skipped;  // "<path>: <reason>"
  };
  Int8Calibration calibrate_int8(const std::vector<InputItem>& inputs,
                                 const SamplingOptions& sampling, const CropSpec& crop,
                                 int64_t max_frames);

  // The face stage's device path (FaceTracking): faces' aligned squares (fervid/frame.h; a side
  // of face_crop_size()) cut from YUV 4:2:0 frames where this engine's backend reads them (its
  // FaceFrameOps: host memory on the CPU, device memory of its GPU on CUDA) into its input, and
  // classified. FrameScores::crops stays empty. reads_yuv_faces() says whether it can.
  FrameScores classify_faces(std::span<const YuvView> frames, std::span<const FaceSquare> faces,
                             const ColorSpec& cs);
  bool reads_yuv_faces() const;
  // The side of the square a face is cut at for this engine (the input's resize step's size).
  int face_crop_size() const;

  // Grad-CAM at the last conv layer (docs/explain.md), for an engine made with
  // EngineOptions::explain. Frames in memory, each cropped by crops[i], explaining classes[i]
  // (-1: the frame's top class); results in order, without pixels.
  std::vector<FrameExplanation> explain_frames(std::span<const ImageView> frames,
                                               std::span<const CropRect> crops,
                                               std::span<const int> classes);
  // The requested frames of `input`, decoded again with `sampling` (that of the classify run
  // whose rows chose them), in request order, with their pixels. An input that fails to decode,
  // or lacks a requested frame, throws InputError naming it.
  std::vector<FrameExplanation> explain(const InputItem& input, const SamplingOptions& sampling,
                                        std::span<const ExplainRequest> requests);

  // The engine's parts, for the benchmarks (bench/) and tests: the model and its backend.
  Model& model();
  Backend& backend();

 private:
  ClassifyOptions with_card_margin(ClassifyOptions options) const;
  std::vector<CropRect> frame_crops(std::span<const ImageView> frames, const CropSpec& crop,
                                    std::vector<uint8_t>& no_face);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The conv layers whose input fervid calibrate scales (--precision int8 runs those in int8): the
// first where the card's preprocessing keeps the image >= 0 (mean <= 0), the others where they
// have 16 input channels or more.
std::vector<std::string> int8_layers(const ModelSpec& spec);

// fervid calibrate (docs/int8.md): `weights` (checked against `card`, else its own) run in fp32 on
// this machine's CPU over `inputs` (Engine::calibrate_int8), and written to `out` with the scales
// in its card: every tensor byte for byte, the other metadata kept (out.part, renamed when
// complete; `out` may not be `weights`). Returns what was measured, the skipped inputs named.
struct CalibrateOptions {
  std::string card;  // overrides the file's own, as load_weights takes it
  std::string crop;  // full | center | box=x,y,w,h | face; "": the card's
  SamplingOptions sampling;
  int64_t frames = 256;  // at most, shared over the inputs
  int threads = 0;       // CPU threads; 0 = all cores
  NoticeSink notify;
};
Engine::Int8Calibration calibrate_weights(const std::string& weights,
                                          const std::vector<InputItem>& inputs,
                                          const std::string& out, const CalibrateOptions& options);

}  // namespace fervid
