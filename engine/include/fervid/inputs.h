// The inputs a run classifies: video files (FFmpeg), folders of images (one video, frames sorted
// by name), single images (one-frame videos), frames already in memory (one video); other
// folders are walked recursively. And the path helpers the CSVs that list files (labels, crop
// boxes) use.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fervid/frame.h"
#include "fervid/run.h"

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

// What a folder walk left out, or read in a way the user may not expect (expand_inputs).
struct WalkNotes {
  std::vector<std::string> skipped;  // files that are no video, audio or image (by extension)
  // Folders whose own images became one video (an image folder) beside other inputs in them.
  std::vector<std::string> image_folders_beside_other_inputs;
  // Folders holding videos whose images were classified one by one, each its own input.
  std::vector<std::string> images_beside_videos;
  // One line per kind, "" when there is nothing to say.
  std::vector<std::string> lines() const;
};

// Expands the command line's paths: files stay as they are (images by extension, anything else
// is tried as a video), a folder holding images is one video, other folders are walked and
// their videos (audio files too: their rows say they have no video) and image folders listed,
// sorted by path. Missing paths, dangling links, pipes and devices, and folders with nothing to
// classify become Invalid items so that the run reports them and goes on. `notes` (optional)
// gets what the walk skipped.
std::vector<InputItem> expand_inputs(const std::vector<std::string>& paths,
                                     WalkNotes* notes = nullptr);

// A frame of an input as read_frames() hands it over: 8-bit RGB, valid during the call.
struct InputFrame {
  int64_t index = 0;  // its position in the source, before sampling (FrameResult::frame_index)
  double time_s = 0;  // its presentation time (FrameResult::time_s)
  ImageView image;
};
// Decodes `input` with `sampling` as a classify run with the same sampling does (RGB always:
// keep_yuv is ignored), handing each kept frame to `on_frame` in order until it returns false or
// the input ends. A video is decoded on the CPU. An input that cannot be read throws InputError
// naming it (frames already handed over stay handed over).
void read_frames(const InputItem& input, const SamplingOptions& sampling,
                 const std::function<bool(const InputFrame&)>& on_frame);

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
// A video read through FFmpeg's own protocols rather than as a file: "scheme://..." (http,
// https, rtsp, ...); and standard input, "-" or "pipe:0". Both are inputs as they are, never
// walked or checked as files; a finite stream classifies like a file (live sources: another
// mode).
bool is_url_input(const std::string& path);
bool is_stdin_input(const std::string& path);
// The most bytes a list a user names (labels CSV, boxes CSV) may hold: far above a dataset's
// (RAVDESS's 2,880 videos take ~200 kB), so that a wrong file fails at once.
inline constexpr size_t kMaxListBytes = size_t(256) << 20;

}  // namespace fervid
