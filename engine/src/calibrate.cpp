// calibrate_weights: the int8 scales of a network measured on the user's frames
// (Engine::calibrate_int8), written into the card of a byte-for-byte copy of its weights. The CLI's
// fervid calibrate and the Python module's fervid.calibrate both run it (docs/int8.md).
#include <map>
#include <nlohmann/json.hpp>
#include <span>

#include "fervid/fervid.h"
#include "fervid/output_file.h"
#include "fervid/safetensors.h"

namespace fervid {

namespace {

constexpr int64_t kMaxCalibrationFrames = 1 << 20;

// `weights`' tensors as they are, with `spec` as the file's card and the other metadata kept.
void write_with_card(const std::string& weights, const ModelSpec& spec, const std::string& out) {
  const SafetensorsFile file = SafetensorsFile::open(weights);
  std::vector<StTensorOut> tensors;
  for (const StTensorInfo& info : file.tensors()) {
    const std::span<const std::byte> bytes = file.bytes(info);
    tensors.push_back({info.name, info.dtype, info.shape, {bytes.begin(), bytes.end()}});
  }
  std::map<std::string, std::string> meta = file.metadata();
  meta[kSpecMetadataKey] = spec.to_json().dump();
  write_safetensors(out, tensors, meta);
}

}  // namespace

Engine::Int8Calibration calibrate_weights(const std::string& weights,
                                          const std::vector<InputItem>& inputs,
                                          const std::string& out, const CalibrateOptions& o) {
  if (o.frames < 1 || o.frames > kMaxCalibrationFrames)
    fail_option("{{frames}} " + std::to_string(o.frames) + ": expected 1 to " +
                std::to_string(kMaxCalibrationFrames));
  if (o.sampling.stride < 1)
    fail_option("{{stride}} " + std::to_string(o.sampling.stride) + ": expected 1 or more");
  if (!o.crop.empty()) {
    const CropSpec c = CropSpec::parse(o.crop);
    if (c.mode == CropSpec::Mode::Haar || c.mode == CropSpec::Mode::Boxes)
      fail_option("calibration: {{crop}} " + o.crop + ": take full, center, box=x,y,w,h or face");
  }
  const OutputTarget target = OutputTarget::at(out, "{{out}}");
  if (target.is_stream()) fail_option("{{out}} " + out + ": the weights go to a file");
  check_distinct({target}, {weights});
  Weights w = load_weights(weights, o.card);
  ModelSpec spec = w.spec;
  EngineOptions eo;
  eo.backend.device = DeviceChoice::Cpu;
  eo.backend.precision = Precision::Fp32;
  eo.backend.threads = o.threads;
  eo.notify = o.notify;
  Engine engine(std::move(w), eo);
  const CropSpec crop = CropSpec::parse(o.crop.empty() ? spec.crop : o.crop);
  Engine::Int8Calibration cal = engine.calibrate_int8(inputs, o.sampling, crop, o.frames);
  spec.int8_scales = cal.scales;
  spec.int8_frames = cal.frames;
  write_with_card(weights, spec, out);
  return cal;
}

}  // namespace fervid
