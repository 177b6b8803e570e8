// Video input through FFmpeg: libavformat demuxes, libavcodec decodes (its own threads), swscale
// converts sampled frames to RGB exactly as the ffmpeg CLI does (SWS_BICUBIC), so frames from a
// video equal `ffmpeg -i VIDEO frame%d.png` byte for byte.
#include <algorithm>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>
}

#include "fervid/error.h"
#include "video_decode.h"

namespace fervid {

namespace {

std::string av_error(int code) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(code, buf, sizeof(buf));
  return buf;
}

// Decodes one video stream with libavcodec and converts sampled frames to RGB with swscale.
class VideoSource final : public FrameSource {
 public:
  VideoSource(const std::string& path, const SamplingOptions& sampling)
      : path_(path), sampling_(sampling) {
    av_log_set_level(AV_LOG_QUIET);
    int rc = avformat_open_input(&fmt_, path.c_str(), nullptr, nullptr);
    if (rc < 0) fail(path + ": cannot open video: " + av_error(rc));
    rc = avformat_find_stream_info(fmt_, nullptr);
    if (rc < 0) fail(path + ": cannot read stream info: " + av_error(rc));
    const AVCodec* codec = nullptr;
    stream_ = av_find_best_stream(fmt_, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (stream_ == AVERROR_STREAM_NOT_FOUND) fail(path + ": no video stream");
    if (stream_ < 0 || !codec) fail(path + ": no decoder for its video stream");
    dec_ = avcodec_alloc_context3(codec);
    if (!dec_) fail(path + ": out of memory creating a decoder");
    rc = avcodec_parameters_to_context(dec_, fmt_->streams[stream_]->codecpar);
    if (rc < 0) fail(path + ": bad codec parameters: " + av_error(rc));
    dec_->thread_count = 0;  // as many as libavcodec finds useful
    rc = avcodec_open2(dec_, codec, nullptr);
    if (rc < 0) fail(path + ": cannot open the " + codec->name + " decoder: " + av_error(rc));
    pkt_ = av_packet_alloc();
    frame_ = av_frame_alloc();
    if (!pkt_ || !frame_) fail(path + ": out of memory");
  }

  ~VideoSource() override {
    sws_freeContext(sws_);
    av_frame_free(&frame_);
    av_packet_free(&pkt_);
    avcodec_free_context(&dec_);
    avformat_close_input(&fmt_);
  }

  bool next(Frame& out) override {
    while (!done_) {
      if (sampling_.max_frames > 0 && kept_ >= sampling_.max_frames) break;
      int rc = avcodec_receive_frame(dec_, frame_);
      if (rc == 0) {
        int64_t index = decoded_++;
        bool keep = index % std::max(sampling_.stride, 1) == 0;
        if (keep) convert(index, out);
        av_frame_unref(frame_);
        if (keep) {
          ++kept_;
          return true;
        }
        continue;
      }
      if (rc == AVERROR_EOF) {
        done_ = true;
        break;
      }
      if (rc == AVERROR_INVALIDDATA) continue;  // a corrupt frame: skip it, as ffmpeg does
      if (rc != AVERROR(EAGAIN)) fail(path_ + ": decoding failed: " + av_error(rc));
      feed();
    }
    if (kept_ == 0) fail(path_ + ": no frames could be decoded");
    return false;
  }

 private:
  void feed() {
    if (flushed_) fail(path_ + ": decoder wants input after the end of the stream");
    for (;;) {
      int rc = av_read_frame(fmt_, pkt_);
      if (rc == AVERROR_EOF || (rc < 0 && avio_feof(fmt_->pb))) {
        flushed_ = true;
        avcodec_send_packet(dec_, nullptr);
        return;
      }
      if (rc < 0) fail(path_ + ": reading failed: " + av_error(rc));
      if (pkt_->stream_index != stream_) {
        av_packet_unref(pkt_);
        continue;
      }
      rc = avcodec_send_packet(dec_, pkt_);
      av_packet_unref(pkt_);
      if (rc < 0 && rc != AVERROR_INVALIDDATA && rc != AVERROR(EAGAIN))
        fail(path_ + ": decoding failed: " + av_error(rc));
      return;
    }
  }

  void convert(int64_t index, Frame& out) {
    const int w = frame_->width, h = frame_->height;
    if (w <= 0 || h <= 0) fail(path_ + ": decoded a frame without a size");
    out.is_yuv = false;
    if (sampling_.keep_yuv && keep_as_yuv(index, out)) return;
    // SWS_BICUBIC is the ffmpeg CLI's default: frames equal those `ffmpeg -i V f%d.png` writes
    // (tests/video_test.cpp), so a video and its extracted frames classify the same.
    sws_ = sws_getCachedContext(sws_, w, h, AVPixelFormat(frame_->format), w, h, AV_PIX_FMT_RGB24,
                                SWS_BICUBIC, nullptr, nullptr, nullptr);
    if (!sws_) fail(path_ + ": cannot convert pixel format " + std::to_string(frame_->format));
    // The stream's own matrix and range (BT.709 for HD video), not swscale's BT.601 default.
    int cs = SWS_CS_DEFAULT;
    if (frame_->colorspace == AVCOL_SPC_BT709) cs = SWS_CS_ITU709;
    if (frame_->colorspace == AVCOL_SPC_BT2020_NCL || frame_->colorspace == AVCOL_SPC_BT2020_CL)
      cs = SWS_CS_BT2020;
    const bool full = frame_->color_range == AVCOL_RANGE_JPEG;
    sws_setColorspaceDetails(sws_, sws_getCoefficients(cs), full ? 1 : 0,
                             sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
    out.index = index;
    out.width = w;
    out.height = h;
    // swscale's SIMD paths write whole vectors past the end of a row: aligned rows and slack.
    constexpr int kRowAlign = 64;
    out.stride = (w * 3 + kRowAlign - 1) / kRowAlign * kRowAlign;
    out.rgb.resize(size_t(out.stride) * h + kRowAlign);
    uint8_t* dst[4] = {out.rgb.data(), nullptr, nullptr, nullptr};
    int dst_stride[4] = {out.stride, 0, 0, 0};
    int rows = sws_scale(sws_, frame_->data, frame_->linesize, 0, h, dst, dst_stride);
    if (rows != h) fail(path_ + ": colour conversion failed");
  }

  // 8-bit 4:2:0 frames in BT.601 or BT.709: the planes as they are.
  bool keep_as_yuv(int64_t index, Frame& out) {
    const auto fmt = AVPixelFormat(frame_->format);
    const bool jpeg = fmt == AV_PIX_FMT_YUVJ420P;
    if (fmt != AV_PIX_FMT_YUV420P && !jpeg) return false;
    const auto cs = frame_->colorspace;
    if (cs != AVCOL_SPC_UNSPECIFIED && cs != AVCOL_SPC_BT709 && cs != AVCOL_SPC_BT470BG &&
        cs != AVCOL_SPC_SMPTE170M)
      return false;
    const int w = frame_->width, h = frame_->height, cw = (w + 1) / 2, ch = (h + 1) / 2;
    out.index = index;
    out.width = w;
    out.height = h;
    out.stride = 0;
    out.rgb.clear();
    out.is_yuv = true;
    out.color = {cs == AVCOL_SPC_BT709, jpeg || frame_->color_range == AVCOL_RANGE_JPEG};
    out.yuv.resize(size_t(w) * h + 2 * size_t(cw) * ch);
    uint8_t* dst = out.yuv.data();
    for (int y = 0; y < h; ++y, dst += w)
      std::copy_n(frame_->data[0] + int64_t(y) * frame_->linesize[0], w, dst);
    for (int p = 1; p <= 2; ++p)
      for (int y = 0; y < ch; ++y, dst += cw)
        std::copy_n(frame_->data[p] + int64_t(y) * frame_->linesize[p], cw, dst);
    return true;
  }

  std::string path_;
  SamplingOptions sampling_;
  AVFormatContext* fmt_ = nullptr;
  AVCodecContext* dec_ = nullptr;
  SwsContext* sws_ = nullptr;
  AVPacket* pkt_ = nullptr;
  AVFrame* frame_ = nullptr;
  int stream_ = -1;
  int64_t decoded_ = 0;
  int64_t kept_ = 0;
  bool flushed_ = false;
  bool done_ = false;
};

}  // namespace

std::unique_ptr<FrameSource> open_video(const std::string& path, const SamplingOptions& sampling) {
  return std::make_unique<VideoSource>(path, sampling);
}

}  // namespace fervid
