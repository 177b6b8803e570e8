// Inputs: video files (FFmpeg), folders of images (one video, frames sorted by name), single
// images (one-frame videos). Other folders are walked recursively.
#pragma once

#include <cstdint>
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
  ImageView view() const { return {rgb.data(), width, height, stride}; }
  YuvView yuv_view() const {
    const int cw = (width + 1) / 2, ch = (height + 1) / 2;
    const uint8_t* y = yuv.data();
    const uint8_t* u = y + size_t(width) * height;
    return {y, u, u + size_t(cw) * ch, width, cw, 1, width, height};
  }
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

// Decodes one image file (jpg, png, bmp) to RGB.
Frame load_image(const std::string& path);

}  // namespace fervid
