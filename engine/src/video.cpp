#include "video.h"

#include <dlfcn.h>
#include <stb_image.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <memory>
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

  // An image that cannot be read is skipped (the row's warning counts it); a folder none of
  // whose images can be read fails with the first one's reason.
  bool next(Frame& out) override {
    while (!(sampling_.max_frames > 0 && kept_ >= sampling_.max_frames) && pos_ < files_.size()) {
      const size_t at = pos_;
      pos_ += size_t(std::max(sampling_.stride, 1));
      try {
        out = load_image(files_[at]);
      } catch (const Error& e) {
        if (unreadable_++ == 0) first_unreadable_ = e.what();
        continue;
      }
      out.index = int64_t(at);
      out.time_s = double(at) / sampling_.fps;
      ++kept_;
      return true;
    }
    if (kept_ == 0 && unreadable_ > 0) fail(first_unreadable_);
    return false;
  }

  std::string warning() const override {
    if (unreadable_ == 0) return "";
    return std::to_string(unreadable_) + " of " + std::to_string(files_.size()) +
           " images could not be read and were skipped (first: " + first_unreadable_ + ")";
  }

 private:
  std::vector<std::string> files_;
  SamplingOptions sampling_;
  size_t pos_ = 0;
  int64_t kept_ = 0;
  int64_t unreadable_ = 0;
  std::string first_unreadable_;
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

bool videos_directly_in(const fs::path& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file(ec) && is_video_path(e.path().string())) return true;
  return false;
}

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
  if (row.path.size() >= 2 && row.path.front() == '"' && row.path.back() == '"') {
    row.path = row.path.substr(1, row.path.size() - 2);
    for (size_t q = row.path.find("\"\""); q != std::string::npos; q = row.path.find("\"\"", q + 1))
      row.path.erase(q, 1);  // CSV's doubled quote
  }
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

bool is_url_input(const std::string& path) {
  const size_t colon = path.find("://");
  if (colon == std::string::npos || colon == 0) return false;
  return std::all_of(path.begin(), path.begin() + colon, [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
  });
}

bool is_stdin_input(const std::string& path) { return path == "-" || path == "pipe:0"; }

bool is_video_path(const std::string& path) {
  static const std::set<std::string> kExt = {
      ".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".ts",
      ".3gp", ".3g2", ".gif", ".mts", ".m2ts", ".ogv", ".vob", ".mxf", ".asf", ".f4v", ".y4m",
      // Audio: classified like any file (their rows say there is no video stream), so that a
      // walk never drops a media file without a word.
      ".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg", ".opus", ".wma"};
  return kExt.count(lower_ext(path)) > 0;
}

std::vector<std::string> WalkNotes::lines() const {
  auto few = [](const std::vector<std::string>& v) {
    std::string s;
    for (size_t i = 0; i < v.size() && i < 3; ++i) s += (i ? ", " : "") + v[i];
    return v.size() > 3 ? s + ", ..." : s;
  };
  std::vector<std::string> out;
  if (!skipped.empty())
    out.push_back("skipped " + std::to_string(skipped.size()) +
                  " files that are no video, audio or image by their extension (" + few(skipped) +
                  "); name a file directly to classify it anyway");
  for (const std::string& d : image_folders_beside_other_inputs)
    out.push_back("the images directly in " + d +
                  " are classified together as one video (an image folder), beside the other "
                  "inputs there; move them to a folder of their own if they are not one video");
  for (const std::string& d : images_beside_videos)
    out.push_back("the images in " + d +
                  ", beside videos there, are classified one by one (a row each); move them to "
                  "a folder of their own if they are the frames of one video");
  return out;
}

