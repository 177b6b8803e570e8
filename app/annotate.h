// fervid classify --annotate: each input's frames again, with the crop box, the frame's label and
// probability, and a bar per class drawn on them, encoded as a video (fervid/video_encoder.h) at
// the source's times for the frames kept.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "canvas.h"
#include "fervid/faces.h"
#include "fervid/fervid.h"
#include "fervid/output_file.h"
#include "fervid/video_encoder.h"

namespace fervid::cli {

// Where --annotate OUT puts each input's video: OUT itself when it names a video file
// (VideoEncoder::takes_name; one input only), else OUT/<the input's file name>.mp4 (made unique),
// OUT made as a folder when missing. Fails (OptionError) before any work when that cannot be.
std::vector<OutputTarget> annotate_targets(const std::string& out,
                                           const std::vector<InputItem>& inputs);

// `name` with anything but letters, digits, '-', '_' and '.' made '_', unique among `used` (a
// "-2", "-3" ... suffix), and added to it: the names of the files and folders written per input
// (explain's folders too).
std::string unique_name_for(const std::string& name, std::set<std::string>& used);
// An input's file name (a folder's own name for "frames/").
std::string input_file_name(const std::string& path);

// Draws `row`'s annotation on a source frame: a bar per class (the label's in white text) and
// the frame's time on a darkened panel in the corner the crop covers least, then the crop box
// and, above it, the label and its probability on a tag in the label's colour. Sizes follow the
// frame's height (text at 2x for 480 or 720 rows, 3x for 1080).
void annotate_frame(scoring::Canvas& frame, const FrameResult& row,
                    const std::vector<std::string>& classes);

// `input` decoded again with `sampling` (that of the run that made `r`), each frame with a row
// in `r` drawn on (annotate_frame) and encoded to `target` at its time; returns the encoder's
// name. Throws (InputError for the input, Error for the video) and leaves no file behind on
// failure, or when `stop` becomes true (then it returns "").
std::string write_annotated(const InputItem& input, const VideoResult& r,
                            const SamplingOptions& sampling,
                            const std::vector<std::string>& classes, const OutputTarget& target,
                            VideoCodec codec = VideoCodec::Auto,
                            const std::atomic<bool>* stop = nullptr);

// `fervid faces --annotate`: each face of a frame (`faces`, the frame's rows) outlined in its
// track's colour with a tag: "#<track>", the label and its probability when classified,
// "(predicted)" where the track coasted; the frame and its time in the top-left corner.
void annotate_faces(scoring::Canvas& frame, std::span<const FaceRow> faces,
                    const std::vector<std::string>& classes);
// `input` decoded again with `sampling` (that of the faces run), each frame with rows in `v`
// drawn on (annotate_faces) and encoded to `target`; returns the encoder's name. Throws as
// write_annotated does.
std::string write_annotated_faces(const InputItem& input, const VideoFaces& v,
                                  const SamplingOptions& sampling,
                                  const std::vector<std::string>& classes,
                                  const OutputTarget& target);

// Annotates the results of a run as they come, on a thread of its own so that the run goes on.
class Annotator {
 public:
  Annotator(std::vector<std::string> classes, SamplingOptions sampling);
  ~Annotator();  // stops: what is not written by then is not written (no .part stays)
  // Queues input `input`'s video to `target` (results without frames are left out).
  void add(const InputItem& input, const VideoResult& r, const OutputTarget& target);
  // Waits for the queue; returns the lines of the videos that failed ("<path>: <reason>").
  std::vector<std::string> finish();
  int written() const { return written_; }
  std::string codec() const { return codec_; }

 private:
  struct Job {
    InputItem input;
    VideoResult result;
    OutputTarget target;
  };
  void work();
  std::vector<std::string> classes_;
  SamplingOptions sampling_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool closing_ = false;
  std::atomic<bool> stop_{false};
  std::vector<std::string> failures_;
  int written_ = 0;
  std::string codec_;
  std::thread worker_;
};

}  // namespace fervid::cli
