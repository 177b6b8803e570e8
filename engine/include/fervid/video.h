// Inputs: video files (FFmpeg), folders of images (one video, frames sorted by name), single
// images (one-frame videos). Other folders are walked recursively.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fervid/backend.h"

namespace fervid {

struct Frame {
  int64_t index = 0;  // position in the source, before sampling
  int width = 0;
  int height = 0;
  int stride = 0;            // bytes per row, >= width * 3
  std::vector<uint8_t> rgb;  // RGB rows of `stride` bytes
  // A video frame kept in 8-bit YUV 4:2:0 (SamplingOptions::keep_yuv) has no rgb but planes:
  // Y rows of `width` bytes, then U and V rows of (width + 1) / 2, (height + 1) / 2 rows each.
  bool is_yuv = false;
  ColorSpec color;
  std::vector<uint8_t> yuv;
  // A frame NVDEC decoded stays in device memory (NV12): `device` holds its planes, `device_hold`
  // keeps them (a buffer of the backend's DeviceFrameSink) until the frame is dropped.
  YuvView device;
  std::shared_ptr<const void> device_hold;
  bool on_device() const { return device_hold != nullptr; }
  ImageView view() const { return {rgb.data(), width, height, stride}; }
  YuvView yuv_view() const {
    if (on_device()) return device;
    const int cw = (width + 1) / 2, ch = (height + 1) / 2;
    const uint8_t* y = yuv.data();
    const uint8_t* u = y + size_t(width) * height;
    return {y, u, u + size_t(cw) * ch, width, cw, 1, width, height};
  }
};

// Where videos are decoded (--decoder): libavcodec on the CPU, or NVDEC through FFmpeg's CUDA
// hwaccel with the frames left on the device.
enum class DecoderKind { Cpu, Nvdec };

// Device memory for frames NVDEC decodes, provided by the CUDA backend (Backend::make_frame_sink):
// each decoded surface is copied at once into a buffer of a bounded pool, so that the decoder's
// few output surfaces go back to it, and the buffer returns to the pool when the frame is
// dropped, after the work queued on the frame is done.
class DeviceFrameSink {
 public:
  virtual ~DeviceFrameSink() = default;
  // Copies an NV12 frame (device pointers, valid until this returns) into a pool buffer; `out`
  // gets the copy's planes. Blocks while every buffer is in use. Thread-safe.
  virtual std::shared_ptr<const void> copy_nv12(const YuvView& surface, YuvView& out) = 0;
};

struct SamplingOptions {
  int stride = 1;      // keep every stride-th frame
  int max_frames = 0;  // 0 = no cap
  // Video frames decoded as 8-bit 4:2:0 (BT.601/709) stay YUV for a backend that converts them
  // itself (Backend::preprocess_yuv420): no CPU colour conversion, half the bytes to upload.
  // Other formats, and images, are RGB as always. The classifier sets it for the CUDA backend.
  bool keep_yuv = false;
};

enum class InputKind { Video, ImageFolder, Image, Invalid };

struct InputItem {
  std::string path;
  InputKind kind = InputKind::Invalid;
  std::string error;  // why the input is Invalid
};

// Expands the command line's paths: files stay as they are (images by extension, anything else
// is tried as a video), a folder holding images is one video, other folders are walked and
// their videos and image folders listed, sorted by path. Missing paths and folders with nothing
// to classify become Invalid items so that the run reports them and goes on.
std::vector<InputItem> expand_inputs(const std::vector<std::string>& paths);

bool is_image_path(const std::string& path);
// The absolute, normalised path with symbolic links of existing parts resolved: how inputs are
// matched with the rows of a labels or boxes CSV.
std::string canonical_path(const std::string& path);

// One row of a CSV that lists files (labels, crop boxes): the path first (it may hold commas and
// be quoted), then `fields` values, trimmed. nullopt when the row has fewer fields. `key` is
// canonical_path() of the path taken relative to the CSV's folder.
struct ListedRow {
  std::string path, key;
  std::vector<std::string> fields;
};
std::optional<ListedRow> split_listed_row(const std::string& csv, const std::string& line,
                                          int fields);
bool is_video_path(const std::string& path);

class FrameSource {
 public:
  virtual ~FrameSource() = default;
  // The next sampled frame; false at the end. Throws fervid::Error "<path>: <reason>".
  virtual bool next(Frame& frame) = 0;
};

std::unique_ptr<FrameSource> open_frames(const InputItem& item, const SamplingOptions& sampling);

struct DecodeOptions {
  DecoderKind kind = DecoderKind::Cpu;
  DeviceFrameSink* sink = nullptr;  // required for Nvdec
};

// What a ClipDecoder gives back: a sampled frame of a clip, or the end of a clip (after its last
// frame), with the reason it failed or a remark (e.g. decoded on the CPU, not NVDEC).
struct ClipEvent {
  bool end = false;
  int clip = 0;  // the id given to add()
  Frame frame;
  std::string error, warning;
};

// Decodes video files clip after clip through one long-lived decoder: the packets of the next
// clip follow the last packets of the previous one with no drain, flush or re-creation (H.264
// and HEVC travel as Annex B, their parameter sets in-band), and the frames are attributed to
// their clip by their timestamps. A clip whose format the decoder cannot continue with (another
// codec or size, or a codec without in-band parameter sets) drains the decoder and goes to a
// decoder of its own format: one drained earlier (a few wait, flushed, for their format's next
// clip) or a new one. Events come in clip order: a clip's frames, then its end, then the next
// clip's. A clip that cannot be opened or decoded ends with an error; the clips after it are not
// affected.
class ClipDecoder {
 public:
  virtual ~ClipDecoder() = default;
  static std::unique_ptr<ClipDecoder> create(const SamplingOptions& sampling,
                                             const DecodeOptions& options);
  // Queues a clip.
  virtual void add(int clip, const std::string& path) = 0;
  // No clip follows for now: the decoder drains, so that next() returns every queued clip's
  // frames and end.
  virtual void flush() = 0;
  // The next event; false when none can come before another add() or flush().
  virtual bool next(ClipEvent& event) = 0;
  // Decoders created so far: 1 for a run of clips that continue one another, 1 per format for
  // clips of a few formats mixed.
  virtual int decoders_opened() const = 0;
};

// The decoder for --decoder `requested` (auto | nvdec | cpu) with a backend on `device`: auto
// takes NVDEC when the backend is CUDA, this build's FFmpeg has the NVDEC hwaccel and the
// driver's libnvcuvid loads, and the frames need not come to the host (`host_frames`: the face
// detector reads them there); else the CPU, with `notice` saying why. nvdec without them fails
// with one line.
DecoderKind choose_decoder(const std::string& requested, Device device, bool host_frames,
                           std::string* notice);

// Decodes one image file (jpg, png, bmp) to RGB.
Frame load_image(const std::string& path);

}  // namespace fervid
