// VideoEncoder through FFmpeg: swscale turns the RGB frames into yuv420p (BT.601, limited range,
// tagged so), libavcodec encodes (libx264 at CRF 20, preset veryfast; or MPEG-4 Part 2 at a fixed
// quantiser of 3), libavformat muxes into PATH.part, renamed over PATH when finished.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <vector>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswscale/swscale.h>
}

#include "av_error.h"
#include "fervid/error.h"
#include "fervid/video_encoder.h"

namespace fervid {

namespace {}  // namespace

struct VideoEncoder::Impl {
  std::string path, file, part;  // as given, what is written (a symlink resolved), file.part
  int width = 0, height = 0;     // the caller's frames
  int coded_w = 0, coded_h = 0;
  AVFormatContext* oc = nullptr;
  AVCodecContext* cc = nullptr;
  AVStream* stream = nullptr;
  AVFrame* frame = nullptr;
  AVPacket* packet = nullptr;
  SwsContext* sws = nullptr;
  std::vector<uint8_t> padded;  // odd sizes: the frame with its last column / row repeated
  bool header = false, finished = false;
  int64_t frames = 0, last_pts = -1;
  double t0 = 0;

  [[noreturn]] void fail_av(const std::string& what, int rc) const {
    fail(path + ": " + what + ": " + av_error(rc));
  }
  void open_codec(const AVCodec* enc, double fps);

  // Hands what the encoder has ready to the muxer; `draining`: until the encoder is empty.
  void drain(bool draining) {
    for (;;) {
      const int rc = avcodec_receive_packet(cc, packet);
      if (rc == AVERROR(EAGAIN) && !draining) return;
      if (rc == AVERROR_EOF) return;
      if (rc < 0) fail_av("cannot encode a frame (avcodec_receive_packet)", rc);
      av_packet_rescale_ts(packet, cc->time_base, stream->time_base);
      packet->stream_index = stream->index;
      const int wr = av_interleaved_write_frame(oc, packet);  // takes the packet's reference
      if (wr < 0) fail_av("cannot write a packet (av_interleaved_write_frame)", wr);
    }
  }

