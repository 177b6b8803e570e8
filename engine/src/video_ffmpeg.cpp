// Video input through FFmpeg: libavformat demuxes, libavcodec decodes (its own threads on the CPU,
// NVDEC through the CUDA hwaccel), swscale converts sampled CPU frames to RGB exactly as the
// ffmpeg CLI does (SWS_BICUBIC), so frames from a video equal `ffmpeg -i VIDEO frame%d.png` byte
// for byte. ClipDecoder decodes clip after clip, each on a decoder of its own (see video.h); a
// single video (open_video) is a ClipDecoder given one clip.
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <libavutil/hwcontext.h>
#if FERVID_HAVE_CUDA
#include <cuda.h>  // before hwcontext_cuda.h, which includes it only when CUDA_VERSION is unset
#include <libavutil/hwcontext_cuda.h>
#endif
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>
#if FERVID_HAVE_AVDEVICE
#include <libavdevice/avdevice.h>
#endif
}

#include "av_error.h"
#include "backends/cuda/cuda_probe.h"
#include "fervid/error.h"
#include "run_clock.h"
#include "video_decode.h"

namespace fervid {

namespace {

// Whether libavcodec can decode `codec` on NVDEC (a CUDA hwaccel configured by a device context).
bool nvdec_takes(const AVCodec* codec) {
  for (int i = 0;; ++i) {
    const AVCodecHWConfig* c = avcodec_get_hw_config(codec, i);
    if (!c) return false;
    if (c->device_type == AV_HWDEVICE_TYPE_CUDA && c->pix_fmt == AV_PIX_FMT_CUDA &&
        (c->methods & AV_CODEC_HW_CONFIG_METHOD_HW_DEVICE_CTX))
      return true;
  }
}

// Sets `*out` to an FFmpeg CUDA device on the runtime's context, or returns why it cannot.
std::string make_cuda_device_context(AVBufferRef** out) {
#if FERVID_HAVE_CUDA
  std::string why;
  void* ctx = cuda_runtime_context(&why);
  if (!ctx) return "no CUDA context for NVDEC: " + why;
  AVBufferRef* device = av_hwdevice_ctx_alloc(AV_HWDEVICE_TYPE_CUDA);
  if (!device) return "FFmpeg cannot allocate a CUDA device context for NVDEC";
  auto* hw = reinterpret_cast<AVHWDeviceContext*>(device->data);
  static_cast<AVCUDADeviceContext*>(hw->hwctx)->cuda_ctx = static_cast<CUcontext>(ctx);
  const int rc = av_hwdevice_ctx_init(device);
  if (rc < 0) {
    av_buffer_unref(&device);
    return "FFmpeg cannot use the CUDA context for NVDEC: " + av_error(rc);
  }
  *out = device;
  return "";
#else
  *out = nullptr;
  return "NVDEC needs a fervid built with CUDA";
#endif
}

// The run's one CUDA device context for the decoders: the context the CUDA runtime (and so the
// backend) already uses, its primary context (cuda_runtime_context), handed to FFmpeg as it is, so
// decoded surfaces are valid device pointers there. Not `primary_ctx=1`: FFmpeg 5.1 then demands
// the primary context's flags be CU_CTX_SCHED_BLOCKING_SYNC and refuses one the runtime has
// already made active with its default flags ("Primary context already active with incompatible
// flags", ENOTSUP), which is always the case here. A context FFmpeg is given is not its own: it
// neither flags nor releases it.
AVBufferRef* cuda_device_context(std::string* why) {
  static std::mutex mu;
  static AVBufferRef* device = nullptr;
  static std::string error;
  std::lock_guard lock(mu);
  if (!device && error.empty()) error = make_cuda_device_context(&device);
  if (!device && why) *why = error;
  return device;
}

AVPixelFormat prefer_cuda(AVCodecContext*, const AVPixelFormat* formats) {
  for (const AVPixelFormat* f = formats; *f != AV_PIX_FMT_NONE; ++f)
    if (*f == AV_PIX_FMT_CUDA) return *f;
  return formats[0];  // NVDEC refused this stream: libavcodec decodes it in software
}

// One decoded AVFrame -> a Frame: RGB by swscale, YUV 4:2:0 planes as they are (keep_yuv), or an
// NV12 surface copied into the backend's device pool.
class Converter {
 public:
  ~Converter() {
    sws_freeContext(sws_);
    av_frame_free(&host_);
  }

