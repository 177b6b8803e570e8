// Face tracks across a video's frames (docs/faces.md): each frame's detections linked to the
// tracks of the frames before, so that a face keeps its id while it moves, turns or is missed for
// a while. The scheme is ByteTrack's, with an alpha-beta filter for the motion:
//   1. every track's box is predicted one frame ahead (its position plus its velocity);
//   2. detections at or above `high` are matched to the predicted boxes by overlap (IoU), the
//      best pairs first, a pair only above `match_iou`;
//   3. tracks still unmatched try the detections below `high` (a face turning or blurred scores
//      low: it keeps its track instead of starting a new one);
//   4. a matched track corrects its box and velocity towards the detection (alpha, beta); an
//      unmatched one coasts on its prediction (its size held) and is ended after `max_gap`
//      frames without one; it is reported while coasting for `report_gap` frames at most (a
//      face covered for a moment keeps its rows; one that left is not followed off the frame),
//      and keeps its id when a detection matches it again within `max_gap`;
//   5. a detection at or above `high` that matched nothing starts a new track (a new id).
// A track is reported from its `min_hits`-th detection on (a single false detection is not a
// face), or from the first on a video's first frame. Ids count from 1 in order of birth.
#pragma once

#include <vector>

namespace fervid {

struct TrackBox {
  float cx = 0, cy = 0, w = 0, h = 0;  // centre and size, in pixels (or any one unit)
  float iou(const TrackBox& o) const;
};

struct TrackerOptions {
  float high = 0.5f;       // detections from here start tracks and are matched first
  float match_iou = 0.3f;  // a pair overlaps by more than this
  int max_gap = 15;        // frames a track coasts without a detection before it ends
  int report_gap = 5;      // of those, the frames it is still reported on
  int min_hits = 2;        // detections before a new track is reported
  float alpha = 0.6f;      // how far a detection corrects the box (1: to the detection)
  float beta = 0.3f;       // how far it corrects the velocity
};

struct TrackInput {
  TrackBox box;
  float score = 0;
};

// One face of one frame: its track, the filtered box, and which detection it is (-1: none this
// frame, the track coasted on its prediction).
struct TrackedFace {
  int track = 0;
  TrackBox box;
  int detection = -1;
  float score = 0;  // the detection's (0 when coasting)
};

class FaceTracker {
 public:
  explicit FaceTracker(TrackerOptions options = {}) : o_(options) {}
  // The next frame's detections -> the faces reported for it (tracks in order of id).
  std::vector<TrackedFace> update(const std::vector<TrackInput>& detections);
  int tracks_started() const { return next_id_ - 1; }
  // The gaps in frames, once the stream's frame rate is known (FaceTracking sets them from the
  // first two frames' time stamps).
  void set_gaps(int max_gap, int report_gap) {
    o_.max_gap = max_gap;
    o_.report_gap = report_gap;
  }

 private:
  struct Track {
    int id = 0;
    TrackBox box, velocity;
    int hits = 0, missed = 0;
    bool reported = false;
  };
  void match(std::vector<Track*>& tracks, const std::vector<TrackInput>& dets,
             const std::vector<int>& candidates, std::vector<int>& det_of_track,
             std::vector<bool>& used);
  TrackerOptions o_;
  std::vector<Track> tracks_;
  int next_id_ = 1;
  bool first_frame_ = true;
};

}  // namespace fervid
