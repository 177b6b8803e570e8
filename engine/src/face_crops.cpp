// What the classifier sees of a tracked face (aligned_face) and the votes per track and per
// video over the classified faces (vote_faces); fervid/faces.h.
#include <algorithm>
#include <cmath>
#include <map>

#include "fervid/error.h"
#include "fervid/faces.h"

namespace fervid {

FaceChoice parse_face_choice(const std::string& text) {
  if (text == "all") return FaceChoice::All;
  if (text == "largest") return FaceChoice::Largest;
  fail_option("{{faces}} " + text + ": must be all or largest");
}

namespace {

// Bilinear sample of channel values at (x, y) in pixel units (pixel i's centre at i + 0.5);
// black outside the frame, the edge pixels repeated inside its last half pixel.
void sample(const ImageView& f, double x, double y, double* rgb) {
  if (x < 0 || y < 0 || x >= f.width || y >= f.height) return;
  const double sx = std::clamp(x - 0.5, 0.0, f.width - 1.0);
  const double sy = std::clamp(y - 0.5, 0.0, f.height - 1.0);
  const int x0 = int(sx), y0 = int(sy);
  const int x1 = std::min(x0 + 1, f.width - 1), y1 = std::min(y0 + 1, f.height - 1);
  const double ax = sx - x0, ay = sy - y0;
  const uint8_t* r0 = f.data + size_t(y0) * f.stride;
  const uint8_t* r1 = f.data + size_t(y1) * f.stride;
  for (int k = 0; k < 3; ++k) {
    const double top = r0[x0 * 3 + k] * (1 - ax) + r0[x1 * 3 + k] * ax;
    const double bottom = r1[x0 * 3 + k] * (1 - ax) + r1[x1 * 3 + k] * ax;
    rgb[k] += top * (1 - ay) + bottom * ay;
  }
}

}  // namespace

FaceSquare face_square(const FaceRow& face, double margin, int frame) {
  FaceSquare q;
  q.frame = frame;
  q.side = std::max(face.w, face.h) * (1 + 2 * margin);
  q.cx = face.x + face.w / 2.0;
  q.cy = face.y + face.h / 2.0;
  q.cos_a = std::cos(face.angle);
  q.sin_a = std::sin(face.angle);
  return q;
}

void aligned_face(const ImageView& frame, const FaceRow& face, double margin, int size,
                  uint8_t* out) {
  if (size < 1) fail("aligned_face: the size must be at least 1");
  const FaceSquare q = face_square(face, margin);
  const double step = q.side / size;  // frame pixels per crop pixel
  const int k = std::max(1, int(std::ceil(step - 1e-9)));
  for (int v = 0; v < size; ++v)
    for (int u = 0; u < size; ++u) {
      double rgb[3] = {0, 0, 0};
      for (int j = 0; j < k; ++j)
        for (int i = 0; i < k; ++i) {
          // The sample's offset from the centre in the crop, turned into the frame.
          const double dx = (u + (i + 0.5) / k) * step - q.side / 2;
          const double dy = (v + (j + 0.5) / k) * step - q.side / 2;
          sample(frame, q.cx + q.cos_a * dx - q.sin_a * dy, q.cy + q.sin_a * dx + q.cos_a * dy,
                 rgb);
        }
      uint8_t* px = out + (size_t(v) * size + u) * 3;
      for (int ch = 0; ch < 3; ++ch)
        px[ch] = uint8_t(std::clamp(std::lround(rgb[ch] / (k * k)), 0L, 255L));
    }
}

namespace {

void count(TrackVote& t, const FaceRow& r) {
  t.first_frame = t.frames == 0 ? r.frame_index : t.first_frame;
  t.first_s = t.frames == 0 ? r.time_s : t.first_s;
  t.last_frame = r.frame_index;
  t.last_s = r.time_s;
  ++t.frames;
  if (r.label < 0) return;
  ++t.classified;
  ++t.counts[size_t(r.label)];
  for (size_t j = 0; j < r.probs.size(); ++j) t.mean_probs[j] += r.probs[j];
}

void finish(TrackVote& t, VoteMode vote) {
  if (t.classified == 0) return;
  t.label = vote_winner(t.counts.data(), t.mean_probs.data(), int(t.counts.size()), vote);
  for (double& p : t.mean_probs) p /= double(t.classified);
}

}  // namespace

void vote_faces(VideoFaces& faces, int classes, VoteMode vote, FaceChoice choice) {
  const TrackVote empty{0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        -1,
                        std::vector<int32_t>(size_t(classes), 0),
                        std::vector<double>(size_t(classes), 0.0)};
  std::map<int, TrackVote> tracks;
  TrackVote all = empty;
  for (const FaceRow& r : faces.rows) {
    if (r.track == 0) continue;
    if (r.label >= classes || (r.label >= 0 && r.probs.size() != size_t(classes)))
      fail("vote_faces: a face's class lies outside the model's classes");
    auto [it, added] = tracks.try_emplace(r.track, empty);
    it->second.track = r.track;
    count(it->second, r);
    if (r.label >= 0) count(all, r);
  }
  faces.track_votes.clear();
  const TrackVote* main = nullptr;
  for (auto& [id, t] : tracks) {
    if (!main || t.classified > main->classified) main = &t;
    faces.track_votes.push_back(t);
  }
  for (TrackVote& t : faces.track_votes) finish(t, vote);
  // All: the main track's vote (the one classified most); Largest: over every classified face
  // (one a frame), credited to the main track.
  faces.video = choice == FaceChoice::All && main ? *main : all;
  faces.video.track = main ? main->track : 0;
  finish(faces.video, vote);
}

}  // namespace fervid
