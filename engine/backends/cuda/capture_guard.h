// The shape of a CUDA graph capture, without CUDA, so that a test checks it without a device
// (tests/cuda/cuda_backend_test.cpp, CaptureGuard.*): the capture begun is always ended, whatever
// the work in between throws. A stream left capturing would make every later call on it fail.
#pragma once

#include <string>

#include "fervid/error.h"

namespace fervid {

// begin(); work(); end() with end() called exactly once. Returns why the capture failed, empty
// when it worked: the text of a fervid::Error thrown by `work` (the caller then runs the work op by
// op), else what `end` returns (its own failure, empty on success). Any other exception from
// `work` (std::bad_alloc, a bug) propagates after end().
template <typename Begin, typename Work, typename End>
std::string capture_guarded(Begin&& begin, Work&& work, End&& end) {
  begin();
  std::string why;
  try {
    work();
  } catch (const Error& e) {
    why = e.what();
  } catch (...) {
    (void)end();
    throw;
  }
  std::string ended = end();
  return why.empty() ? ended : why;
}

}  // namespace fervid