  // `warning` is set when a device frame had to come to the host. `rotation`: degrees clockwise
  // (0, 90, 180, 270) that make the frame upright, as the stream's display matrix says; a
  // rotated frame is always converted to RGB on the host and turned there.
  void convert(const std::string& path, const AVFrame* f, int64_t index,
               const SamplingOptions& sampling, DeviceFrameSink* sink, int rotation, Frame& out,
               std::string& warning) {
    out = Frame();
    out.index = index;
    if (f->format == AV_PIX_FMT_CUDA) {
      const auto* frames = reinterpret_cast<const AVHWFramesContext*>(f->hw_frames_ctx->data);
      const ColorSpec cs = color_of(f);
      if (sink && rotation == 0 && frames->sw_format == AV_PIX_FMT_NV12 && supported_matrix(f)) {
        out.width = f->width;
        out.height = f->height;
        out.is_yuv = true;
        out.color = cs;
        const YuvView surface{f->data[0],     f->data[1],     f->data[1] + 1,
                              f->linesize[0], f->linesize[1], 2,
                              f->width,       f->height,      true};
        out.device_hold = sink->copy_nv12(surface, out.device);
        return;
      }
      // 10-bit, 4:4:4 or another matrix: the surface comes to the host and is converted there.
      if (!host_ && !(host_ = av_frame_alloc())) fail(path + ": out of memory");
      av_frame_unref(host_);
      const int rc = av_hwframe_transfer_data(host_, f, 0);
      if (rc < 0) fail(path + ": cannot copy a decoded frame from the GPU: " + av_error(rc));
      av_frame_copy_props(host_, f);
      if (warning.empty() && rotation == 0)
        warning = std::string("NVDEC gave ") + av_get_pix_fmt_name(frames->sw_format) +
                  " frames; converted on the CPU";
      f = host_;
    }
    const int w = f->width, h = f->height;
    if (w <= 0 || h <= 0) fail(path + ": decoded a frame without a size");
    out.width = w;
    out.height = h;
    if (sampling.keep_yuv && rotation == 0 && keep_as_yuv(f, out)) return;
    // SWS_BICUBIC is the ffmpeg CLI's default: frames equal those `ffmpeg -i V f%d.png` writes
    // (tests/video_test.cpp), so a video and its extracted frames classify the same.
    sws_ = sws_getCachedContext(sws_, w, h, AVPixelFormat(f->format), w, h, AV_PIX_FMT_RGB24,
                                SWS_BICUBIC, nullptr, nullptr, nullptr);
    if (!sws_) fail(path + ": cannot convert pixel format " + std::to_string(f->format));
    // The stream's own matrix and range (BT.709 for HD video), not swscale's BT.601 default.
    int cs = SWS_CS_DEFAULT;
    if (f->colorspace == AVCOL_SPC_BT709) cs = SWS_CS_ITU709;
    if (f->colorspace == AVCOL_SPC_BT2020_NCL || f->colorspace == AVCOL_SPC_BT2020_CL)
      cs = SWS_CS_BT2020;
    const bool full = f->color_range == AVCOL_RANGE_JPEG;
    sws_setColorspaceDetails(sws_, sws_getCoefficients(cs), full ? 1 : 0,
                             sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
    // swscale's SIMD paths write whole vectors past the end of a row: aligned rows and slack.
    constexpr int kRowAlign = 64;
    out.stride = (w * 3 + kRowAlign - 1) / kRowAlign * kRowAlign;
    out.rgb.resize(size_t(out.stride) * h + kRowAlign);
    uint8_t* dst[4] = {out.rgb.data(), nullptr, nullptr, nullptr};
    int dst_stride[4] = {out.stride, 0, 0, 0};
    int rows = sws_scale(sws_, f->data, f->linesize, 0, h, dst, dst_stride);
    if (rows != h) fail(path + ": colour conversion failed");
    if (rotation != 0) rotate(out, rotation);
  }

 private:
  // Turns an RGB frame `degrees` clockwise (90, 180, 270), as the ffmpeg CLI's autorotation
  // does (transpose=clock, hflip+vflip, transpose=cclock).
  static void rotate(Frame& f, int degrees) {
    const int w = f.width, h = f.height;
    const int ow = degrees == 180 ? w : h, oh = degrees == 180 ? h : w;
    const int stride = (ow * 3 + 63) / 64 * 64;
    std::vector<uint8_t> rgb(size_t(stride) * oh + 64);
    for (int y = 0; y < oh; ++y)
      for (int x = 0; x < ow; ++x) {
        // The source pixel (sx, sy) that lands at (x, y).
        const int sx = degrees == 90 ? y : degrees == 180 ? w - 1 - x : w - 1 - y;
        const int sy = degrees == 90 ? h - 1 - x : degrees == 180 ? h - 1 - y : x;
        std::copy_n(f.rgb.data() + size_t(sy) * f.stride + size_t(sx) * 3, 3,
                    rgb.data() + size_t(y) * stride + size_t(x) * 3);
      }
    f.rgb = std::move(rgb);
    f.width = ow;
    f.height = oh;
    f.stride = stride;
  }

  // The matrices the YUV kernels know: BT.601 (also when unspecified) and BT.709.
  static bool supported_matrix(const AVFrame* f) {
    const auto cs = f->colorspace;
    return cs == AVCOL_SPC_UNSPECIFIED || cs == AVCOL_SPC_BT709 || cs == AVCOL_SPC_BT470BG ||
           cs == AVCOL_SPC_SMPTE170M;
  }
  static ColorSpec color_of(const AVFrame* f) {
    const bool jpeg = f->format == AV_PIX_FMT_YUVJ420P;
    return {f->colorspace == AVCOL_SPC_BT709, jpeg || f->color_range == AVCOL_RANGE_JPEG};
  }

  // 8-bit 4:2:0 frames in BT.601 or BT.709: the planes as they are.
  static bool keep_as_yuv(const AVFrame* f, Frame& out) {
    const auto fmt = AVPixelFormat(f->format);
    if ((fmt != AV_PIX_FMT_YUV420P && fmt != AV_PIX_FMT_YUVJ420P) || !supported_matrix(f))
      return false;
    const int w = f->width, h = f->height, cw = (w + 1) / 2, ch = (h + 1) / 2;
    out.is_yuv = true;
    out.color = color_of(f);
    out.yuv.resize(size_t(w) * h + 2 * size_t(cw) * ch);
    uint8_t* dst = out.yuv.data();
    for (int y = 0; y < h; ++y, dst += w)
      std::copy_n(f->data[0] + int64_t(y) * f->linesize[0], w, dst);
    for (int p = 1; p <= 2; ++p)
      for (int y = 0; y < ch; ++y, dst += cw)
        std::copy_n(f->data[p] + int64_t(y) * f->linesize[p], cw, dst);
    return true;
  }

  SwsContext* sws_ = nullptr;
  AVFrame* host_ = nullptr;
};

// The bytes of a clip as FFmpeg's demuxers read them (a custom AVIOContext): a file, opened
// non-blocking and waited on with poll(), so that a read that gets no data for `stall_s` ends
// the clip (a pipe nobody writes to, a stalled device) instead of hanging the run; or bytes in
// memory (ClipDecoder::add_bytes: the fuzz target's).
class ClipIo {
 public:
  ClipIo(const std::string& path, double stall_s, const std::atomic<bool>* interrupt)
      : stall_s_(stall_s), interrupt_(interrupt) {
    // Standard input ("-", FFmpeg's "pipe:0"): a copy of its descriptor, read like a pipe.
    if (is_stdin_input(path)) {
      fd_ = ::fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 0);
      if (fd_ >= 0) ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
    } else {
      fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    }
    if (fd_ < 0) fail(path + ": cannot open video: " + system_words(errno));
    struct stat st {};
    const bool known = ::fstat(fd_, &st) == 0;
    regular_ = known && S_ISREG(st.st_mode);
    fifo_ = known && S_ISFIFO(st.st_mode);
    size_ = regular_ ? int64_t(st.st_size) : -1;
    try {
      if (known && S_ISDIR(st.st_mode)) fail(path + ": cannot open video: it is a folder");
      make_context(path);
    } catch (...) {
      ::close(fd_);
      throw;
    }
  }
  ClipIo(const std::string& name, std::shared_ptr<const std::string> bytes)
      : bytes_(std::move(bytes)), regular_(true), size_(int64_t(bytes_->size())) {
    make_context(name);
  }
  ~ClipIo() {
    if (ctx_) av_freep(&ctx_->buffer);
    avio_context_free(&ctx_);
    if (fd_ >= 0) ::close(fd_);
  }
  ClipIo(const ClipIo&) = delete;
  ClipIo& operator=(const ClipIo&) = delete;

