#include <cstring>

#include "fervid/error.h"

namespace fervid {

const OptionWords kOptionWords[] = {
    {"device", "--device", "device="},
    {"precision", "--precision", "precision="},
    {"conv_impl", "--conv-impl", "conv_impl="},
    {"cuda_graphs", "--cuda-graphs", "cuda_graphs="},
    {"stage_streams", "--stage-streams", "stage_streams="},
    {"threads", "--threads", "threads="},
    {"batch", "--batch", "batch="},
    {"stride", "--stride", "stride="},
    {"max_frames", "--max-frames", "max_frames="},
    {"fps", "--fps", "fps="},
    {"crop", "--crop", "crop="},
    {"vote", "--vote", "vote="},
    {"decoder", "--decoder", "decoder="},
    {"decode_threads", "--decode-threads", "decode_threads="},
    {"card", "--spec", "card="},
    {"labels", "--labels", "labels="},
    {"frames", "--frames", "frames="},
    {"logits", "--logits", "logits="},
    {"actors", "--actors", "actors="},
    {"emotions", "--emotions", "emotions="},
    {"modality", "--modality", "modality="},
    {"channel", "--channel", "channel="},
    {"shard", "--shard", "shard="},
    {"faces", "--faces", "faces="},
    {"margin", "--margin", "margin="},
    {"window", "--window", "window="},
    {"hop", "--hop", "hop="},
    {"stall", "--stall", "stall="},
    {"give_up", "--give-up", "give_up="},
    {"out", "--out", "out="},
    {"explain", "EngineOptions::explain", "Engine(..., explain=True)"},
};
const size_t kOptionWordCount = sizeof(kOptionWords) / sizeof(kOptionWords[0]);

std::string in_words(std::string_view keyed, Wording wording) {
  std::string out;
  out.reserve(keyed.size());
  for (size_t i = 0; i < keyed.size();) {
    const size_t close = keyed.compare(i, 2, "{{") == 0 ? keyed.find("}}", i + 2) : keyed.npos;
    const OptionWords* found = nullptr;
    if (close != keyed.npos)
      for (size_t k = 0; k < kOptionWordCount && !found; ++k)
        if (keyed.substr(i + 2, close - i - 2) == kOptionWords[k].key) found = &kOptionWords[k];
    if (!found) {
      out += keyed[i++];
      continue;
    }
    const char* word = wording == Wording::Cli ? found->cli : found->python;
    out += word;
    i = close + 2;
    // "batch= 0" reads "batch=0": a keyword takes the value written after it.
    const bool keyword = word[std::strlen(word) - 1] == '=';
    if (keyword && i + 1 < keyed.size() && keyed[i] == ' ' && keyed[i + 1] != ' ') ++i;
  }
  return out;
}

}  // namespace fervid
