// Helpers of the tests that run the fervid CLI (tests/cli_test.cpp, tests/cli_outputs_test.cpp):
// the binary, a scratch folder, runs with stdout and stderr apart, a tiny model and short clips.
#pragma once

#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "test_util.h"

namespace fervid::test {

namespace fs = std::filesystem;

// The binary under test; FERVID_BIN overrides the build's path (the bundle run on the GPU machine).
inline const std::string kBin = std::getenv("FERVID_BIN") ? std::getenv("FERVID_BIN") : FERVID_BIN;

inline fs::path work_dir() {
  static const fs::path dir = temp_dir("cli");
  return dir;
}

struct Result {
  int code;
  std::string out, err;
};

inline std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs the CLI with `args` (and `env`, "NAME=value ..." before it), stdout and stderr apart.
inline Result fervid(const std::string& args, const std::string& env = "") {
  const fs::path err = work_dir() / "stderr.txt";
  std::string cmd = env + " " + kBin + " " + args + " 2>" + err.string();
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out, slurp(err)};
}

inline int lines(const std::string& s) { return int(std::count(s.begin(), s.end(), '\n')); }

inline void sh(const std::string& cmd) { ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd; }

// A tiny model (16x16 input) so that end-to-end runs take milliseconds.
inline const std::string& tiny_weights() {
  static std::string w = [] {
    fs::path card = work_dir() / "tiny.json";
    std::ofstream(card) << R"({"name":"tiny","config":[8,"M",8,"M"],"input_size":16,"head":"gap",
      "dense":[12],"classes":["neutral","happy","sad"],"preprocess":"study","vote":"majority"})";
    std::string out = (work_dir() / "tiny.safetensors").string();
    Result r = fervid("make-weights --seed 3 --spec " + card.string() + " --out " + out);
    EXPECT_EQ(r.code, 0) << r.err;
    return out;
  }();
  return w;
}

inline std::string clip(const std::string& name, int frames) {
  fs::path p = work_dir() / name;
  if (!fs::exists(p))
    sh("ffmpeg -nostdin -v error -y -f lavfi -i testsrc=size=64x48:rate=10 -frames:v " +
       std::to_string(frames) + " -pix_fmt yuv420p " + p.string());
  return p.string();
}

// A fatal error: exit code 2 and one line on stderr that says `reason`.
inline void expect_fatal(const std::string& args, const std::string& reason) {
  Result r = fervid(args);
  EXPECT_EQ(r.code, 2) << args << "\n" << r.err;
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find(reason), std::string::npos) << r.err;
}

}  // namespace fervid::test
