// Live sources (docs/live.md): a network stream, a pipe or a device, classified frame by frame as
// it arrives, with a vote over a sliding window emitted every hop. Frames that arrive while the
// classifier is busy are dropped (each source keeps only its newest frame) and counted, so that
// what is reported is about now; a source that stalls or drops is reopened with backoff.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "fervid/crop.h"
#include "fervid/model_spec.h"

namespace fervid {

class Engine;

struct LiveOptions {
  // The vote's window: the frames classified in the last window_s seconds (wall clock, by their
  // arrival), or the last window_frames of them when that is set (> 0).
  double window_s = 2.0;
  int window_frames = 0;
  double hop_s = 1.0;  // a window row every hop_s seconds of each source
  CropSpec crop;
  VoteMode vote = VoteMode::Confidence;
  bool frames = false;  // a row per classified frame too
  // A source that gives no data for stall_s seconds, or fails, is lost: a network source is
  // reopened (waits of 0.5 s doubling to 8 s) until it comes back or has been away give_up_s
  // (0: never give up); a file, a pipe or standard input ends at its end.
  double stall_s = 10.0;
  double give_up_s = 60.0;
  // FFmpeg's options for opening each source (rtsp_transport=tcp, rtsp_flags=listen, ...): a key
  // the source's protocol and demuxer do not take is a loss that names it.
  std::vector<std::pair<std::string, std::string>> source_options;
  // FFmpeg's input format for the sources (-f: v4l2 for a camera, the default for /dev/video*;
  // x11grab, lavfi, mpegts...), "" to probe each.
  std::string source_format;
};

// Latency from a frame's arrival (decoded) to its result being handed over, in milliseconds.
struct LatencySummary {
  int64_t frames = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
};

struct LiveEvent {
  // Start: a source opened (again after Back); Frame: one classified frame (LiveOptions::frames);
  // Window: the vote of a window; Lost / Back: a source failed / came back; End: a source is done
  // (its last window came before it).
  enum class Kind { Start, Frame, Window, Lost, Back, End };
  Kind kind = Kind::Start;
  int source = 0;
  std::string name;   // the source as given
  double wall_s = 0;  // seconds since watch() began
  // Frame: the frame's index since the source (re)opened and its stream time; Window: the
  // window's first and last frames' stream times.
  int64_t frame_index = 0;
  double time_s = 0, from_s = 0, to_s = 0;
  int label = -1;                    // Frame, Window (-1: no finite probability)
  std::vector<float> probs;          // Frame: the frame's; Window: the mean over the window
  std::vector<int32_t> votes;        // Window: frames per class
  int frames = 0;                    // Window: frames in the window
  double latency_ms = 0;             // Frame
  int64_t arrived = 0, dropped = 0;  // Window: since the previous window row; End: in all
  int64_t classified = 0;            // End: in all
  double seconds = 0;                // End: from the source's first frame to its end
  LatencySummary latency;            // Window: of the window's frames; End: of all
  std::string reason;                // Lost: why; End: why it ended
  double away_s = 0;                 // Back: how long the source was lost
};

using LiveSink = std::function<void(const LiveEvent&)>;

// Watches `sources` (URLs FFmpeg opens: rtsp, udp, rtp, http(s), srt...; "-" for standard input;
// a file or FIFO) with `engine`, each on a reader thread of its own, until every source has
// ended or `stop` reads true (then each source's window in flight is emitted, and its End).
// Events reach `sink` on the calling thread, in order per source. A source that cannot be
// opened at all is a Lost event, then retried as any loss.
void watch(Engine& engine, const std::vector<std::string>& sources, const LiveOptions& options,
           const LiveSink& sink, const std::atomic<bool>& stop);

// An event as one JSON object on one line (no newline), the row `fervid live` writes and Python's
// Engine.watch() yields: "event" (start, frame, window, lost, back, end), "source", "wall_s" and
// the kind's fields (docs/live.md).
std::string live_event_json(const LiveEvent& e, const std::vector<std::string>& classes);

}  // namespace fervid