  AVIOContext* context() const { return ctx_; }
  bool stalled() const { return stalled_; }

 private:
  static std::string system_words(int err) { return av_error(AVERROR(err)); }

  void make_context(const std::string& path) {
    constexpr int kBuffer = 1 << 16;
    auto* buffer = static_cast<uint8_t*>(av_malloc(kBuffer));
    if (!buffer) fail(path + ": out of memory");
    ctx_ = avio_alloc_context(buffer, kBuffer, 0, this, &ClipIo::read, nullptr,
                              regular_ ? &ClipIo::seek : nullptr);
    if (!ctx_) {
      av_free(buffer);
      fail(path + ": out of memory");
    }
    ctx_->seekable = regular_ ? AVIO_SEEKABLE_NORMAL : 0;
  }

  static int read(void* self, uint8_t* buf, int size) {
    auto* io = static_cast<ClipIo*>(self);
    if (io->bytes_) {
      const int64_t left = io->size_ - io->pos_;
      if (left <= 0) return AVERROR_EOF;
      const int n = int(std::min<int64_t>(left, size));
      std::memcpy(buf, io->bytes_->data() + io->pos_, size_t(n));
      io->pos_ += n;
      return n;
    }
    const auto t0 = Clock::now();
    for (;;) {
      const ssize_t n = ::read(io->fd_, buf, size_t(size));
      if (n > 0) {
        io->got_bytes_ = true;
        return int(n);
      }
      // A FIFO no writer has opened yet reads as its end: wait for one as for data.
      if (n == 0 && !(io->fifo_ && !io->got_bytes_)) return AVERROR_EOF;
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return AVERROR(errno);
      if (seconds_since(t0) > io->stall_s_) {
        io->stalled_ = true;
        return AVERROR_EXIT;
      }
      if (io->interrupt_ && io->interrupt_->load()) return AVERROR_EXIT;
      pollfd p{io->fd_, POLLIN, 0};
      if (n == 0)
        ::usleep(20000);  // no writer yet: poll would not wait
      else
        ::poll(&p, 1, 100);
    }
  }

