#include "backends/cuda/frame_upload.h"

#include <omp.h>

#include <cstring>
#include <vector>

#include "cuda/check.h"
#include "fervid/error.h"

namespace fervid::cuda {

void* Staging::reserve(size_t bytes) {
  if (pending) done.synchronize();
  pending = false;
  if (host.bytes() < bytes) {
    host = Buffer();
    host = pinned_buffer(bytes + bytes / 4);
  }
  return host.data();
}

void Staging::release(cudaStream_t stream) {
  done.record(stream);
  pending = true;
}

FrameUploads::Slot& FrameUploads::next_slot(size_t bytes) {
  Slot& u = slots_[next_];
  next_ ^= 1;
  if (u.device.bytes() < bytes) {
    drain_();  // earlier batches may still read the old buffer
    stream_.synchronize();
    u.read_pending = false;
    u.device = Buffer();
    u.device = meter_.track(device_buffer(bytes + bytes / 4));
  }
  return u;
}

void FrameUploads::upload(Slot& u, const void* host, size_t bytes, cudaStream_t lane) {
  if (u.read_pending) FV_CUDA_CHECK(cudaStreamWaitEvent(stream_.get(), u.read.get(), 0));
  FV_CUDA_CHECK(
      cudaMemcpyAsync(u.device.data(), host, bytes, cudaMemcpyHostToDevice, stream_.get()));
  u.host.release(stream_.get());
  u.uploaded.record(stream_.get());
  FV_CUDA_CHECK(cudaStreamWaitEvent(lane, u.uploaded.get(), 0));
}

void FrameUploads::read_by(Slot& u, cudaStream_t lane) {
  u.read.record(lane);
  u.read_pending = true;
}

void FrameUploads::preprocess(std::span<const ImageView> frames, std::span<const CropRect> crops,
                              const Preprocess& pp, const Tensor& out, cudaStream_t lane) {
  const int n = int(frames.size());
  if (int(crops.size()) != n) fail("cuda preprocess: one crop per frame is needed");
  // The frames' crops, packed tightly after a table of StagedFrame.
  const size_t table = (size_t(n) * sizeof(StagedFrame) + 255) / 256 * 256;
  std::vector<StagedFrame> staged(n);
  size_t bytes = table;
  for (int i = 0; i < n; ++i) {
    const ImageView& f = frames[i];
    const CropRect& c = crops[i];
    if (!f.data || !crop_fits(c, f.width, f.height))
      fail("preprocess: " + crop_outside(c, f.width, f.height));
    const ResizeWindow w = resize_window(c.width, c.height, int(out.dim(1)), pp.resize);
    const CropRect r = turned_bounds(c, f.width, f.height);  // c itself when not turned
    StagedFrame& s = staged[i];
    s.offset = (long long)bytes;
    s.width = r.width;
    s.height = r.height;
    s.stride = r.width * 3;
    s.window = w;
    s.region_x = r.x;  // where the staged rows start in the frame (the copy below reads them)
    s.region_y = r.y;
    if (c.angle != 0) {
      s.turned = true;
      s.frame_width = f.width;
      s.frame_height = f.height;
      s.turn = turned_map(c, w);
    }
    bytes += size_t(r.height) * r.width * 3;
  }
  Slot& u = next_slot(bytes);
  auto* host = static_cast<uint8_t*>(u.host.reserve(bytes));
  std::memcpy(host, staged.data(), n * sizeof(StagedFrame));
#pragma omp parallel for schedule(dynamic)
  for (int i = 0; i < n; ++i) {
    const ImageView& f = frames[i];
    const StagedFrame& s = staged[i];
    const size_t row = size_t(s.width) * 3;
    for (int y = 0; y < s.height; ++y)
      std::memcpy(host + s.offset + y * row,
                  f.data + int64_t(s.region_y + y) * f.stride + int64_t(s.region_x) * 3, row);
  }
  upload(u, host, bytes, lane);
  auto* dev = static_cast<uint8_t*>(u.device.data());
  cuda::preprocess(dev, reinterpret_cast<const StagedFrame*>(dev), n, pp, out, lane);
  read_by(u, lane);
}

namespace {

// A host YUV frame's planes around its crop, from an even origin (so chroma rows and columns keep
// their parity), and where they go in the upload.
struct YuvRegion {
  int ex, ey, w, h, cw, ch;
  size_t y_off, u_off, v_off;
};

// The regions of the host frames packed after a table of `n` DeviceYuv; returns the bytes in all.
size_t plan_yuv_regions(std::span<const YuvView> frames, std::span<const CropRect> crops,
                        std::vector<YuvRegion>& regions) {
  const size_t n = frames.size();
  regions.assign(n, {});
  size_t bytes = (n * sizeof(DeviceYuv) + 255) / 256 * 256;
  for (size_t i = 0; i < n; ++i) {
    const YuvView& f = frames[i];
    const CropRect& c = crops[i];
    if (!f.y || !f.u || !f.v || (f.uv_step != 1 && f.uv_step != 2) ||
        !crop_fits(c, f.width, f.height))
      fail("preprocess_yuv420: " + crop_outside(c, f.width, f.height));
    if (c.angle != 0) fail("preprocess_yuv420: a turned crop needs RGB frames (preprocess)");
    YuvRegion& r = regions[i];
    if (f.on_device) continue;  // read where it is (an NVDEC frame in the frame sink's pool)
    r.ex = c.x & ~1;
    r.ey = c.y & ~1;
    r.w = c.x + c.width - r.ex;
    r.h = c.y + c.height - r.ey;
    r.cw = (r.w + 1) / 2 * f.uv_step;  // chroma bytes per row
    r.ch = (r.h + 1) / 2;
    r.y_off = bytes;
    bytes += size_t(r.w) * r.h;
    r.u_off = bytes;
    bytes += size_t(r.cw) * r.ch;
    r.v_off = bytes;
    if (f.uv_step == 1) bytes += size_t(r.cw) * r.ch;
  }
  return bytes;
}

// The table the kernel reads: where each frame's planes are on the device (`dev`: the upload's
// device buffer; an NVDEC frame's own pointers) and its crop within them.
void fill_yuv_table(std::span<const YuvView> frames, std::span<const CropRect> crops,
                    const std::vector<YuvRegion>& regions, uint8_t* dev, int size, int resize,
                    DeviceYuv* tbl) {
  for (size_t i = 0; i < frames.size(); ++i) {
    const YuvRegion& r = regions[i];
    const YuvView& f = frames[i];
    const CropRect& c = crops[i];
    const ResizeWindow window = resize_window(c.width, c.height, size, resize);
    if (f.on_device) {
      tbl[i] = {f.y, f.u, f.v, f.y_stride, f.uv_stride, f.uv_step, c, window};
      continue;
    }
    tbl[i].y = dev + r.y_off;
    tbl[i].u = dev + r.u_off;
    tbl[i].v = f.uv_step == 1 ? dev + r.v_off : dev + r.u_off + 1;
    tbl[i].y_stride = r.w;
    tbl[i].uv_stride = r.cw;
    tbl[i].uv_step = f.uv_step;
    tbl[i].crop = {c.x - r.ex, c.y - r.ey, c.width, c.height};
    tbl[i].window = window;
  }
}

// The host frames' regions into the pinned staging buffer.
void copy_yuv_regions(std::span<const YuvView> frames, const std::vector<YuvRegion>& regions,
                      uint8_t* host) {
  const int n = int(frames.size());
#pragma omp parallel for schedule(dynamic)
  for (int i = 0; i < n; ++i) {
    const YuvView& f = frames[i];
    const YuvRegion& r = regions[i];
    if (f.on_device) continue;
    for (int y = 0; y < r.h; ++y)
      std::memcpy(host + r.y_off + size_t(y) * r.w, f.y + int64_t(r.ey + y) * f.y_stride + r.ex,
                  size_t(r.w));
    const int64_t cx = int64_t(r.ex / 2) * f.uv_step;
    for (int y = 0; y < r.ch; ++y) {
      const int64_t row = int64_t(r.ey / 2 + y) * f.uv_stride + cx;
      std::memcpy(host + r.u_off + size_t(y) * r.cw, f.u + row, size_t(r.cw));
      if (f.uv_step == 1) std::memcpy(host + r.v_off + size_t(y) * r.cw, f.v + row, size_t(r.cw));
    }
  }
}

}  // namespace

void FrameUploads::preprocess_yuv420(std::span<const YuvView> frames,
                                     std::span<const CropRect> crops, const ColorSpec& cs,
                                     const Preprocess& pp, const Tensor& out, cudaStream_t lane,
                                     const Event& frames_read) {
  const int n = int(frames.size());
  if (int(crops.size()) != n) fail("cuda preprocess_yuv420: one crop per frame is needed");
  std::vector<YuvRegion> regions;
  const size_t bytes = plan_yuv_regions(frames, crops, regions);
  Slot& u = next_slot(bytes);
  auto* dev = static_cast<uint8_t*>(u.device.data());
  auto* host = static_cast<uint8_t*>(u.host.reserve(bytes));
  fill_yuv_table(frames, crops, regions, dev, int(out.dim(1)), pp.resize,
                 reinterpret_cast<DeviceYuv*>(host));
  copy_yuv_regions(frames, regions, host);
  upload(u, host, bytes, lane);
  cuda::preprocess_yuv420(reinterpret_cast<const DeviceYuv*>(dev), n, cs, pp, out, lane);
  read_by(u, lane);
  frames_read.record(lane);  // the frame sink's buffers read so far (NVDEC frames)
}

const void* TableUpload::upload(const void* src, size_t bytes, cudaStream_t lane) {
  void* host = staging_.reserve(bytes);
  std::memcpy(host, src, bytes);
  if (device_.bytes() < bytes) {
    drain_();
    device_ = Buffer();
    device_ = meter_.track(device_buffer(bytes * 2));
  }
  FV_CUDA_CHECK(cudaMemcpyAsync(device_.data(), host, bytes, cudaMemcpyHostToDevice, lane));
  staging_.release(lane);
  return device_.data();
}

}  // namespace fervid::cuda
