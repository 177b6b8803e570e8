// What the fuzz targets share: the input bytes as a file in a private folder, and the rule for
// errors. A parser of outside bytes may refuse them only with a fervid::Error of one line that
// names the file it read; any other exception, a crash or a sanitizer report is a finding.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>

#include "fervid/error.h"

namespace fervid::fuzz {

// A folder of this process's own under TMPDIR, removed at exit.
inline const std::string& work_dir() {
  static const std::string dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string d =
        std::string(tmp && *tmp ? tmp : "/tmp") + "/fervid-fuzz-" + std::to_string(::getpid());
    std::filesystem::create_directories(d);
    static struct Remove {
      std::string d;
      ~Remove() {
        std::error_code ec;
        std::filesystem::remove_all(d, ec);
      }
    } remove{d};
    return d;
  }();
  return dir;
}

// Writes `data` to work_dir()/name (replacing what was there) and returns its path.
inline std::string write_file(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = work_dir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), std::streamsize(size));
  out.close();
  if (!out) {
    std::fprintf(stderr, "fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
  return path;
}

[[noreturn]] inline void finding(const std::string& what) {
  std::fprintf(stderr, "fuzz: finding: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

// Runs `body`. A fervid::Error it throws must be one line and contain `must_name` (the file's
// path; "" for none); another exception is a finding.
template <class Body>
void expect_clean(const std::string& must_name, Body&& body) {
  try {
    body();
  } catch (const Error& e) {
    const std::string m = e.what();
    if (m.find_first_of("\r\n") != std::string::npos)
      finding("an error of more than one line: " + m);
    if (!must_name.empty() && m.find(must_name) == std::string::npos)
      finding("an error that does not name " + must_name + ": " + m);
  } catch (const std::exception& e) {
    finding(std::string("an exception other than fervid::Error escaped: ") + e.what());
  } catch (...) {
    finding("an exception other than fervid::Error escaped (not a std::exception)");
  }
}

}  // namespace fervid::fuzz