  static int64_t seek(void* self, int64_t offset, int whence) {
    auto* io = static_cast<ClipIo*>(self);
    if (whence == AVSEEK_SIZE) return io->size_;
    whence &= ~AVSEEK_FORCE;
    if (io->bytes_) {
      const int64_t to = whence == SEEK_SET   ? offset
                         : whence == SEEK_CUR ? io->pos_ + offset
                         : whence == SEEK_END ? io->size_ + offset
                                              : -1;
      if (to < 0 || to > io->size_) return AVERROR(EINVAL);
      return io->pos_ = to;
    }
    const off_t to = ::lseek(io->fd_, off_t(offset), whence);
    return to < 0 ? AVERROR(errno) : int64_t(to);
  }

  int fd_ = -1;
  std::shared_ptr<const std::string> bytes_;
  bool regular_ = false, stalled_ = false, fifo_ = false, got_bytes_ = false;
  int64_t size_ = -1, pos_ = 0;
  double stall_s_ = 60;
  const std::atomic<bool>* interrupt_ = nullptr;
  AVIOContext* ctx_ = nullptr;
};

class ClipDecoderImpl final : public ClipDecoder {
 public:
  ClipDecoderImpl(const SamplingOptions& sampling, const DecodeOptions& options)
      : sampling_(sampling), options_(options) {
    av_log_set_level(AV_LOG_QUIET);
    if (options_.kind == DecoderKind::Nvdec && !options_.sink)
      fail("internal error: NVDEC decoding needs a device frame sink");
    pkt_ = av_packet_alloc();
    frame_ = av_frame_alloc();
    if (!pkt_ || !frame_) fail("out of memory creating a video decoder");
  }

  ~ClipDecoderImpl() override {
    close_input();
    close_decoder();
    av_frame_free(&frame_);
    av_packet_free(&pkt_);
  }

  void add(int clip, const std::string& path) override {
    Clip c;
    c.id = clip;
    c.path = path;
    queued_.push_back(std::move(c));
  }
  void add_bytes(int clip, const std::string& name,
                 std::shared_ptr<const std::string> bytes) override {
    Clip c;
    c.id = clip;
    c.path = name;
    c.bytes = std::move(bytes);
    queued_.push_back(std::move(c));
  }
  void flush() override { flush_ = true; }
  int decoders_opened() const override { return decoders_opened_; }

  bool next(ClipEvent& event) override {
    for (;;) {
      if (!ready_.empty()) {
        event = std::move(ready_.front());
        ready_.pop_front();
        return true;
      }
      if (dec_ && receive()) continue;
      if (!feed()) return false;
    }
  }

 private:
  struct Clip {
    int id = 0;
    std::string path;
    std::shared_ptr<const std::string> bytes;  // read from memory instead of `path`
    int64_t seq = 0;  // its number in this decoder's stream, in the high bits of its timestamps
    int64_t decoded = 0, kept = 0;
    int64_t packets = 0;  // sent to the decoder
    std::string error, warning;
    // Each packet's own time stamp (its pts, else its dts) by packet number: the decoder only
    // sees the stamps that carry the clip's number, and a frame's says which packet it came from.
    std::vector<int64_t> pts;
    double time_base = 0;   // seconds per time stamp unit
    double fps = 0;         // the stream's average frame rate
    double duration_s = 0;  // the stream's duration, or the file's
    int rotation = 0;       // degrees clockwise that make its frames upright
    int64_t lost = 0;       // packets or frames the decoder refused (skipped, as ffmpeg does)
    std::string lost_why;   // the first refusal's reason
    std::string hint;       // what to do when it fails (an MP4 on a stream that cannot seek)
  };

  // The clip a packet or frame stamped with `seq` belongs to (nullptr: none in flight).
  Clip* clip_of(int64_t seq) {
    for (Clip& c : inflight_)
      if (c.seq == seq) return &c;
    return nullptr;
  }

