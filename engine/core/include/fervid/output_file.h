// Where an output goes, and the one way every writer (rows, frame rows, summaries, PNGs, weights)
// writes it, so that an output never destroys what is at its path:
//
//   "-"                          standard output, streamed
//   a FIFO or a character device streamed to as it is (/dev/stdout, /dev/null, a named pipe)
//   a regular file or a new path written to PATH.part in the same folder and renamed over PATH
//                                when complete: a run that fails leaves PATH as it was
//   a symlink                    the file it points to, by the rules above (the link stays)
//   a directory, a missing parent folder, anything else: refused before any work, in one line
//
// Two outputs of a run that name the same file, or an output that names one of the run's inputs,
// are refused too (check_distinct), before any work.
#pragma once

#include <cstdint>
#include <fstream>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace fervid {

class OutputTarget {
 public:
  enum class Kind { Stdout, Stream, File };

  // What is at `path` now, for the flag `what` (e.g. "--output"): fails with an OptionError
  // naming both when it cannot be written as above.
  static OutputTarget at(const std::string& path, const std::string& what);

  Kind kind() const { return kind_; }
  const std::string& path() const { return path_; }        // as given
  const std::string& file() const { return file_; }        // what is written (a symlink resolved)
  std::string partial() const { return file_ + ".part"; }  // File only
  const std::string& what() const { return what_; }
  // The lower-case extension of the path as given (".csv"), or "" for "-" and devices.
  std::string extension() const;
  bool is_stream() const { return kind_ != Kind::File; }
  // Standard output or a device that is a terminal (where a table may shorten long paths).
  bool is_terminal() const;
  // "-", or the file standard output is (/dev/stdout, the file it was redirected to).
  bool is_stdout() const;

 private:
  Kind kind_ = Kind::File;
  std::string path_, file_, what_;
};

// Fails (OptionError) when two of `outputs` name the same file or one of them names a file of
// `inputs` (weights, videos, images, CSVs the run reads).
void check_distinct(const std::vector<OutputTarget>& outputs,
                    const std::vector<std::string>& inputs);

// A target opened for writing: stream() until commit(), which flushes a File target's .part to
// the disk and renames it into place (or flushes a stream). Destroyed without commit, the .part
// is removed, unless `keep_partial` (an interrupted JSON Lines output, which --resume continues).
// `append`: a File target's existing .part is continued, not replaced (--resume: the rows there
// stay on disk all along); a last line cut short (no newline) is dropped first.
class OutputFile {
 public:
  explicit OutputFile(OutputTarget target, bool keep_partial = false, bool append = false);
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  std::ostream& stream() { return *out_; }
  const OutputTarget& target() const { return target_; }
  void commit();

 private:
  OutputTarget target_;
  std::ofstream file_;
  std::ostream* out_ = nullptr;
  bool keep_partial_, committed_ = false;
};

// Writes `bytes` to `target` as OutputFile does.
void write_output(const OutputTarget& target, const std::string& bytes);

}  // namespace fervid
