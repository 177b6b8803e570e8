// Frames from the inputs (fervid/inputs.h): decoded video frames (FFmpeg, on the CPU or NVDEC),
// images and image folders read with stb_image; the long-lived clip-after-clip decoder.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "backends/backend.h"
#include "fervid/inputs.h"
#include "fervid/run.h"

namespace fervid {

struct Frame {
  int64_t index = 0;  // position in the source, before sampling
  double time_s = 0;  // presentation time: the stream's, or index / SamplingOptions::fps
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

// What a source said about itself, once its frames were taken: frames decoded (a video's, before
// the stride), its frame rate and its duration (the stream's; frames / fps for images).
struct SourceStats {
  int64_t decoded = 0;
  double fps = 0, duration_s = 0;
};

class FrameSource {
 public:
  virtual ~FrameSource() = default;
  // The next sampled frame; false at the end. Throws fervid::Error "<path>: <reason>".
  virtual bool next(Frame& frame) = 0;
  virtual SourceStats stats() const = 0;
  // A remark for the input's row once its frames were taken (e.g. images that could not be
  // read and were skipped).
  virtual std::string warning() const { return ""; }
};

std::unique_ptr<FrameSource> open_frames(const InputItem& item, const SamplingOptions& sampling);

struct DecodeOptions {
  DecoderKind kind = DecoderKind::Cpu;
  DeviceFrameSink* sink = nullptr;  // required for Nvdec
  // A read that gets no data for this long ends the clip (0: FERVID_STALL_SECONDS, else 60 s);
  // `interrupt`, when set, ends a waiting read as soon as it reads true (a live source's stop).
  double stall_s = 0;
  const std::atomic<bool>* interrupt = nullptr;
  // FFmpeg's options for opening the clip's input (its protocol's and demuxer's: rtsp_transport,
  // rtsp_flags, timeout...); one that neither takes fails the clip, naming it.
  std::vector<std::pair<std::string, std::string>> format_options;
  // FFmpeg's input format for the clip (its -f: v4l2, lavfi, mpegts...), "" to probe it; a
  // /dev/video* path is read with v4l2 (a camera) unless it names another.
  std::string input_format;
};

// What a ClipDecoder gives back: a sampled frame of a clip, or the end of a clip (after its last
// frame), with the reason it failed or a remark (e.g. decoded on the CPU, not NVDEC).
struct ClipEvent {
  bool end = false;
  int clip = 0;  // the id given to add()
  Frame frame;
  std::string error, warning;
  SourceStats stats;  // with the end
};

// Decodes video files clip after clip, each on a decoder of its own, opened when the decoder of
// the clip before has given its last frame: no state of one clip (reference frames, error
// concealment, parameter sets) reaches the next, so a clip's frames depend on the clip alone.
// Decoders use slice threads only (frame threads conceal damage in an order that depends on
// their timing); --decode-threads decode clips in parallel. Frames are attributed to their clip
// by their timestamps. Events come in clip order: a clip's frames, then its end, then the next
// clip's. A packet or frame the decoder refuses is skipped and counted in the clip's warning (as
// the ffmpeg CLI goes on); a clip that cannot be opened or gives no frame ends with an error; the
// clips after it are not affected. Frames are turned upright by the stream's rotation (its
// display matrix), as the ffmpeg CLI does. A read that gets no data for FERVID_STALL_SECONDS
// (default 60) ends the clip with an error.
class ClipDecoder {
 public:
  virtual ~ClipDecoder() = default;
  static std::unique_ptr<ClipDecoder> create(const SamplingOptions& sampling,
                                             const DecodeOptions& options);
  // Queues a clip.
  virtual void add(int clip, const std::string& path) = 0;
  // Queues a clip whose file is `bytes` in memory, named `name` (the fuzz target's way in).
  virtual void add_bytes(int clip, const std::string& name,
                         std::shared_ptr<const std::string> bytes) = 0;
  // No clip follows for now: the decoder drains, so that next() returns every queued clip's
  // frames and end.
  virtual void flush() = 0;
  // The next event; false when none can come before another add() or flush().
  virtual bool next(ClipEvent& event) = 0;
  // Decoders created so far: one per clip that could be opened.
  virtual int decoders_opened() const = 0;
};

// The decoder for --decoder `requested` with a backend that reads frames in device memory or
// not (`device_frames`: the backend has FrameSinks): auto takes NVDEC when it does, this build's
// FFmpeg has the NVDEC hwaccel, the driver's libnvcuvid loads, and the frames need not come to
// the host (`host_frames`: the face detector reads them there); else the CPU, with `notice`
// saying why. nvdec without them fails with one line.
DecoderKind choose_decoder(DecoderChoice requested, bool device_frames, bool host_frames,
                           std::string* notice);

// Decodes one image file (jpg, png, bmp) to RGB.
// Images larger than this many pixels are refused from their header (8192 x 8192 still reads;
// stb_image decodes an HDR image through 12 bytes of floats per pixel).
inline constexpr int64_t kMaxImagePixels = int64_t(1) << 26;
Frame load_image(const std::string& path);

}  // namespace fervid