  // A packet or frame the decoder refused: skipped, counted in its clip's row.
  void lost(Clip* c, int rc) {
    if (!c) return;
    if (c->lost++ == 0) c->lost_why = av_error(rc);
  }

  // Takes one frame from the decoder; false when it needs input.
  bool receive() {
    const int rc = avcodec_receive_frame(dec_, frame_);
    if (rc == 0) {
      on_frame();
      av_frame_unref(frame_);
      return true;
    }
    if (rc == AVERROR_EOF) {  // drained: every clip fed to it is complete
      close_decoder();
      end_before(input_open() ? inflight_.back().seq : INT64_MAX);
      return true;
    }
    if (rc == AVERROR(EAGAIN) && !draining_) return false;
    // Any other refusal loses one frame, and decoding goes on with the next packet (as the
    // ffmpeg CLI does after "Error while decoding stream"); the clip's row counts the losses.
    lost(inflight_.empty() ? nullptr : &inflight_[0], rc);
    if (draining_) {  // it cannot give the rest: the clips fed to it end with what they have
      close_decoder();
      end_before(input_open() ? inflight_.back().seq : INT64_MAX);
      return true;
    }
    return false;
  }

  void on_frame() {
    // The clip by the timestamp's high bits; a frame without one belongs to the oldest clip.
    const int64_t seq = frame_->pts != AV_NOPTS_VALUE ? frame_->pts >> kSeqShift
                                                      : (inflight_.empty() ? -1 : inflight_[0].seq);
    end_before(seq);
    if (inflight_.empty() || inflight_[0].seq != seq) return;
    Clip& c = inflight_[0];
    if (!c.error.empty()) return;
    const int64_t index = c.decoded++;
    if (index % std::max(sampling_.stride, 1) != 0) return;
    if (sampling_.max_frames > 0 && c.kept >= sampling_.max_frames) return;
    ClipEvent ev;
    ev.clip = c.id;
    try {
      converter_.convert(c.path, frame_, index, sampling_,
                         options_.kind == DecoderKind::Nvdec ? options_.sink : nullptr, c.rotation,
                         ev.frame, c.warning);
    } catch (const std::exception& e) {
      c.error = e.what();
      return;
    }
    ev.frame.time_s = time_of(c, index);
    ++c.kept;
    ready_.push_back(std::move(ev));
  }

  // The presentation time of frame_ (the `index`-th frame of clip c): its packet's own time
  // stamp, else its place at the stream's frame rate.
  double time_of(const Clip& c, int64_t index) const {
    const int64_t packet =
        frame_->pts != AV_NOPTS_VALUE ? frame_->pts & ((int64_t(1) << kSeqShift) - 1) : -1;
    if (packet >= 0 && packet < int64_t(c.pts.size()) && c.pts[size_t(packet)] != AV_NOPTS_VALUE)
      return double(c.pts[size_t(packet)]) * c.time_base;
    return c.fps > 0 ? double(index) / c.fps : double(index) / sampling_.fps;
  }

  // Ends the clips in flight numbered below `seq`, in order.
  void end_before(int64_t seq) {
    while (!inflight_.empty() && inflight_[0].seq < seq) {
      Clip& c = inflight_[0];
      if (input_open() && inflight_.size() == 1) return;  // the clip being read
      ClipEvent ev;
      ev.end = true;
      ev.clip = c.id;
      ev.error = c.error;
      if (ev.error.empty() && c.kept == 0)
        ev.error = c.path + ": no frames could be decoded" +
                   (c.lost ? " (FFmpeg: " + c.lost_why + ")" : "") + c.hint;
      ev.warning = c.warning;
      if (c.lost)
        ev.warning +=
            (ev.warning.empty() ? "" : "; ") + std::to_string(c.lost) +
            " packets or frames could not be decoded and were skipped (FFmpeg: " + c.lost_why + ")";
      ev.stats = {c.decoded, c.fps, c.duration_s};
      ready_.push_back(std::move(ev));
      inflight_.pop_front();
    }
  }

  // Sends the decoder its next input; false when there is none until add() or flush().
  bool feed() {
    for (;;) {
      if (!pending_.empty()) {  // a packet the decoder could not take yet
        const int rc = avcodec_send_packet(dec_, pending_.front());
        if (rc == AVERROR(EAGAIN)) return true;  // it has frames to give first
        if (rc < 0) lost(clip_of(pending_.front()->pts >> kSeqShift), rc);  // skipped
        av_packet_free(&pending_.front());
        pending_.pop_front();
        return true;
      }
      if (!input_open()) {
        if (queued_.empty()) {
          if (!flush_) return false;
          if (dec_ && !draining_) return drain();
          if (!dec_) {
            end_before(INT64_MAX);
            flush_ = false;
            return !ready_.empty();
          }
          return true;  // draining: frames still to come
        }
        open_next();
        continue;
      }
      if (!dec_) {
        open_decoder();
        continue;
      }
      // A clip starts on a drained, flushed decoder: no frame of the clip before it stays as a
      // reference, so a damaged clip is concealed from its own frames only and its result does
      // not depend on the clips decoded before it. (Another format needs another decoder too.)
      if (earlier_clip_fed()) return drain();
      if (!read_packet()) continue;
      return true;
    }
  }

