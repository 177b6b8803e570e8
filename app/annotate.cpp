#include "annotate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>

#include "fervid/error.h"
#include "output.h"

namespace fervid::cli {

using scoring::Canvas;
using scoring::draw_text;
using scoring::Rgb;
using scoring::series_colour;
using scoring::text_height;
using scoring::text_on;
using scoring::text_width;

namespace fs = std::filesystem;

std::string unique_name_for(const std::string& name, std::set<std::string>& used) {
  std::string base = name;
  for (char& ch : base)
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.'))
      ch = '_';
  if (base.empty() || base == "." || base == "..") base = "input";
  // A name taken already: "-2", "-3", ... before its extension (clip.mp4 -> clip-2.mp4), as for
  // annotated videos and explain's folders alike.
  const size_t dot = base.find_last_of('.');
  const std::string stem = dot == std::string::npos || dot == 0 ? base : base.substr(0, dot);
  const std::string ext = stem.size() == base.size() ? "" : base.substr(dot);
  std::string out = base;
  for (int i = 2; used.count(out); ++i) out = stem + "-" + std::to_string(i) + ext;
  used.insert(out);
  return out;
}

std::string input_file_name(const std::string& path) {
  fs::path p(path);
  std::string base = p.filename().string();
  return base.empty() ? p.parent_path().filename().string() : base;
}

std::vector<OutputTarget> annotate_targets(const std::string& out,
                                           const std::vector<InputItem>& inputs) {
  if (!VideoEncoder::available())
    fail_option("--annotate: this fervid was built without FFmpeg (FERVID_VIDEO=OFF)");
  if (VideoEncoder::takes_name(out)) {
    if (inputs.size() != 1)
      fail_option("--annotate " + out + ": names one video, but the run has " +
                  std::to_string(inputs.size()) + " inputs; give a folder");
    return {OutputTarget::at(out, "--annotate")};
  }
  std::error_code ec;
  if (fs::exists(out, ec) && !fs::is_directory(out, ec))
    fail_option("--annotate " + out +
                ": exists and is no folder (a single video is named .mp4, .mkv, .mov or .avi)");
  fs::create_directories(out, ec);
  if (ec) fail_option("--annotate " + out + ": cannot make the folder (" + ec.message() + ")");
  std::set<std::string> used;
  std::vector<OutputTarget> targets;
  for (const InputItem& input : inputs) {
    const std::string stem = fs::path(input_file_name(input.path)).stem().string();
    targets.push_back(OutputTarget::at(
        (fs::path(out) / (unique_name_for(stem, used) + ".mp4")).string(), "--annotate"));
  }
  return targets;
}

namespace {

// Darkens [x0, x1) x [y0, y1) to `keep` of its brightness (a panel the text stays legible on).
void shade(Canvas& c, int x0, int y0, int x1, int y1, double keep) {
  for (int y = std::max(0, y0); y < std::min(c.h, y1); ++y)
    for (int x = std::max(0, x0); x < std::min(c.w, x1); ++x) {
      uint8_t* p = &c.rgb[(size_t(y) * c.w + x) * 3];
      for (int ch = 0; ch < 3; ++ch) p[ch] = uint8_t(std::lround(p[ch] * keep));
    }
}

// A frame `t` pixels wide just inside [x0, x1) x [y0, y1) (so that a crop of the whole frame
// shows too).
void outline(Canvas& c, int x0, int y0, int x1, int y1, int t, Rgb colour) {
  c.fill(x0, y0, x1, y0 + t, colour);
  c.fill(x0, y1 - t, x1, y1, colour);
  c.fill(x0, y0, x0 + t, y1, colour);
  c.fill(x1 - t, y0, x1, y1, colour);
}

// A line `t` pixels thick from (x0, y0) to (x1, y1): t x t squares stamped every half pixel.
void thick_line(Canvas& c, double x0, double y0, double x1, double y1, int t, Rgb colour) {
  const int steps = std::max(1, int(std::ceil(2 * std::hypot(x1 - x0, y1 - y0))));
  for (int i = 0; i <= steps; ++i) {
    const double a = double(i) / steps;
    const int x = int(std::lround(x0 + a * (x1 - x0) - t / 2.0));
    const int y = int(std::lround(y0 + a * (y1 - y0) - t / 2.0));
    c.fill(x, y, x + t, y + t, colour);
  }
}

// The crop's outline: its rectangle, or, turned (--crop face's eye line), the turned rectangle
// the network saw.
void crop_outline(Canvas& c, const CropRect& cr, int t, Rgb colour) {
  if (cr.angle == 0) return outline(c, cr.x, cr.y, cr.x + cr.width, cr.y + cr.height, t, colour);
  const double cx = cr.x + cr.width / 2.0, cy = cr.y + cr.height / 2.0;
  const double co = std::cos(double(cr.angle)), si = std::sin(double(cr.angle));
  double px[4], py[4];
  const double ux[4] = {-1, 1, 1, -1}, uy[4] = {-1, -1, 1, 1};
  for (int k = 0; k < 4; ++k) {
    const double dx = ux[k] * (cr.width - t) / 2.0, dy = uy[k] * (cr.height - t) / 2.0;
    px[k] = cx + co * dx - si * dy;
    py[k] = cy + si * dx + co * dy;
  }
  for (int k = 0; k < 4; ++k)
    thick_line(c, px[k], py[k], px[(k + 1) % 4], py[(k + 1) % 4], t, colour);
}

// The sizes of the drawing: text scaled with the frame's height, or at `scale`.
struct Style {
  int scale, th, pad, edge;
  explicit Style(const Canvas& c) : Style(std::clamp(int(std::lround(c.h / 320.0)), 1, 8)) {}
  explicit Style(int text_scale)
      : scale(text_scale), th(text_height(scale)), pad(2 * scale), edge(std::max(2, scale)) {}
};

struct Spot {
  int x = 0, y = 0, w = 0, h = 0;
};

int64_t overlap(const Spot& s, const CropRect& cr) {
  const int64_t ow = std::max(0, std::min(s.x + s.w, cr.x + cr.width) - std::max(s.x, cr.x));
  const int64_t oh = std::max(0, std::min(s.y + s.h, cr.y + cr.height) - std::max(s.y, cr.y));
  return ow * oh;
}

// Where a w x h panel covers the crop least: the four corners (top left first), then flush
// beside the crop on either side, at the top and the bottom. Returns the spot and the overlap.
std::pair<Spot, int64_t> off_the_crop(const Canvas& c, const CropRect& cr, int w, int h) {
  const int right = c.w - w, bottom = c.h - h;
  const std::pair<int, int> tries[] = {
      {0, 0},        {right, 0},           {0, bottom},        {right, bottom},
      {cr.x - w, 0}, {cr.x + cr.width, 0}, {cr.x - w, bottom}, {cr.x + cr.width, bottom}};
  Spot best;
  int64_t least = -1;
  for (const auto& [x, y] : tries) {
    const Spot s{std::clamp(x, 0, std::max(0, right)), std::max(0, y), w, h};
    const int64_t o = overlap(s, cr);
    if (least < 0 || o < least) least = o, best = s;
  }
  return {best, least};
}

// The panel's size at a style.
Spot panel_size(const std::vector<std::string>& classes, const Style& s) {
  int name_w = 0;
  for (const std::string& name : classes) name_w = std::max(name_w, text_width(name, s.scale));
  const int bar_w = 50 * s.scale, val_w = text_width("0.00", s.scale), row_h = s.th + s.pad;
  return {0, 0, s.pad + name_w + s.pad + bar_w + s.pad + val_w + s.pad,
          s.pad + int(classes.size() + 1) * row_h + s.pad};
}

// The panel's style and place: at the frame's text size where a spot clear of the crop exists,
// else at a smaller size that finds one (down to 1), else at the frame's size where it covers
// the crop least.
std::pair<Style, Spot> place_panel(const Canvas& c, const CropRect& crop,
                                   const std::vector<std::string>& classes) {
  const Style full(c);
  for (int scale = full.scale; scale >= 1; --scale) {
    const Style s(scale);
    const Spot size = panel_size(classes, s);
    const auto [spot, covered] = off_the_crop(c, crop, size.w, size.h);
    if (covered == 0) return {s, spot};
  }
  const Spot size = panel_size(classes, full);
  return {full, off_the_crop(c, crop, size.w, size.h).first};
}

// A bar per class on a darkened panel, the frame's time below, off the crop (place_panel).
// Returns where the panel is.
Spot draw_panel(Canvas& c, const FrameResult& row, const std::vector<std::string>& classes) {
  const Rgb white{255, 255, 255}, light{200, 200, 200};
  const auto [s, p] = place_panel(c, row.crop, classes);
  int name_w = 0;
  for (const std::string& name : classes) name_w = std::max(name_w, text_width(name, s.scale));
  const int bar_w = 50 * s.scale, row_h = s.th + s.pad;
  const int panel_w = p.w, panel_h = p.h;
  shade(c, p.x, p.y, p.x + panel_w, p.y + panel_h, 0.35);
  for (size_t k = 0; k < classes.size(); ++k) {
    const int y = p.y + s.pad + int(k) * row_h;
    const float v = k < row.probs.size() && std::isfinite(row.probs[k])
                        ? std::clamp(row.probs[k], 0.0f, 1.0f)
                        : 0.0f;
    const Rgb text = int(k) == row.label ? white : light;
    draw_text(c, p.x + s.pad, y, classes[k], text, false, s.scale);
    const int bx = p.x + s.pad + name_w + s.pad;
    c.fill(bx, y, bx + bar_w, y + s.th, {60, 60, 60});
    c.fill(bx, y, bx + int(std::lround(v * bar_w)), y + s.th, series_colour(int(k)));
    draw_text(c, bx + bar_w + s.pad, y, fixed(v, 2), text, false, s.scale);
  }
  char when[64];
  std::snprintf(when, sizeof when, "frame %lld  %.2f s", static_cast<long long>(row.frame_index),
                row.time_s);
  draw_text(c, p.x + s.pad, p.y + s.pad + int(classes.size()) * row_h, when, light, false, s.scale);
  return p;
}

// The label's tag: above the box's left end, else inside it; then the same at its right end;
// then below the box; then beside or below the panel; never over the panel where a spot is
// clear of it, else over the box's top left, inside the frame.
void draw_tag(Canvas& c, const std::string& tag, const CropRect& cr, const Spot& panel, Rgb box,
              const Style& s) {
  const int tw = text_width(tag, s.scale) + 2 * s.pad, tag_h = s.th + 2 * s.pad;
  const int left = cr.x, right = cr.x + cr.width - tw;
  const int above = cr.y - tag_h, inside = cr.y + s.edge, below = cr.y + cr.height;
  const Spot& p = panel;
  const std::pair<int, int> spots[] = {{left, above},
                                       {left, inside},
                                       {right, above},
                                       {right, inside},
                                       {left, below},
                                       {p.x + p.w, p.y},
                                       {p.x + p.w, p.y + p.h - tag_h},
                                       {p.x, p.y + p.h},
                                       {p.x, p.y - tag_h}};
  int tx = std::clamp(left, 0, std::max(0, c.w - tw));
  int ty = std::clamp(inside, 0, std::max(0, c.h - tag_h));
  for (const auto& [x, y] : spots) {
    const bool fits = x >= 0 && y >= 0 && x + tw <= c.w && y + tag_h <= c.h;
    const bool clear = x >= p.x + p.w || x + tw <= p.x || y >= p.y + p.h || y + tag_h <= p.y;
    if (fits && clear) {
      tx = x, ty = y;
      break;
    }
  }
  c.fill(tx, ty, tx + tw, ty + tag_h, box);
  draw_text(c, tx + s.pad, ty + s.pad, tag, text_on(box), false, s.scale);
}

}  // namespace

void annotate_frame(Canvas& c, const FrameResult& row, const std::vector<std::string>& classes) {
  const Style s(c);
  const bool labelled = row.label >= 0 && size_t(row.label) < classes.size();
  const Rgb box = labelled ? series_colour(row.label) : Rgb{128, 128, 128};
  const Spot panel = draw_panel(c, row, classes);
  // The crop and its label's tag, drawn last so that nothing covers them.
  const CropRect& cr = row.crop;
  crop_outline(c, cr, s.edge, box);
  // --crop face: the tag begins with the track id of the face cropped.
  const std::string track = row.track > 0 ? "#" + std::to_string(row.track) + " " : "";
  if (labelled)
    draw_tag(c, track + classes[size_t(row.label)] + " " + fixed(row.probs[size_t(row.label)], 2),
             cr, panel, box, s);
}

namespace {

// `input` decoded again with `sampling`; each frame in `keep` copied to a canvas, drawn on by
// `draw` and encoded to `target` at its time, `fps` the encoder's nominal rate.
template <typename Draw>
std::string encode_frames(const InputItem& input, const SamplingOptions& sampling, double fps,
                          const std::set<int64_t>& keep, const OutputTarget& target,
                          VideoCodec codec, const std::atomic<bool>* stop, Draw draw) {
  if (keep.empty()) fail_input(input.path + ": no frames to annotate");
  std::optional<VideoEncoder> video;
  std::optional<Canvas> canvas;
  size_t done = 0;
  read_frames(input, sampling, [&](const InputFrame& f) {
    if (stop && stop->load()) return false;
    if (!keep.count(f.index)) return true;
    const ImageView& im = f.image;
    if (!video) {
      video.emplace(target, im.width, im.height, fps, codec);
      canvas.emplace(im.width, im.height);
    } else if (im.width != canvas->w || im.height != canvas->h) {
      fail_input(input.path + ": frame " + std::to_string(f.index) + " is " +
                 std::to_string(im.width) + "x" + std::to_string(im.height) + ", the first " +
                 std::to_string(canvas->w) + "x" + std::to_string(canvas->h) +
                 ": one video cannot hold both");
    }
    for (int y = 0; y < im.height; ++y)
      std::copy_n(im.data + size_t(y) * im.stride, size_t(im.width) * 3,
                  canvas->rgb.data() + size_t(y) * im.width * 3);
    draw(*canvas, f.index);
    video->write({canvas->rgb.data(), canvas->w, canvas->h, canvas->w * 3}, f.time_s);
    return ++done < keep.size();
  });
  if (stop && stop->load()) return "";
  if (done < keep.size())
    fail_input(input.path + ": decoded again, it has " + std::to_string(done) + " of its " +
               std::to_string(keep.size()) + " frames with rows");
  video->finish();
  return video->codec_name();
}

}  // namespace

std::string write_annotated(const InputItem& input, const VideoResult& r,
                            const SamplingOptions& sampling,
                            const std::vector<std::string>& classes, const OutputTarget& target,
                            VideoCodec codec, const std::atomic<bool>* stop) {
  std::map<int64_t, const FrameResult*> rows;
  std::set<int64_t> keep;
  for (const FrameResult& f : r.frame_rows) rows[f.frame_index] = &f, keep.insert(f.frame_index);
  // The rate of the frames kept: the source's over the stride (their times say when each shows).
  const double fps = (r.fps > 0 ? r.fps : sampling.fps) / std::max(1, sampling.stride);
  return encode_frames(input, sampling, fps, keep, target, codec, stop,
                       [&](Canvas& c, int64_t index) { annotate_frame(c, *rows[index], classes); });
}

void annotate_faces(Canvas& c, std::span<const FaceRow> faces,
                    const std::vector<std::string>& classes) {
  const Style s(c);
  if (faces.empty()) return;
  char when[64];
  std::snprintf(when, sizeof when, "frame %lld  %.2f s",
                static_cast<long long>(faces.front().frame_index), faces.front().time_s);
  const int tw = text_width(when, s.scale) + 2 * s.pad, tag_h = s.th + 2 * s.pad;
  shade(c, 0, 0, tw, tag_h, 0.35);
  draw_text(c, s.pad, s.pad, when, {200, 200, 200}, false, s.scale);
  for (const FaceRow& f : faces) {
    if (f.track == 0) continue;
    const Rgb colour = series_colour(f.track - 1);
    const CropRect box{int(std::lround(f.x)), int(std::lround(f.y)), int(std::lround(f.w)),
                       int(std::lround(f.h))};
    outline(c, box.x, box.y, box.x + box.width, box.y + box.height, s.edge, colour);
    std::ostringstream tag;
    tag << "#" << f.track;
    if (f.label >= 0 && size_t(f.label) < classes.size())
      tag << " " << classes[size_t(f.label)] << " " << fixed(f.probs[size_t(f.label)], 2);
    if (f.keypoints.empty()) tag << " (predicted)";
    draw_tag(c, tag.str(), box, Spot{0, 0, tw, tag_h}, colour, s);
  }
}

std::string write_annotated_faces(const InputItem& input, const VideoFaces& v,
                                  const SamplingOptions& sampling,
                                  const std::vector<std::string>& classes,
                                  const OutputTarget& target) {
  std::map<int64_t, std::pair<size_t, size_t>> rows;  // a frame's rows [first, last)
  std::set<int64_t> keep;
  for (size_t i = 0; i < v.rows.size(); ++i) {
    auto [it, added] = rows.try_emplace(v.rows[i].frame_index, i, i);
    it->second.second = i + 1;
    keep.insert(v.rows[i].frame_index);
  }
  // The nominal rate of the frames kept: from the first and last rows' times.
  double fps = sampling.fps / std::max(1, sampling.stride);
  if (keep.size() > 1 && v.rows.back().time_s > v.rows.front().time_s)
    fps = double(keep.size() - 1) / (v.rows.back().time_s - v.rows.front().time_s);
  return encode_frames(input, sampling, fps, keep, target, VideoCodec::Auto, nullptr,
                       [&](Canvas& c, int64_t index) {
                         const auto [first, last] = rows[index];
                         annotate_faces(c, std::span(v.rows).subspan(first, last - first), classes);
                       });
}

Annotator::Annotator(std::vector<std::string> classes, SamplingOptions sampling)
    : classes_(std::move(classes)), sampling_(sampling), worker_([this] { work(); }) {}

Annotator::~Annotator() {
  {
    std::lock_guard lock(mu_);
    closing_ = true;
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void Annotator::add(const InputItem& input, const VideoResult& r, const OutputTarget& target) {
  if (!r.ok() || r.frame_rows.empty()) return;
  {
    std::lock_guard lock(mu_);
    queue_.push_back({input, r, target});
  }
  cv_.notify_all();
}

std::vector<std::string> Annotator::finish() {
  {
    std::lock_guard lock(mu_);
    closing_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
  return failures_;
}

void Annotator::work() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return !queue_.empty() || closing_; });
      if (queue_.empty() || stop_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      const std::string name = write_annotated(job.input, job.result, sampling_, classes_,
                                               job.target, VideoCodec::Auto, &stop_);
      if (!name.empty()) {
        ++written_;
        codec_ = name;
      }
    } catch (const std::exception& e) {
      failures_.push_back(std::string(e.what()) + " (--annotate " + job.target.path() + ")");
    }
  }
}

}  // namespace fervid::cli
