// The inputs a run classifies: video files (FFmpeg), folders of images (one video, frames sorted
// by name), single images (one-frame videos), frames already in memory (one video); other
// folders are walked recursively. And the path helpers the CSVs that list files (labels, crop
// boxes) use.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fervid/frame.h"

namespace fervid {

enum class InputKind { Video, ImageFolder, Image, Frames, Invalid };

// Frames in the caller's memory, 8-bit RGB, classified as one video: the views point into
// memory that `owner` keeps alive for as long as the input is in use.
struct FrameList {
  std::vector<ImageView> frames;
  std::shared_ptr<const void> owner;
};

struct InputItem {
  InputItem() = default;
  InputItem(std::string path, InputKind kind, std::string error = "")
      : path(std::move(path)), kind(kind), error(std::move(error)) {}

  std::string path;  // for Frames, the name its result carries
  InputKind kind = InputKind::Invalid;
  std::string error;                        // why the input is Invalid
  std::shared_ptr<const FrameList> frames;  // Frames only
};

// An input of frames in memory, named `name` in its result.
InputItem frames_input(std::string name, FrameList frames);

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

}  // namespace fervid