  bool drain() {
    avcodec_send_packet(dec_, nullptr);
    draining_ = true;
    return true;
  }

  bool input_open() const { return fmt_ != nullptr; }

  // Whether the decoder holds packets of a clip before the one being read.
  bool earlier_clip_fed() const {
    for (size_t i = 0; i + 1 < inflight_.size(); ++i)
      if (inflight_[i].packets > 0) return true;
    return false;
  }

  static std::string seconds_text(double s) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%g", s);
    return buf;
  }
  std::string read_error(const std::string& what, int rc) const {
    if ((io_ && io_->stalled()) || watchdog_fired_)
      return what + ": no data for " + seconds_text(stall_limit_s_) + " s, reading gave up" +
             (options_.stall_s > 0 ? "" : " (FERVID_STALL_SECONDS sets the limit)");
    return what + ": " + av_error(rc);
  }

  // Opens the next queued clip's demuxer (and bitstream filter). A clip that cannot be opened
  // joins the clips in flight with its error, to end in its turn.
  void open_next() {
    Clip c = std::move(queued_.front());
    queued_.pop_front();
    c.seq = next_seq_++;
    inflight_.push_back(std::move(c));
    try {
      open_input(inflight_.back());
    } catch (const std::exception& e) {
      close_input();
      inflight_.back().error = e.what();
      // It ends after the clips still in the decoder, or now when there are none.
      if (!dec_) end_before(inflight_.back().seq + 1);
    }
  }

  // The input format DecodeOptions::input_format names (FFmpeg's -f), "v4l2" for /dev/video*,
  // else none (probed from the bytes).
  static const AVInputFormat* forced_format(const std::string& path, std::string name) {
    if (name.empty() && path.rfind("/dev/video", 0) == 0) name = "v4l2";
    if (name.empty()) return nullptr;
#if FERVID_HAVE_AVDEVICE
    static std::once_flag devices;
    std::call_once(devices, [] { avdevice_register_all(); });
    const char* missing = "";
#else
    const char* missing = " (this fervid was built without libavdevice: no cameras or screens)";
#endif
    const AVInputFormat* f = av_find_input_format(name.c_str());
    if (!f) fail(path + ": FFmpeg has no input format '" + name + "'" + missing);
    return f;
  }

