#include "video.h"

#include <dlfcn.h>
#include <stb_image.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <set>

#include "fervid/error.h"
#include "video_decode.h"

namespace fs = std::filesystem;

namespace fervid {

namespace {

std::string lower_ext(const std::string& path) {
  std::string e = fs::path(path).extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return std::tolower(c); });
  return e;
}

class ImageListSource final : public FrameSource {
 public:
  ImageListSource(std::vector<std::string> files, const SamplingOptions& sampling)
      : files_(std::move(files)), sampling_(sampling) {}

  SourceStats stats() const override {
    return {kept_, sampling_.fps, double(files_.size()) / sampling_.fps};
  }

  bool next(Frame& out) override {
    if (sampling_.max_frames > 0 && kept_ >= sampling_.max_frames) return false;
    if (pos_ >= files_.size()) return false;
    out = load_image(files_[pos_]);
    out.index = int64_t(pos_);
    out.time_s = double(pos_) / sampling_.fps;
    pos_ += size_t(std::max(sampling_.stride, 1));
    ++kept_;
    return true;
  }

 private:
  std::vector<std::string> files_;
  SamplingOptions sampling_;
  size_t pos_ = 0;
  int64_t kept_ = 0;
};

// Frames in memory (InputKind::Frames), each copied when it is taken.
class FrameListSource final : public FrameSource {
 public:
  FrameListSource(std::string name, std::shared_ptr<const FrameList> list,
                  const SamplingOptions& sampling)
      : name_(std::move(name)), list_(std::move(list)), sampling_(sampling) {}

  SourceStats stats() const override {
    return {kept_, sampling_.fps, double(list_->frames.size()) / sampling_.fps};
  }

  bool next(Frame& out) override {
    if (sampling_.max_frames > 0 && kept_ >= sampling_.max_frames) return false;
    if (pos_ >= list_->frames.size()) return false;
    const ImageView& v = list_->frames[pos_];
    if (!v.data || v.width < 1 || v.height < 1 || v.stride < v.width * 3)
      fail(name_ + ": frame " + std::to_string(pos_) + ": not an 8-bit RGB image (" +
           std::to_string(v.width) + "x" + std::to_string(v.height) + ", stride " +
           std::to_string(v.stride) + ")");
    out = Frame();
    out.index = int64_t(pos_);
    out.time_s = double(pos_) / sampling_.fps;
    out.width = v.width;
    out.height = v.height;
    out.stride = v.width * 3;
    out.rgb.resize(size_t(v.width) * v.height * 3);
    for (int y = 0; y < v.height; ++y)
      std::copy_n(v.data + int64_t(y) * v.stride, size_t(v.width) * 3,
                  out.rgb.data() + size_t(y) * out.stride);
    pos_ += size_t(std::max(sampling_.stride, 1));
    ++kept_;
    return true;
  }

 private:
  std::string name_;
  std::shared_ptr<const FrameList> list_;
  SamplingOptions sampling_;
  size_t pos_ = 0;
  int64_t kept_ = 0;
};

std::vector<std::string> images_in(const fs::path& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file(ec) && is_image_path(e.path().string()))
      files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

std::string canonical_path(const std::string& path) {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::weakly_canonical(std::filesystem::absolute(path), ec);
  return (ec ? std::filesystem::path(path) : p).lexically_normal().string();
}

std::optional<ListedRow> split_listed_row(const std::string& csv, const std::string& line,
                                          int fields) {
  auto trim = [](const std::string& t) {
    const size_t a = t.find_first_not_of(" \t\r\n");
    return a == std::string::npos ? std::string()
                                  : t.substr(a, t.find_last_not_of(" \t\r\n") - a + 1);
  };
  ListedRow row;
  size_t end = line.size();
  for (int i = 0; i < fields; ++i) {
    const size_t comma = end == 0 ? std::string::npos : line.rfind(',', end - 1);
    if (comma == std::string::npos) return std::nullopt;
    row.fields.insert(row.fields.begin(), trim(line.substr(comma + 1, end - comma - 1)));
    end = comma;
  }
  row.path = trim(line.substr(0, end));
  if (row.path.size() >= 2 && row.path.front() == '"' && row.path.back() == '"')
    row.path = row.path.substr(1, row.path.size() - 2);
  const std::filesystem::path p(row.path);
  row.key =
      canonical_path((p.is_absolute() ? p : std::filesystem::path(csv).parent_path() / p).string());
  return row;
}

