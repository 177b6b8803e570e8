#include "fervid/run.h"

#include <cmath>

#include "fervid/error.h"

namespace fervid {

void check_classify_options(const ClassifyOptions& o, int max_batch) {
  if (o.batch < 1) fail_option("{{batch}} " + std::to_string(o.batch) + ": must be at least 1");
  if (o.batch > max_batch)
    fail_option("batch size " + std::to_string(o.batch) + " outside 1.." +
                std::to_string(max_batch));
  if (o.sampling.stride < 1)
    fail_option("{{stride}} " + std::to_string(o.sampling.stride) + ": must be at least 1");
  if (o.sampling.max_frames < 0)
    fail_option("{{max_frames}} " + std::to_string(o.sampling.max_frames) +
                ": must be 0 (no cap) or more");
  if (!(o.sampling.fps > 0) || !std::isfinite(o.sampling.fps))
    fail_option("{{fps}} " + std::to_string(o.sampling.fps) + ": must be a number above 0");
  if (o.decode_threads < 0 || o.decode_threads > 64)
    fail_option("{{decode_threads}} " + std::to_string(o.decode_threads) + ": expected 0..64");
  if (o.queue_frames < 0) fail_option("queue_frames must be 0 (two batches) or more");
}

}  // namespace fervid