  ~Impl() {
    if (sws) sws_freeContext(sws);
    av_frame_free(&frame);
    av_packet_free(&packet);
    avcodec_free_context(&cc);
    if (oc) {
      if (oc->pb) avio_closep(&oc->pb);
      avformat_free_context(oc);
    }
    if (!finished && !part.empty()) {
      std::error_code ec;
      std::filesystem::remove(part, ec);
    }
  }
};

bool VideoEncoder::available(VideoCodec codec) {
  const bool h264 = avcodec_find_encoder_by_name("libx264") != nullptr;
  const bool mpeg4 = avcodec_find_encoder(AV_CODEC_ID_MPEG4) != nullptr;
  return codec == VideoCodec::H264 ? h264 : codec == VideoCodec::Mpeg4 ? mpeg4 : h264 || mpeg4;
}

namespace {

// libx264 (H.264) unless MPEG-4 Part 2 is asked for; MPEG-4 where there is no libx264 and either
// will do.
const AVCodec* find_encoder(const std::string& path, VideoCodec codec) {
  const AVCodec* enc = nullptr;
  if (codec != VideoCodec::Mpeg4) enc = avcodec_find_encoder_by_name("libx264");
  if (!enc && codec == VideoCodec::H264)
    fail(path + ": this FFmpeg has no H.264 encoder (libx264)");
  if (!enc) enc = avcodec_find_encoder(AV_CODEC_ID_MPEG4);
  if (!enc) fail(path + ": this FFmpeg has neither libx264 nor the MPEG-4 encoder");
  return enc;
}

}  // namespace

// The encoder's settings: yuv420p at the coded size, the rate as a fraction with terms <= 65535
// (MPEG-4 Part 2's limit on the time base), BT.601 limited range, a key frame every 2 s; x264 at
// preset veryfast, CRF 20; MPEG-4 at a fixed quantiser of 3.
void VideoEncoder::Impl::open_codec(const AVCodec* enc, double fps) {
  Impl& m = *this;
  const AVRational rate = av_d2q(fps, 65535);
  AVCodecContext* c = m.cc;
  c->width = m.coded_w;
  c->height = m.coded_h;
  c->pix_fmt = AV_PIX_FMT_YUV420P;
  c->time_base = av_inv_q(rate);
  c->framerate = rate;
  c->sample_aspect_ratio = {1, 1};
  c->color_range = AVCOL_RANGE_MPEG;
  c->colorspace = AVCOL_SPC_SMPTE170M;
  c->gop_size = std::max(1, int(std::lround(fps * 2)));
  if (m.oc->oformat->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  AVDictionary* opts = nullptr;
  if (enc->id == AV_CODEC_ID_H264) {
    av_dict_set(&opts, "preset", "veryfast", 0);
    av_dict_set(&opts, "crf", "20", 0);
  } else {
    c->flags |= AV_CODEC_FLAG_QSCALE;
    c->global_quality = FF_QP2LAMBDA * 3;
  }
  int rc = avcodec_open2(c, enc, &opts);
  av_dict_free(&opts);
  if (rc < 0) m.fail_av(std::string("cannot open the ") + enc->name + " encoder", rc);
  rc = avcodec_parameters_from_context(m.stream->codecpar, c);
  if (rc < 0) m.fail_av("cannot pass the codec's parameters to the container", rc);
  m.stream->time_base = c->time_base;
  m.stream->avg_frame_rate = rate;
}

VideoEncoder::VideoEncoder(const OutputTarget& target, int width, int height, double fps,
                           VideoCodec codec)
    : impl_(std::make_unique<Impl>()) {
  av_log_set_level(AV_LOG_QUIET);  // errors come back as return codes, said in our messages
  Impl& m = *impl_;
  m.path = target.path();
  if (target.kind() != OutputTarget::Kind::File)
    fail(m.path + ": a video is written to a file (the container needs to seek), not a stream");
  if (!takes_name(target.path()))
    fail(m.path + ": name the video .mp4, .mkv, .mov or .avi (its container)");
  if (width < 1 || height < 1 || width > 16384 || height > 16384)
    fail(m.path + ": frame size " + std::to_string(width) + "x" + std::to_string(height) +
         " outside 1..16384");
  if (!(fps > 0) || !std::isfinite(fps) || fps > 1000)
    fail(m.path + ": frame rate " + std::to_string(fps) + " outside (0, 1000]");
  m.width = width;
  m.height = height;
  m.coded_w = (width + 1) & ~1;
  m.coded_h = (height + 1) & ~1;
  m.file = target.file();
  m.part = target.partial();
  const AVCodec* enc = find_encoder(m.path, codec);
  const AVOutputFormat* format = av_guess_format(nullptr, target.file().c_str(), nullptr);
  if (!format) fail(m.path + ": FFmpeg knows no container for " + target.extension());
  int rc = avformat_alloc_output_context2(&m.oc, format, nullptr, m.part.c_str());
  if (rc < 0 || !m.oc)
    m.fail_av("cannot set up the container (avformat_alloc_output_context2)", rc);
  m.stream = avformat_new_stream(m.oc, nullptr);
  m.cc = avcodec_alloc_context3(enc);
  m.frame = av_frame_alloc();
  m.packet = av_packet_alloc();
  if (!m.stream || !m.cc || !m.frame || !m.packet) fail(m.path + ": out of memory (FFmpeg)");
  m.open_codec(enc, fps);
  m.frame->format = m.cc->pix_fmt;
  m.frame->width = m.cc->width;
  m.frame->height = m.cc->height;
  rc = av_frame_get_buffer(m.frame, 0);
  if (rc < 0) m.fail_av("cannot allocate a frame", rc);
  m.sws = sws_getContext(m.coded_w, m.coded_h, AV_PIX_FMT_RGB24, m.coded_w, m.coded_h,
                         AV_PIX_FMT_YUV420P, SWS_BICUBIC, nullptr, nullptr, nullptr);
  if (!m.sws) fail(m.path + ": swscale cannot convert RGB to yuv420p at this size");
  rc = avio_open(&m.oc->pb, m.part.c_str(), AVIO_FLAG_WRITE);
  if (rc < 0) m.fail_av("cannot open " + m.part + " for writing", rc);
  rc = avformat_write_header(m.oc, nullptr);
  if (rc < 0) m.fail_av("cannot write the container's header", rc);
  m.header = true;
}

VideoEncoder::~VideoEncoder() = default;

void VideoEncoder::write(const ImageView& rgb, double time_s) {
  Impl& m = *impl_;
  if (m.finished) fail(m.path + ": frame written after the video was finished");
  if (rgb.width != m.width || rgb.height != m.height || !rgb.data || rgb.stride < rgb.width * 3)
    fail(m.path + ": a frame of " + std::to_string(rgb.width) + "x" + std::to_string(rgb.height) +
         " in a video of " + std::to_string(m.width) + "x" + std::to_string(m.height));
  const uint8_t* src = rgb.data;
  int stride = rgb.stride;
  if (m.coded_w != m.width || m.coded_h != m.height) {
    const size_t row = size_t(m.coded_w) * 3;
    m.padded.resize(row * m.coded_h);
    for (int y = 0; y < m.coded_h; ++y) {
      const uint8_t* s = rgb.data + size_t(std::min(y, m.height - 1)) * rgb.stride;
      uint8_t* d = m.padded.data() + size_t(y) * row;
      std::memcpy(d, s, size_t(m.width) * 3);
      if (m.coded_w != m.width)
        std::memcpy(d + size_t(m.width) * 3, s + size_t(m.width - 1) * 3, 3);
    }
    src = m.padded.data();
    stride = int(row);
  }
  int rc = av_frame_make_writable(m.frame);  // the encoder may still hold the last one
  if (rc < 0) m.fail_av("cannot reuse the frame (av_frame_make_writable)", rc);
  const uint8_t* planes[1] = {src};
  const int strides[1] = {stride};
  sws_scale(m.sws, planes, strides, 0, m.coded_h, m.frame->data, m.frame->linesize);
  if (m.frames == 0) m.t0 = time_s;
  int64_t pts = std::llround((time_s - m.t0) / av_q2d(m.cc->time_base));
  if (!std::isfinite(time_s) || pts <= m.last_pts) pts = m.last_pts + 1;
  m.frame->pts = m.last_pts = pts;
  rc = avcodec_send_frame(m.cc, m.frame);
  if (rc < 0) m.fail_av("cannot encode a frame (avcodec_send_frame)", rc);
  m.drain(false);
  ++m.frames;
}

void VideoEncoder::finish() {
  Impl& m = *impl_;
  if (m.finished) return;
  int rc = avcodec_send_frame(m.cc, nullptr);
  if (rc < 0 && rc != AVERROR_EOF) m.fail_av("cannot flush the encoder", rc);
  m.drain(true);
  rc = av_write_trailer(m.oc);
  if (rc < 0) m.fail_av("cannot write the container's trailer", rc);
  rc = avio_closep(&m.oc->pb);
  if (rc < 0) m.fail_av("cannot close " + m.part, rc);
  std::error_code ec;
  std::filesystem::rename(m.part, m.file, ec);
  if (ec) fail(m.path + ": cannot rename " + m.part + " into place (" + ec.message() + ")");
  m.finished = true;
}

std::string VideoEncoder::codec_name() const { return impl_->cc->codec->name; }
int64_t VideoEncoder::frames_written() const { return impl_->frames; }

}  // namespace fervid