  void open_input(Clip& c) {
    const std::string& path = c.path;
    const AVInputFormat* forced = c.bytes ? nullptr : forced_format(path, options_.input_format);
    // FFmpeg opens URLs and devices itself (a device format reads no file).
    const bool url =
        !c.bytes && (is_url_input(path) || (forced && (forced->flags & AVFMT_NOFILE) != 0));
    if (!url)
      io_ = c.bytes ? std::make_unique<ClipIo>(path, c.bytes)
                    : std::make_unique<ClipIo>(path, stall_limit_s_, options_.interrupt);
    fmt_ = avformat_alloc_context();
    if (!fmt_) fail(path + ": out of memory");
    if (options_.interrupt) fmt_->interrupt_callback = {&ClipDecoderImpl::interrupted, this};
    last_data_ = Clock::now();
    last_pos_ = -1;
    watchdog_fired_ = false;
    AVDictionary* opts = nullptr;
    if (url) {
      // FFmpeg's own protocol (http, https, ...): a read that waits longer than the stall limit
      // fails (rw_timeout, microseconds).
      static std::once_flag network;
      std::call_once(network, [] { avformat_network_init(); });
      av_dict_set(&opts, "rw_timeout", std::to_string(int64_t(stall_limit_s_ * 1e6)).c_str(), 0);
    } else {
      fmt_->pb = io_->context();
    }
    for (const auto& [key, value] : options_.format_options)
      av_dict_set(&opts, key.c_str(), value.c_str(), 0);
    int rc = avformat_open_input(&fmt_, path.c_str(), forced, &opts);
    const AVDictionaryEntry* unused = av_dict_get(opts, "", nullptr, AV_DICT_IGNORE_SUFFIX);
    const std::string unknown =
        unused && std::string(unused->key) != "rw_timeout" ? unused->key : "";
    av_dict_free(&opts);
    if (rc < 0) {
      fmt_ = nullptr;  // freed by avformat_open_input
      fail(read_error(path + ": cannot open video", rc));
    }
    if (!unknown.empty())
      fail(path + ": FFmpeg's " + fmt_->iformat->name + " input takes no option '" + unknown + "'");
    rc = avformat_find_stream_info(fmt_, nullptr);
    if (rc < 0) fail(read_error(path + ": cannot read stream info", rc));
    const AVCodec* codec = nullptr;
    stream_ = av_find_best_stream(fmt_, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (stream_ == AVERROR_STREAM_NOT_FOUND) fail(path + ": no video stream");
    if (stream_ < 0 || !codec) fail(path + ": no decoder for its video stream");
    const AVStream* st = fmt_->streams[stream_];
    c.time_base = av_q2d(st->time_base);
    c.fps =
        st->avg_frame_rate.num > 0 && st->avg_frame_rate.den > 0 ? av_q2d(st->avg_frame_rate) : 0.0;
    c.duration_s = st->duration != AV_NOPTS_VALUE     ? double(st->duration) * c.time_base
                   : fmt_->duration != AV_NOPTS_VALUE ? double(fmt_->duration) / AV_TIME_BASE
                                                      : 0.0;
    c.rotation = rotation_of(st, c.warning);
    if (!(fmt_->pb && (fmt_->pb->seekable & AVIO_SEEKABLE_NORMAL)) &&
        std::string(fmt_->iformat->name).find("mp4") != std::string::npos)
      c.hint =
          " (an MP4 read from a stream that cannot seek needs its index first: ffmpeg -i IN -c "
          "copy -movflags +faststart OUT)";
    codec_ = codec;
    hw_ = options_.kind == DecoderKind::Nvdec && nvdec_takes(codec);
    if (options_.kind == DecoderKind::Nvdec && !hw_)
      c.warning += (c.warning.empty() ? "" : "; ") +
                   std::string("decoded on the CPU: NVDEC does not take ") + codec->name;
  }

  void close_input() {
    avformat_close_input(&fmt_);  // a custom AVIOContext stays: io_ frees it
    io_.reset();
    stream_ = -1;
  }

  void open_decoder() {
    Clip& c = inflight_.back();
    try {
      dec_ = avcodec_alloc_context3(codec_);
      if (!dec_) fail(c.path + ": out of memory creating a decoder");
      int rc = avcodec_parameters_to_context(dec_, fmt_->streams[stream_]->codecpar);
      if (rc < 0) fail(c.path + ": bad codec parameters: " + av_error(rc));
      if (hw_) {
        std::string why;
        AVBufferRef* device = cuda_device_context(&why);
        if (!device) fail(c.path + ": " + why);
        dec_->hw_device_ctx = av_buffer_ref(device);
        dec_->get_format = prefer_cuda;
        dec_->thread_count = 1;
      } else {
        // Slice threads only: frame threads conceal damage in an order that depends on their
        // timing, so a damaged clip's frames would differ from run to run. Decode threads
        // (--decode-threads) take clips in parallel instead.
        dec_->thread_count = 0;
        dec_->thread_type = FF_THREAD_SLICE;
      }
      rc = avcodec_open2(dec_, codec_, nullptr);
      if (rc < 0) fail(c.path + ": cannot open the " + codec_->name + " decoder: " + av_error(rc));
      draining_ = false;
      ++decoders_opened_;
    } catch (const std::exception& e) {
      close_decoder();
      close_input();
      c.error = e.what();
      end_before(INT64_MAX);
    }
  }

  void close_decoder() {
    for (AVPacket*& p : pending_) av_packet_free(&p);
    pending_.clear();
    avcodec_free_context(&dec_);
    draining_ = false;
  }

  // Reads one packet of the current clip and queues it (through the bitstream filter) for the
  // decoder; false when the clip's input ended instead.
  bool read_packet() {
    Clip& c = inflight_.back();
    if (sampling_.max_frames > 0 && c.kept >= sampling_.max_frames) {
      close_input();  // enough frames: the rest of the clip is not read
      return false;
    }
    const int rc = av_read_frame(fmt_, pkt_);
    if (rc >= 0) last_data_ = Clock::now();
    if (rc == AVERROR_EOF ||
        (rc < 0 && !(io_ && io_->stalled()) && !watchdog_fired_ && avio_feof(fmt_->pb))) {
      close_input();
      return false;
    }
    if (rc < 0) {
      c.error = read_error(c.path + ": reading failed", rc) + c.hint;
      close_input();
      return false;
    }
    if (pkt_->stream_index != stream_) {
      av_packet_unref(pkt_);
      return true;
    }
    queue_packet(c);
    return true;
  }

  // Stamps pkt_ with the clip's number and the packet's (its own stamp kept in c.pts) and queues
  // it.
  void queue_packet(Clip& c) {
    c.pts.push_back(pkt_->pts != AV_NOPTS_VALUE ? pkt_->pts : pkt_->dts);
    pkt_->pts = (c.seq << kSeqShift) + (c.packets++ & ((int64_t(1) << kSeqShift) - 1));
    pkt_->dts = AV_NOPTS_VALUE;
    AVPacket* p = av_packet_alloc();
    if (!p) fail(c.path + ": out of memory");
    av_packet_move_ref(p, pkt_);
    pending_.push_back(p);
  }

  // Degrees clockwise (0, 90, 180, 270) that turn the stream's frames upright, from its display
  // matrix, as the ffmpeg CLI's autorotation reads it; another angle is left as it is, with a
  // warning.
  static int rotation_of(const AVStream* st, std::string& warning) {
    const uint8_t* m = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, nullptr);
    if (!m) return 0;
    double theta = -std::round(av_display_rotation_get(reinterpret_cast<const int32_t*>(m)));
    if (std::isnan(theta)) return 0;
    theta -= 360 * std::floor(theta / 360 + 0.9 / 360);
    for (int r : {0, 90, 180, 270, 360})
      if (std::fabs(theta - r) < 1.0) return r % 360;
    warning = "the stream says it is rotated by " + std::to_string(int(theta)) +
              " degrees; frames used as stored";
    return 0;
  }