InputItem frames_input(std::string name, FrameList frames) {
  InputItem item{std::move(name), InputKind::Frames, ""};
  item.frames = std::make_shared<const FrameList>(std::move(frames));
  return item;
}

bool is_image_path(const std::string& path) {
  static const std::set<std::string> kExt = {".jpg", ".jpeg", ".png", ".bmp"};
  return kExt.count(lower_ext(path)) > 0;
}

bool is_video_path(const std::string& path) {
  static const std::set<std::string> kExt = {".mp4", ".avi",  ".mov", ".mkv", ".webm", ".m4v",
                                             ".mpg", ".mpeg", ".flv", ".wmv", ".ts",   ".3gp"};
  return kExt.count(lower_ext(path)) > 0;
}

std::vector<InputItem> expand_inputs(const std::vector<std::string>& paths) {
  std::vector<InputItem> items;
  for (const std::string& p : paths) {
    std::error_code ec;
    fs::file_status st = fs::status(p, ec);
    if (ec || !fs::exists(st)) {
      items.push_back({p, InputKind::Invalid, "no such file or directory"});
      continue;
    }
    if (!fs::is_directory(st)) {
      items.push_back({p, is_image_path(p) ? InputKind::Image : InputKind::Video, ""});
      continue;
    }
    std::vector<InputItem> found;
    if (!images_in(p).empty()) found.push_back({p, InputKind::ImageFolder, ""});
    for (auto it =
             fs::recursive_directory_iterator(p, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      const std::string q = it->path().string();
      if (it->is_directory(ec)) {
        if (!images_in(q).empty()) found.push_back({q, InputKind::ImageFolder, ""});
      } else if (it->is_regular_file(ec) && is_video_path(q)) {
        found.push_back({q, InputKind::Video, ""});
      }
    }
    if (found.empty()) {
      items.push_back({p, InputKind::Invalid, "directory holds no images or videos"});
      continue;
    }
    std::sort(found.begin(), found.end(),
              [](const auto& a, const auto& b) { return a.path < b.path; });
    items.insert(items.end(), found.begin(), found.end());
  }
  return items;
}

std::unique_ptr<FrameSource> open_frames(const InputItem& item, const SamplingOptions& sampling) {
  switch (item.kind) {
    case InputKind::Video:
      return open_video(item.path, sampling);
    case InputKind::ImageFolder:
      return std::make_unique<ImageListSource>(images_in(item.path), sampling);
    case InputKind::Image:
      return std::make_unique<ImageListSource>(std::vector<std::string>{item.path}, sampling);
    case InputKind::Frames:
      if (item.frames) return std::make_unique<FrameListSource>(item.path, item.frames, sampling);
      break;
    case InputKind::Invalid:
      break;
  }
  fail(item.path + ": " + (item.error.empty() ? "not a classifiable input" : item.error));
}

DecoderKind choose_decoder(DecoderChoice requested, bool device_frames, bool host_frames,
                           std::string* notice) {
  if (requested == DecoderChoice::Cpu) return DecoderKind::Cpu;
  std::string why;
  if (!device_frames) {
    // A backend on the CPU: decoding there is no fallback, so auto says nothing.
    if (requested == DecoderChoice::Auto) return DecoderKind::Cpu;
    why = "the backend runs on the CPU (NVDEC frames stay on the GPU)";
  } else if (host_frames) {
    why = "--crop face reads the frames on the CPU";
  } else if (!nvdec_in_ffmpeg()) {
    why = "this fervid's FFmpeg has no NVDEC (CUDA) hwaccel";
  } else if (void* lib = dlopen("libnvcuvid.so.1", RTLD_NOW | RTLD_LOCAL)) {
    dlclose(lib);
  } else {
    const char* e = dlerror();
    why = std::string("the driver's libnvcuvid.so.1 does not load") +
          (e ? std::string(": ") + e : "");
  }
  if (why.empty()) return DecoderKind::Nvdec;
  if (requested == DecoderChoice::Nvdec) fail_option("--decoder nvdec: " + why);
  if (notice) *notice = "decoding video on the CPU: " + why;
  return DecoderKind::Cpu;
}

Frame load_image(const std::string& path) {
  int w = 0, h = 0, channels = 0;
  stbi_uc* pixels = stbi_load(path.c_str(), &w, &h, &channels, 3);
  if (!pixels) fail(path + ": cannot decode image: " + stbi_failure_reason());
  Frame f;
  f.width = w;
  f.height = h;
  f.stride = w * 3;
  f.rgb.assign(pixels, pixels + size_t(w) * h * 3);
  stbi_image_free(pixels);
  return f;
}

}  // namespace fervid
