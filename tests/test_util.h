// Shared test helpers: seeded random inputs (seed printed on failure, FERVID_SEED replays it),
// NaN poisoning of outputs, and the two comparisons of docs/style.md (element-wise and relative
// L2), each reporting how much of its bound was used.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "fervid/error.h"
#include "fervid/model_spec.h"
#include "fervid/tensor.h"

namespace fervid::test {

// A per-process scratch folder under the system temp directory, e.g. /tmp/fervid-cli-1234.
// The folders temp_dir() made in this process: removed at exit when every test passed, kept
// (for a look at what failed) otherwise.
struct TempDirs {
  std::vector<std::filesystem::path> dirs;
  ~TempDirs() {
    const auto* unit = ::testing::UnitTest::GetInstance();
    if (unit && !unit->Passed()) return;
    for (const auto& d : dirs) {
      std::error_code ec;
      std::filesystem::remove_all(d, ec);
    }
  }
};

// A folder of this process for `tag`: the pid and a random word, so that a folder left by an
// earlier process with the same pid is never reused.
inline std::filesystem::path temp_dir(const std::string& tag) {
  static TempDirs made;
  static const std::string unique =
      std::to_string(::getpid()) + "-" + std::to_string(std::random_device{}() & 0xffffff);
  auto d = std::filesystem::temp_directory_path() / ("fervid-" + tag + "-" + unique);
  if (std::filesystem::create_directories(d)) made.dirs.push_back(d);
  return d;
}

// The shared real test data: $FERVID_TEST_DATA when set (the GPU bundle carries a copy and
// tools/gpu-check.sh points here, wherever it was unpacked), else the folder the build was
// configured with (FERVID_DATA_DIR, ../shared/data).
inline std::string test_data_dir() {
  if (const char* env = std::getenv("FERVID_TEST_DATA"); env && *env) return env;
#ifdef FERVID_DATA_DIR
  return FERVID_DATA_DIR;
#else
  return "../shared/data";
#endif
}

// The RAVDESS clips of the shared data (ravdess/modified/) come with ../shared/data only:
// tools/make-test-data.sh makes the rest from Debian's packages but cannot make these. A test
// that needs them starts with FERVID_NEED_RAVDESS() and skips, saying why, without them.
inline bool have_ravdess() {
  return std::filesystem::is_directory(test_data_dir() + "/ravdess/modified");
}
#define FERVID_NEED_RAVDESS()                                               \
  if (!::fervid::test::have_ravdess())                                      \
  GTEST_SKIP() << "no RAVDESS clips in " << ::fervid::test::test_data_dir() \
               << " (they come with ../shared/data only; tools/make-test-data.sh makes the rest)"

inline uint64_t seed() {
  static const uint64_t s = [] {
    const char* env = std::getenv("FERVID_SEED");
    return env ? std::strtoull(env, nullptr, 10) : uint64_t(std::random_device{}());
  }();
  return s;
}

// Adds the seed to every failure message of the test that creates it.
struct SeedTrace {
  testing::ScopedTrace trace{__FILE__, __LINE__, "FERVID_SEED=" + std::to_string(seed())};
};

// A VGG of two conv layers on 16x16 inputs, a GAP head and `classes`: the whole pipeline in
// milliseconds.
inline ModelSpec tiny_spec(std::vector<std::string> classes = {"a", "b", "c", "d"}) {
  ModelSpec s;
  s.name = "tiny";
  s.config = {6, ModelSpec::kPool, 8, ModelSpec::kPool};
  s.input_size = 16;
  s.head = Head::Gap;
  s.dense = {10};
  s.classes = std::move(classes);
  return s;
}

inline std::mt19937_64& rng() {
  static std::mt19937_64 r(seed());
  return r;
}

inline void fill_uniform(const Tensor& t, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  float* p = t.ptr<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = d(rng());
}

inline void poison(const Tensor& t) {
  if (t.dtype() == DType::F32) {
    float* p = t.ptr<float>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = std::numeric_limits<float>::quiet_NaN();
  } else {
    std::memset(t.data(), 0xff, t.bytes());
  }
}

struct Tolerance {
  double atol, rtol, rel_l2;
};
inline constexpr Tolerance kFp32{1e-5, 1e-4, 1e-5};

// got vs ref (f64): |got - ref| <= atol + rtol |ref| for every element, and relative L2 bound.
inline void expect_close(const float* got, const std::vector<double>& ref, Tolerance tol,
                         const std::string& what) {
  double worst = 0, err2 = 0, ref2 = 0;
  int64_t worst_i = 0, bad = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double g = got[i], r = ref[i];
    const double bound = tol.atol + tol.rtol * std::fabs(r);
    const double diff = std::fabs(g - r);
    const double used = !std::isfinite(g) ? INFINITY
                        : bound > 0       ? diff / bound
                                          : (diff == 0 ? 0.0 : INFINITY);
    if (!(used <= 1.0)) ++bad;
    if (!(used <= worst)) {
      worst = used;
      worst_i = int64_t(i);
    }
    err2 += (g - r) * (g - r);
    ref2 += r * r;
  }
  const double rel = ref2 > 0 ? std::sqrt(err2 / ref2) : std::sqrt(err2);
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << ref.size()
                    << " elements outside the bound; worst at " << worst_i << ": got "
                    << got[worst_i] << ", want " << ref[worst_i];
  EXPECT_LE(rel, tol.rel_l2) << what << ": relative L2 " << rel;
  std::printf("[ bounds   ] %s: element-wise %.1f%% of bound, relative L2 %.2e (%.1f%% of bound)\n",
              what.c_str(), 100 * worst, rel, 100 * rel / tol.rel_l2);
}

}  // namespace fervid::test
