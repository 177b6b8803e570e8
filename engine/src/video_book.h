// The model thread's record of the videos of a run: each video from its first message to its
// result. A video is open while its frames come (its vote slot, its crop, its frames counted and
// pending in the batch, its error or warning, its frame rows), then closed while its vote is on
// its way back (VoteTable), then turned into its VideoResult.
#pragma once

#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "fervid/crop.h"
#include "fervid/inputs.h"
#include "fervid/run.h"
#include "video.h"
#include "vote_table.h"

namespace fervid {

class VideoBook {
 public:
  VideoBook(const std::vector<InputItem>& inputs, const CropSpec& crop, VoteTable& votes);

  // The vote slot of a video, opened (with a slot of its own) at its first message.
  int slot(int video);
  // The crop of a decoded frame of `video`: the frame's `own` crop (--crop face), else the
  // video's own crop (StartMsg), checked against the frame's size, or the CropSpec's rectangle
  // for that size. nullopt once the video has failed: the frame is dropped. The frame then
  // counts as pending until ran() sees it. `track`: the id of the tracked face `own` is around
  // (--crop face; 0: none), counted for the video's main track.
  std::optional<CropRect> admit(int video, const Frame& frame,
                                const std::optional<CropRect>& own = std::nullopt, int track = 0);
  // The crop that comes with the video (haar, boxes=FILE) and its warning.
  void start(int video, const CropRect& crop, const std::string& warning);
  // The video's end, with the decoder's error and warning; true when the video is complete
  // (no frame of it waits in the batch).
  bool end(int video, const std::string& error, const std::string& warning,
           const SourceStats& stats = {});
  // A batch ran with these frames' videos; `rows`, when kept, the frames' rows in the same
  // order. Returns the videos complete now.
  std::vector<int> ran(std::span<const int> videos, std::vector<FrameResult> rows);
  // Closes complete videos: their slots and ids, for VoteTable::finalize.
  std::vector<Finished> close(std::span<const int> videos);
  // The result of a closed video from its vote.
  VideoResult result(const VoteOutcome& vote, VoteMode mode);

 private:
  struct Video {
    int slot = -1;
    int64_t frames = 0;  // frames run through the network
    int pending = 0;     // frames in the batch not yet run
    bool ended = false;
    std::string error, warning;
    CropRect crop{};
    int crop_w = -1, crop_h = -1;  // the frame size `crop` was checked for
    bool fixed = false;            // the crop came with the video (face, boxes=FILE)
    CropRect first_crop{};
    SourceStats stats;
    std::vector<FrameResult> rows;
    std::map<int, int64_t> track_frames;  // --crop face: frames cropped around each track
  };
  Video& open(int video);

  const std::vector<InputItem>& inputs_;
  const CropSpec& crop_;
  VoteTable& votes_;
  std::map<int, Video> open_, closed_;
};

}  // namespace fervid
