// The metrics of `fervid eval` (definitions: docs/metrics.md): frame and video accuracy,
// per-class precision/recall/F1, macro-F1, per-actor video accuracy and the confusion matrices,
// computed from the per-video rows (so that they agree with the rows a run writes).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "fervid/output_file.h"

namespace fervid::scoring {

struct EvalRow {
  std::string path;
  int truth = -1;               // class index
  int predicted = -1;           // -1: the video failed
  int actor = 0;                // 0: unknown
  std::vector<int64_t> counts;  // frames per predicted class
  std::string error;
};

struct ClassMetrics {
  int64_t support = 0;  // videos of this true class
  double precision = 0, recall = 0, f1 = 0;
};

struct EvalMetrics {
  std::vector<std::string> classes;
  int videos = 0, videos_failed = 0;
  int64_t frames = 0, frames_correct = 0;
  int videos_correct = 0;
  double frame_accuracy = 0, video_accuracy = 0, macro_f1 = 0;
  // Unweighted average recall (balanced accuracy): the mean recall over the classes that occur
  // as a truth. Weighted F1: the per-class F1 weighted by each class's support.
  double uar = 0, weighted_f1 = 0;
  std::vector<ClassMetrics> per_class;
  std::vector<std::vector<int64_t>> confusion;        // [true][predicted] videos
  std::vector<std::vector<int64_t>> frame_confusion;  // [true][predicted] frames
  struct Actor {
    int actor = 0, videos = 0, correct = 0;
  };
  std::vector<Actor> per_actor;  // RAVDESS only
};

EvalMetrics compute_metrics(const std::vector<EvalRow>& rows,
                            const std::vector<std::string>& classes);
std::string metrics_text(const EvalMetrics& m);
nlohmann::json metrics_json(const EvalMetrics& m);

// The confusion matrix as a PNG heat map: one cell per (true, predicted) pair holding its count,
// shaded by the row's fraction (recall), class names along both axes.
struct PngLayout {
  int cell, left, top, right, bottom, width, height;
};
PngLayout confusion_png_layout(const std::vector<std::string>& classes);
void write_confusion_png(const EvalMetrics& m, const OutputTarget& target,
                         const std::string& title);

// The outputs of eval and merge: the metrics as text on `text`, the summary (metrics_json with
// `extra`'s members) and the confusion heat map where asked. The PNG's title: `model`, the video
// accuracy and the count.
void report_metrics(const EvalMetrics& m, std::ostream& text,
                    const std::optional<OutputTarget>& summary, const nlohmann::json& extra,
                    const std::optional<OutputTarget>& confusion, const std::string& model);

}  // namespace fervid::scoring
