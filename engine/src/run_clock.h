// The clock of a run's wall times (RunStats).
#pragma once

#include <chrono>

namespace fervid {

using Clock = std::chrono::steady_clock;
inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace fervid
