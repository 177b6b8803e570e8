#include "video_book.h"

#include <algorithm>
#include <cmath>

#include "fervid/error.h"

namespace fervid {

VideoBook::VideoBook(const std::vector<InputItem>& inputs, const CropSpec& crop, VoteTable& votes)
    : inputs_(inputs), crop_(crop), votes_(votes) {}

VideoBook::Video& VideoBook::open(int video) {
  auto it = open_.find(video);
  if (it != open_.end()) return it->second;
  Video& v = open_[video];
  v.slot = votes_.take_slot();
  return v;
}

int VideoBook::slot(int video) { return open(video).slot; }

std::optional<CropRect> VideoBook::admit(int video, const Frame& frame,
                                         const std::optional<CropRect>& own, int track) {
  Video& v = open(video);
  if (!v.error.empty()) return std::nullopt;
  if (own) {
    v.crop = *own;  // the frame's own crop (--crop face), made inside it
    v.crop_w = v.crop_h = 0;
  } else if (frame.width != v.crop_w || frame.height != v.crop_h) {
    try {
      if (v.fixed)
        check_crop_inside(v.crop, frame.width, frame.height);
      else
        v.crop = crop_.rect_for(frame.width, frame.height);
      v.crop_w = frame.width;
      v.crop_h = frame.height;
    } catch (const Error& e) {
      v.error = inputs_[video].path + ": " + e.what();
      return std::nullopt;
    }
  }
  if (v.frames + v.pending == 0) v.first_crop = v.crop;
  if (track > 0) ++v.track_frames[track];
  ++v.pending;
  return v.crop;
}

void VideoBook::start(int video, const CropRect& crop, const std::string& warning) {
  Video& v = open(video);
  v.crop = crop;
  v.fixed = true;
  v.warning = warning;
}

bool VideoBook::end(int video, const std::string& error, const std::string& warning,
                    const SourceStats& stats) {
  Video& v = open(video);
  v.ended = true;
  v.stats = stats;
  if (!warning.empty()) v.warning += (v.warning.empty() ? "" : "; ") + warning;
  if (v.error.empty()) v.error = error;
  if (v.error.empty() && v.frames + v.pending == 0) v.error = inputs_[video].path + ": no frames";
  return v.pending == 0;
}

std::vector<int> VideoBook::ran(std::span<const int> videos, std::vector<FrameResult> rows) {
  for (size_t i = 0; i < rows.size(); ++i) open_.at(videos[i]).rows.push_back(std::move(rows[i]));
  std::vector<int> done;
  for (int video : videos) {
    Video& v = open_.at(video);
    ++v.frames;
    if (--v.pending == 0 && v.ended) done.push_back(video);
  }
  return done;
}

std::vector<Finished> VideoBook::close(std::span<const int> videos) {
  std::vector<Finished> closing;
  for (int video : videos) {
    auto it = open_.find(video);
    if (it == open_.end()) fail("internal error: closing a video that is not open");
    closing.push_back({video, it->second.slot});
    closed_.insert(open_.extract(it));
  }
  return closing;
}

VideoResult VideoBook::result(const VoteOutcome& vote, VoteMode mode) {
  auto it = closed_.find(vote.video);
  if (it == closed_.end()) fail("internal error: a vote for a video that is not closed");
  Video& v = it->second;
  VideoResult r;
  r.path = inputs_[vote.video].path;
  r.vote = mode;
  r.frames = v.frames;
  r.error = v.error;
  r.warning = v.warning;
  r.crop = v.first_crop;
  r.frames_decoded = v.stats.decoded;
  r.fps = v.stats.fps;
  r.duration_s = v.stats.duration_s;
  r.face_tracks = int(v.track_frames.size());
  for (const auto& [track, frames] : v.track_frames)  // in order of id: the lower wins a tie
    if (r.main_track == 0 || frames > v.track_frames.at(r.main_track)) r.main_track = track;
  if (r.ok()) {
    for (double s : vote.sums) r.mean_probs.push_back(s / double(v.frames));
    if (!std::all_of(r.mean_probs.begin(), r.mean_probs.end(),
                     [](double p) { return std::isfinite(p); })) {
      r.error = r.path + ": " + kNotFinite;
      r.mean_probs.clear();
    }
  }
  if (r.ok()) {
    r.label = vote.winner;
    r.counts = vote.counts;
    r.frame_rows = std::move(v.rows);
  } else {
    r.frames = 0;
  }
  closed_.erase(it);
  return r;
}

}  // namespace fervid