  double stall_limit() const {
    if (options_.stall_s > 0) return options_.stall_s;
    const char* s = std::getenv("FERVID_STALL_SECONDS");
    const double v = s ? std::atof(s) : 0;
    return v > 0 ? v : 60.0;
  }
  // A live source's (DecodeOptions::interrupt) FFmpeg callback: its stop, or no packet for the
  // stall limit (a watchdog for every protocol: some, as UDP, wait on their own clock).
  static int interrupted(void* self) {
    auto* d = static_cast<ClipDecoderImpl*>(self);
    if (d->options_.interrupt->load()) return 1;
    if (d->fmt_ && d->fmt_->pb && d->fmt_->pb->pos != d->last_pos_) {  // bytes came (a probe)
      d->last_pos_ = d->fmt_->pb->pos;
      d->last_data_ = Clock::now();
    }
    if (seconds_since(d->last_data_) <= d->stall_limit_s_) return 0;
    d->watchdog_fired_ = true;
    return 1;
  }

  static constexpr int kSeqShift = 32;

  SamplingOptions sampling_;
  DecodeOptions options_;
  double stall_limit_s_ = stall_limit();
  Clock::time_point last_data_ = Clock::now();
  int64_t last_pos_ = -1;
  bool watchdog_fired_ = false;
  std::deque<Clip> queued_;    // added, not opened yet
  std::deque<Clip> inflight_;  // opened and not ended; the last one is being read when fmt_ is set
  std::deque<ClipEvent> ready_;
  std::deque<AVPacket*> pending_;
  int64_t next_seq_ = 0;
  int decoders_opened_ = 0;
  bool flush_ = false;
  // The clip being read.
  std::unique_ptr<ClipIo> io_;
  AVFormatContext* fmt_ = nullptr;
  const AVCodec* codec_ = nullptr;
  int stream_ = -1;
  bool hw_ = false;  // NVDEC takes its codec
  // The decoder.
  AVCodecContext* dec_ = nullptr;
  bool draining_ = false;
  AVPacket* pkt_ = nullptr;
  AVFrame* frame_ = nullptr;
  Converter converter_;
};

// One video: a ClipDecoder given a single clip.
class VideoSource final : public FrameSource {
 public:
  VideoSource(const std::string& path, const SamplingOptions& sampling,
              const DecodeOptions& options = {})
      : decoder_(sampling, options) {
    decoder_.add(0, path);
    decoder_.flush();
  }
  bool next(Frame& out) override {
    ClipEvent ev;
    while (decoder_.next(ev)) {
      if (!ev.end) {
        out = std::move(ev.frame);
        return true;
      }
      stats_ = ev.stats;
      warning_ = ev.warning;
      if (!ev.error.empty()) fail(ev.error);
    }
    return false;
  }
  SourceStats stats() const override { return stats_; }
  std::string warning() const override { return warning_; }

 private:
  ClipDecoderImpl decoder_;
  SourceStats stats_;
  std::string warning_;
};

}  // namespace

std::unique_ptr<FrameSource> open_video(const std::string& path, const SamplingOptions& sampling,
                                        const DecodeOptions& options) {
  return std::make_unique<VideoSource>(path, sampling, options);
}

std::unique_ptr<FrameSource> open_live(const std::string& path, const DecodeOptions& options) {
  return std::make_unique<VideoSource>(path, SamplingOptions{}, options);
}

std::unique_ptr<ClipDecoder> ClipDecoder::create(const SamplingOptions& sampling,
                                                 const DecodeOptions& options) {
  return std::make_unique<ClipDecoderImpl>(sampling, options);
}

bool nvdec_in_ffmpeg() {
  const AVCodec* h264 = avcodec_find_decoder(AV_CODEC_ID_H264);
  return h264 && nvdec_takes(h264);
}

}  // namespace fervid
