// Video decoding behind open_frames(): FFmpeg (video_ffmpeg.cpp) or, in a build without FFmpeg
// (FERVID_VIDEO=OFF, the portable GPU-machine build), a stub that refuses videos by name.
#pragma once

#include <memory>
#include <string>

#include "video.h"

namespace fervid {

// One video file through a ClipDecoder given that clip alone; `options` picks the decoder (NVDEC
// into a backend's frame sink, fervid faces' one pass on the GPU).
std::unique_ptr<FrameSource> open_video(const std::string& path, const SamplingOptions& sampling,
                                        const DecodeOptions& options = {});
// A live source (fervid/live.h): every frame, on the CPU, with `options`' stall limit and stop.
std::unique_ptr<FrameSource> open_live(const std::string& path, const DecodeOptions& options);
// Whether the FFmpeg linked in has the NVDEC (CUDA) hwaccel for H.264.
bool nvdec_in_ffmpeg();

}  // namespace fervid
