// Writing a video through FFmpeg (libavcodec, libavformat, swscale): RGB frames in, H.264
// (libx264) where the FFmpeg build has it, else MPEG-4 Part 2, yuv420p, in the container the
// file's extension names (.mp4, .mkv, .mov, .avi). `fervid classify --annotate` draws on the
// frames and writes them with it.
//
// The file is written as OutputFile writes (fervid/output_file.h): to PATH.part, renamed over
// PATH by finish(); an encoder destroyed before finish() removes the .part, so a failed or
// interrupted encode never leaves a video that looks complete.
#pragma once

#include <algorithm>
#include <cctype>
#include <memory>
#include <string>

#include "fervid/frame.h"
#include "fervid/output_file.h"

namespace fervid {

enum class VideoCodec { Auto, H264, Mpeg4 };  // Auto: H.264 when the build has libx264

class VideoEncoder {
 public:
  // Frames of width x height (1..16384; odd sizes are padded to even with the last column and
  // row, as 4:2:0 needs), `fps` the nominal rate (> 0). Throws Error naming the path when the
  // target is no regular file, the extension names no container, or the codec cannot open.
  VideoEncoder(const OutputTarget& target, int width, int height, double fps,
               VideoCodec codec = VideoCodec::Auto);
  ~VideoEncoder();
  VideoEncoder(const VideoEncoder&) = delete;
  VideoEncoder& operator=(const VideoEncoder&) = delete;

  // A frame of the size given, shown at `time_s` (seconds; times are taken relative to the first
  // frame's and must increase: one that does not is placed a tick after the one before).
  void write(const ImageView& rgb, double time_s);
  // Flushes the encoder, writes the container's trailer and renames the .part into place.
  void finish();
  // The encoder libavcodec opened ("libx264", "mpeg4").
  std::string codec_name() const;
  int64_t frames_written() const;

  // Whether `path`'s extension names a container the encoder writes (.mp4, .m4v, .mkv, .mov,
  // .avi; any case).
  static bool takes_name(const std::string& path) {
    std::string ext = path.substr(std::min(path.size(), path.find_last_of('.')));
    if (ext.find('/') != std::string::npos) return false;
    for (char& ch : ext) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    for (const char* e : {".mp4", ".m4v", ".mkv", ".mov", ".avi"})
      if (ext == e) return true;
    return false;
  }
  // Whether this build can write video (false without FFmpeg: FERVID_VIDEO=OFF), and with
  // `codec` (Auto: any).
  static bool available(VideoCodec codec = VideoCodec::Auto);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fervid
