// Datasets for `fervid eval`: the true label of every input, from RAVDESS file names (with
// filters) or from a labels CSV, and the deterministic shards of a sorted input list.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "fervid/inputs.h"

namespace fervid::scoring {

// modality-channel-emotion-intensity-statement-repetition-actor, e.g. 02-01-06-01-02-01-12.
struct RavdessName {
  int modality = 0;   // 1 full audio-video, 2 video-only, 3 audio-only
  int channel = 0;    // 1 speech, 2 song
  int emotion = 0;    // 1..8, kRavdessEmotions[emotion - 1]
  int intensity = 0;  // 1 normal, 2 strong
  int statement = 0;
  int repetition = 0;
  int actor = 0;  // 1..24
};
inline const std::vector<std::string> kRavdessEmotions = {
    "neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"};

// Parses the file or folder name of `path` (extension dropped); nullopt when it is not one.
// Copies that other tools renamed keep their label: a suffix after the seven fields ("_1",
// " (copy)") is allowed.
std::optional<RavdessName> parse_ravdess(const std::string& path);

struct RavdessFilter {
  std::vector<int> actors;    // empty: all
  std::vector<int> emotions;  // empty: all
  int modality = 0;           // 0: the two with video (1 and 2); else 1 (av) or 2 (video)
  int channel = 0;            // 0: both
  // --actors 21-24 | 1,3,5-7; --emotions happy,sad | 3,4; --modality video|av; --channel
  // speech|song
  static RavdessFilter parse(const std::string& actors, const std::string& emotions,
                             const std::string& modality, const std::string& channel);
  bool any() const { return !actors.empty() || !emotions.empty() || modality || channel; }
  bool keep(const RavdessName& n) const;
};

// One input with its true class (an index into the model's classes) and, for RAVDESS, its actor.
struct LabelledInput {
  InputItem item;
  int truth = -1;
  int actor = 0;  // 0: unknown
};

// The labelled inputs of an eval run. With `labels_csv` empty every input must have a RAVDESS
// name (else one error listing the first offenders); audio-only clips and those the filter drops
// are left out. A labels CSV (path,label; header optional; paths relative to the CSV's folder)
// labels inputs by path; an input it does not list is an error, a label that is not one of
// `classes` too. Inputs that are Invalid (missing paths) are kept: their rows report the error.
std::vector<LabelledInput> label_inputs(const std::vector<InputItem>& inputs,
                                        const std::vector<std::string>& classes,
                                        const std::string& labels_csv, const RavdessFilter& filter,
                                        std::string* notice);

// --shard K/N: K in 1..N. Inputs are sorted by path and input i belongs to shard (i mod N) + 1.
struct Shard {
  int index = 1, count = 1;
  static Shard parse(const std::string& text);
};
// The positions in `paths` of shard `shard`'s inputs, in path order (all of them when N = 1).
std::vector<size_t> shard_positions(const std::vector<std::string>& paths, const Shard& shard);

}  // namespace fervid::scoring