namespace {

// Why a path that exists cannot be an input by itself: pipes, sockets and devices would block
// or never end ("" for regular files and folders).
std::string not_a_file(fs::file_status st) {
  switch (st.type()) {
    case fs::file_type::fifo:
      return "not a regular file (a named pipe)";
    case fs::file_type::socket:
      return "not a regular file (a socket)";
    case fs::file_type::character:
    case fs::file_type::block:
      return "not a regular file (a device)";
    default:
      return "";
  }
}

// A folder's own images: one video (an image folder, the frames of a clip); but where the folder
// also holds videos (frames of one clip do not sit beside clips: a stray still, a thumbnail) each
// image on its own, a row each named by its path. `root`: the folder the walk began at.
void add_images_of(const std::string& dir, bool root, std::vector<InputItem>& found,
                   WalkNotes& notes) {
  const std::vector<std::string> images = images_in(dir);
  if (images.empty()) return;
  if (videos_directly_in(dir)) {
    for (const std::string& i : images) found.push_back({i, InputKind::Image, ""});
    notes.images_beside_videos.push_back(dir);
    return;
  }
  if (root && !found.empty()) notes.image_folders_beside_other_inputs.push_back(dir);
  found.push_back({dir, InputKind::ImageFolder, ""});
}

// Walks folder `p`: its videos and image folders into `found`, what it left out into `notes`.
void walk(const std::string& p, std::vector<InputItem>& found, WalkNotes& notes) {
  std::error_code ec;
  for (auto it =
           fs::recursive_directory_iterator(p, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const std::string q = it->path().string();
    std::error_code e2;
    const bool media = is_video_path(q) || is_image_path(q);
    if (it->is_directory(e2)) {
      add_images_of(q, false, found, notes);
    } else if (it->is_symlink(e2) && !fs::exists(it->path(), e2)) {
      if (media) {
        found.push_back(
            {q, InputKind::Invalid, "a dangling symbolic link (its target is missing)"});
      } else {
        notes.skipped.push_back(q);
      }
    } else if (!it->is_regular_file(e2)) {
      if (media) found.push_back({q, InputKind::Invalid, not_a_file(it->status(e2))});
    } else if (is_video_path(q)) {
      found.push_back({q, InputKind::Video, ""});
    } else if (!is_image_path(q)) {
      notes.skipped.push_back(q);
    }
  }
  add_images_of(p, true, found, notes);
}

}  // namespace

std::vector<InputItem> expand_inputs(const std::vector<std::string>& paths, WalkNotes* notes) {
  WalkNotes discarded;
  WalkNotes& n = notes ? *notes : discarded;
  std::vector<InputItem> items;
  for (const std::string& p : paths) {
    if (is_url_input(p) || is_stdin_input(p)) {
      items.push_back({p, InputKind::Video, ""});
      continue;
    }
    std::error_code ec;
    const fs::file_status st = fs::status(p, ec);
    if (ec || !fs::exists(st)) {
      const bool dangling = fs::is_symlink(fs::symlink_status(p, ec));
      items.push_back({p, InputKind::Invalid,
                       dangling ? "a dangling symbolic link (its target is missing)"
                                : "no such file or directory"});
      continue;
    }
    if (const std::string why = not_a_file(st); !why.empty()) {
      items.push_back({p, InputKind::Invalid, why});
      continue;
    }
    if (!fs::is_directory(st)) {
      items.push_back({p, is_image_path(p) ? InputKind::Image : InputKind::Video, ""});
      continue;
    }
    std::vector<InputItem> found;
    walk(p, found, n);
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

void read_frames(const InputItem& input, const SamplingOptions& sampling,
                 const std::function<bool(const InputFrame&)>& on_frame) {
  SamplingOptions rgb = sampling;
  rgb.keep_yuv = false;
  std::unique_ptr<FrameSource> source;
  Frame f;
  // Errors of the input become InputErrors; the callback's own pass through as they are.
  auto next = [&] {
    try {
      if (!source) source = open_frames(input, rgb);
      return source->next(f);
    } catch (const InputError&) {
      throw;
    } catch (const Error& e) {
      fail_input(e.what());
    }
  };
  while (next())
    if (!on_frame({f.index, f.time_s, f.view()})) return;
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
    why = "{{crop}} face and haar read the frames on the CPU";
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
  if (requested == DecoderChoice::Nvdec) fail_option("{{decoder}} nvdec: " + why);
  if (notice) *notice = "decoding video on the CPU: " + why;
  return DecoderKind::Cpu;
}

Frame load_image(const std::string& path) {
  int w = 0, h = 0, channels = 0;
  // stb_image allocates what a header declares before it reads the pixels: a 14-byte PNM that
  // declares 72166x7216 would take 1.5 GB. Headers beyond kMaxImagePixels are refused first.
  if (stbi_info(path.c_str(), &w, &h, &channels) && int64_t(w) * h > kMaxImagePixels)
    fail(path + ": cannot decode image: " + std::to_string(w) + "x" + std::to_string(h) +
         " pixels, more than fervid reads (" + std::to_string(kMaxImagePixels) + ")");
  stbi_uc* pixels = stbi_load(path.c_str(), &w, &h, &channels, 3);
  if (!pixels) fail(path + ": cannot decode image: " + stbi_failure_reason());
  const std::unique_ptr<stbi_uc, void (*)(void*)> owned(pixels, stbi_image_free);
  // stb_image accepts a header that declares a width or height of zero (a PNM "0 5", say).
  if (w <= 0 || h <= 0)
    fail(path + ": cannot decode image: it declares " + std::to_string(w) + "x" +
         std::to_string(h) + " pixels");
  Frame f;
  f.width = w;
  f.height = h;
  f.stride = w * 3;
  f.rgb.assign(pixels, pixels + size_t(w) * h * 3);
  return f;
}

}  // namespace fervid
