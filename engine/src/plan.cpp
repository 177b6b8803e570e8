#include "fervid/plan.h"

#include "fervid/error.h"
#include "fervid/fervid.h"

namespace fervid {

Plan plan_of(const OptionValues& v) {
  Plan p;
  p.backend.device = parse_device(v.device);
  p.backend.precision = parse_precision(v.precision);
  p.backend.conv_impl = parse_conv_impl(v.conv_impl);
  p.backend.cuda_graphs = v.cuda_graphs;
  p.backend.threads = v.threads;
  p.max_batch = v.batch;
  p.explain = v.explain;
  ClassifyOptions& r = p.run;
  r.batch = v.batch;
  r.sampling.stride = v.stride;
  r.sampling.max_frames = v.max_frames;
  r.sampling.fps = v.fps;
  r.decode_threads = v.decode_threads;
  r.decoder = parse_decoder(v.decoder);
  r.stage_streams = v.stage_streams;
  r.keep_logits = v.keep_logits;
  r.keep_frames = v.keep_frames || v.keep_logits;
  p.crop = v.crop;
  if (!v.crop.empty()) r.crop = CropSpec::parse(v.crop);
  if (!v.vote.empty()) p.vote = parse_vote(v.vote);
  check_classify_options(r, v.batch < 1 ? 1 : v.batch);
  return p;
}

void Plan::fill(EngineOptions& engine) const {
  engine.backend = backend;
  engine.max_batch = max_batch;
  engine.explain = explain;
}

ClassifyOptions Plan::for_card(const ModelSpec& spec) const {
  ClassifyOptions r = run;
  if (crop.empty()) r.crop = CropSpec::parse(spec.crop);
  r.vote = vote.value_or(spec.vote);
  return r;
}

}  // namespace fervid
