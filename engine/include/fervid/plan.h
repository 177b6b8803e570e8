// The one place where the options of a run, as a person gives them (the CLI's flags, the Python
// module's keywords, bench's flags), become the engine's typed options. Every front end fills an
// OptionValues from its own syntax and calls plan_of; the errors name each option by its key
// (fervid/error.h), which the front end words its way (--max-frames, max_frames=).
#pragma once

#include <optional>
#include <string>

#include "fervid/crop.h"
#include "fervid/model_spec.h"
#include "fervid/run.h"

namespace fervid {

struct EngineOptions;  // fervid/fervid.h

// The options by key, as given; the defaults are the CLI's and the Python module's.
struct OptionValues {
  // The engine's: fixed when it is made.
  std::string device = "auto";
  std::string precision;  // "" = the backend's own
  std::string conv_impl = "auto";
  bool cuda_graphs = true;
  int threads = 0;
  int batch = 8;  // the engine's largest batch and the run's batch
  bool explain = false;
  // A run's.
  int stride = 1, max_frames = 0, decode_threads = 0;
  double fps = 1.0;        // image folders' frame rate
  std::string crop, vote;  // "" = the model card's
  std::string decoder = "auto";
  bool stage_streams = true;
  bool keep_frames = false, keep_logits = false;  // keep_logits implies keep_frames
};

// The options typed and checked (everything that needs no weights, no file and no device).
struct Plan {
  BackendOptions backend;
  int max_batch = 8;
  bool explain = false;
  ClassifyOptions run;           // crop and vote: the card's until for_card
  std::string crop;              // as given; "" = the card's
  std::optional<VoteMode> vote;  // as given
  // The engine's options (notices and wording are the caller's to add).
  void fill(EngineOptions& engine) const;
  // The run's options for a model: the given crop and vote, else its card's.
  ClassifyOptions for_card(const ModelSpec& spec) const;
  // The crop's text the run uses with `spec` (the given one or the card's).
  std::string crop_text(const ModelSpec& spec) const { return crop.empty() ? spec.crop : crop; }
};

// Fails with one line (OptionError, options by key) on the first option that cannot be used.
Plan plan_of(const OptionValues& values);

}  // namespace fervid
