#include "annotate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>

#include "fervid/error.h"
#include "output.h"

namespace fervid::cli {

namespace fs = std::filesystem;

std::string unique_name_for(const std::string& name, std::set<std::string>& used) {
  std::string base = name;
  for (char& ch : base)
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.'))
      ch = '_';
  if (base.empty() || base == "." || base == "..") base = "input";
  std::string out = base;
  for (int i = 2; used.count(out); ++i) out = base + "-" + std::to_string(i);
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

}  // namespace

void annotate_frame(Canvas& c, const FrameResult& row, const std::vector<std::string>& classes) {
  const int scale = std::clamp(int(std::lround(c.h / 320.0)), 1, 8);
  const int th = text_height(scale), pad = 2 * scale, edge = std::max(2, scale);
  const Rgb white{255, 255, 255}, light{200, 200, 200};
  const bool labelled = row.label >= 0 && size_t(row.label) < classes.size();
  const Rgb box = labelled ? series_colour(row.label) : Rgb{128, 128, 128};
  const CropRect& cr = row.crop;

  // A bar per class on a darkened panel, the frame's time below, in the corner the crop covers
  // least (top left on ties).
  int name_w = 0;
  for (const std::string& name : classes) name_w = std::max(name_w, text_width(name, scale));
  const int bar_w = 50 * scale, val_w = text_width("0.00", scale), row_h = th + pad;
  const int panel_w = pad + name_w + pad + bar_w + pad + val_w + pad;
  const int panel_h = pad + int(classes.size() + 1) * row_h + pad;
  int px = 0, py = 0;
  int64_t least = -1;
  for (const auto& [x, y] :
       {std::pair{0, 0}, std::pair{c.w - panel_w, 0}, std::pair{0, c.h - panel_h},
        std::pair{c.w - panel_w, c.h - panel_h}}) {
    const int64_t ow = std::max(0, std::min(x + panel_w, cr.x + cr.width) - std::max(x, cr.x));
    const int64_t oh = std::max(0, std::min(y + panel_h, cr.y + cr.height) - std::max(y, cr.y));
    if (least < 0 || ow * oh < least) {
      least = ow * oh;
      px = std::max(0, x);
      py = std::max(0, y);
    }
  }
  shade(c, px, py, px + panel_w, py + panel_h, 0.35);
  for (size_t k = 0; k < classes.size(); ++k) {
    const int y = py + pad + int(k) * row_h;
    const float p = k < row.probs.size() && std::isfinite(row.probs[k])
                        ? std::clamp(row.probs[k], 0.0f, 1.0f)
                        : 0.0f;
    const Rgb text = int(k) == row.label ? white : light;
    draw_text(c, px + pad, y, classes[k], text, false, scale);
    const int bx = px + pad + name_w + pad;
    c.fill(bx, y, bx + bar_w, y + th, {60, 60, 60});
    c.fill(bx, y, bx + int(std::lround(p * bar_w)), y + th, series_colour(int(k)));
    draw_text(c, bx + bar_w + pad, y, fixed(p, 2), text, false, scale);
  }
  char when[64];
  std::snprintf(when, sizeof when, "frame %lld  %.2f s", static_cast<long long>(row.frame_index),
                row.time_s);
  draw_text(c, px + pad, py + pad + int(classes.size()) * row_h, when, light, false, scale);

  // The crop, and its label on a tag above it (inside the box when there is no room above),
  // drawn last so that nothing covers them.
  outline(c, cr.x, cr.y, cr.x + cr.width, cr.y + cr.height, edge, box);
  if (labelled) {
    const std::string tag =
        classes[size_t(row.label)] + " " + fixed(row.probs[size_t(row.label)], 2);
    const int tw = text_width(tag, scale) + 2 * pad, tag_h = th + 2 * pad;
    // Above the box's left end, else inside it; then the same at its right end; then below the
    // box; then beside or below the panel.
    const int left = cr.x, right = cr.x + cr.width - tw;
    const int above = cr.y - tag_h, inside = cr.y + edge, below = cr.y + cr.height;
    const std::pair<int, int> spots[] = {{left, above},
                                         {left, inside},
                                         {right, above},
                                         {right, inside},
                                         {left, below},
                                         {px + panel_w, py},
                                         {px + panel_w, py + panel_h - tag_h},
                                         {px, py + panel_h},
                                         {px, py - tag_h}};
    int tx = 0, ty = 0;
    bool placed = false;
    for (const auto& [x, y] : spots) {
      const bool fits = x >= 0 && y >= 0 && x + tw <= c.w && y + tag_h <= c.h;
      const bool clear = x >= px + panel_w || x + tw <= px || y >= py + panel_h || y + tag_h <= py;
      if (fits && clear) {
        tx = x, ty = y, placed = true;
        break;
      }
    }
    if (!placed) {  // no clear spot: over the box's top left, inside the frame
      tx = std::clamp(left, 0, std::max(0, c.w - tw));
      ty = std::clamp(inside, 0, std::max(0, c.h - tag_h));
    }
    c.fill(tx, ty, tx + tw, ty + tag_h, box);
    draw_text(c, tx + pad, ty + pad, tag, white, false, scale);
  }
}

std::string write_annotated(const InputItem& input, const VideoResult& r,
                            const SamplingOptions& sampling,
                            const std::vector<std::string>& classes, const OutputTarget& target,
                            VideoCodec codec, const std::atomic<bool>* stop) {
  std::map<int64_t, const FrameResult*> rows;
  for (const FrameResult& f : r.frame_rows) rows[f.frame_index] = &f;
  if (rows.empty()) fail_input(input.path + ": no frames to annotate");
  // The rate of the frames kept: the source's over the stride (their times say when each shows).
  const double fps = (r.fps > 0 ? r.fps : sampling.fps) / std::max(1, sampling.stride);
  std::optional<VideoEncoder> video;
  std::optional<Canvas> canvas;
  size_t done = 0;
  read_frames(input, sampling, [&](const InputFrame& f) {
    if (stop && stop->load()) return false;
    const auto it = rows.find(f.index);
    if (it == rows.end()) return true;
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
    annotate_frame(*canvas, *it->second, classes);
    video->write({canvas->rgb.data(), canvas->w, canvas->h, canvas->w * 3}, f.time_s);
    return ++done < rows.size();
  });
  if (stop && stop->load()) return "";
  if (done < rows.size())
    fail_input(input.path + ": decoded again, it has " + std::to_string(done) + " of its " +
               std::to_string(rows.size()) + " classified frames");
  video->finish();
  return video->codec_name();
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
