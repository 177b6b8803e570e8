#include "face_tracker.h"

#include <algorithm>
#include <tuple>

namespace fervid {

float TrackBox::iou(const TrackBox& o) const {
  const float x0 = std::max(cx - w / 2, o.cx - o.w / 2), x1 = std::min(cx + w / 2, o.cx + o.w / 2);
  const float y0 = std::max(cy - h / 2, o.cy - o.h / 2), y1 = std::min(cy + h / 2, o.cy + o.h / 2);
  if (x1 <= x0 || y1 <= y0) return 0;
  const float inter = (x1 - x0) * (y1 - y0), uni = w * h + o.w * o.h - inter;
  return uni > 0 ? inter / uni : 0;
}

// Greedy matching by overlap: of all (track, detection) pairs above match_iou, the best first,
// each track and detection at most once. With a few faces per frame it equals the optimal
// assignment except where overlaps tie.
void FaceTracker::match(std::vector<Track*>& tracks, const std::vector<TrackInput>& dets,
                        const std::vector<int>& candidates, std::vector<int>& det_of_track,
                        std::vector<bool>& used) {
  std::vector<std::tuple<float, size_t, int>> pairs;
  for (size_t t = 0; t < tracks.size(); ++t) {
    if (det_of_track[t] >= 0) continue;
    for (int d : candidates) {
      if (used[size_t(d)]) continue;
      const float iou = tracks[t]->box.iou(dets[size_t(d)].box);
      if (iou > o_.match_iou) pairs.emplace_back(iou, t, d);
    }
  }
  std::stable_sort(pairs.begin(), pairs.end(),
                   [](const auto& a, const auto& b) { return std::get<0>(a) > std::get<0>(b); });
  for (const auto& [iou, t, d] : pairs) {
    if (det_of_track[t] >= 0 || used[size_t(d)]) continue;
    det_of_track[t] = d;
    used[size_t(d)] = true;
  }
}

std::vector<TrackedFace> FaceTracker::update(const std::vector<TrackInput>& dets) {
  std::vector<Track*> live;
  for (Track& t : tracks_) {
    t.box.cx += t.velocity.cx;  // 1. predict
    t.box.cy += t.velocity.cy;
    t.box.w = std::max(t.box.w + t.velocity.w, 1e-3f);
    t.box.h = std::max(t.box.h + t.velocity.h, 1e-3f);
    live.push_back(&t);
  }
  std::vector<int> high, low;
  for (size_t d = 0; d < dets.size(); ++d)
    (dets[d].score >= o_.high ? high : low).push_back(int(d));
  std::vector<int> det_of_track(live.size(), -1);
  std::vector<bool> used(dets.size(), false);
  match(live, dets, high, det_of_track, used);  // 2.
  match(live, dets, low, det_of_track, used);   // 3.
  for (size_t t = 0; t < live.size(); ++t) {    // 4.
    Track& tr = *live[t];
    if (det_of_track[t] < 0) {
      ++tr.missed;
      tr.velocity.w = tr.velocity.h = 0;  // a face out of sight keeps its size
      continue;
    }
    const TrackBox& z = dets[size_t(det_of_track[t])].box;
    auto correct = [&](float& x, float& v, float measured) {
      const float r = measured - x;
      x += o_.alpha * r;
      v += o_.beta * r;
    };
    correct(tr.box.cx, tr.velocity.cx, z.cx);
    correct(tr.box.cy, tr.velocity.cy, z.cy);
    correct(tr.box.w, tr.velocity.w, z.w);
    correct(tr.box.h, tr.velocity.h, z.h);
    tr.missed = 0;
    ++tr.hits;
  }
  std::vector<int> det_track(dets.size(), -1);
  for (size_t t = 0; t < live.size(); ++t)
    if (det_of_track[t] >= 0) det_track[size_t(det_of_track[t])] = live[t]->id;
  for (int d : high)  // 5.
    if (!used[size_t(d)]) {
      tracks_.push_back({next_id_, dets[size_t(d)].box, {}, 1, 0, first_frame_});
      det_track[size_t(d)] = next_id_++;
    }
  std::erase_if(tracks_, [&](const Track& t) { return t.missed > o_.max_gap; });
  std::vector<TrackedFace> out;
  for (Track& t : tracks_) {
    t.reported = t.reported || t.hits >= o_.min_hits;
    if (!t.reported || t.missed > o_.report_gap) continue;
    TrackedFace f{t.id, t.box, -1, 0};
    for (size_t d = 0; d < dets.size(); ++d)
      if (det_track[d] == t.id) {
        f.detection = int(d);
        f.score = dets[d].score;
      }
    out.push_back(f);
  }
  first_frame_ = false;
  return out;
}

}  // namespace fervid
