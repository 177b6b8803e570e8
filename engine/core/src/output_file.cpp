#include "fervid/output_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "fervid/error.h"

namespace fs = std::filesystem;

namespace fervid {

namespace {

// The file a path names once its symlinks are followed (relative link targets from the link's
// folder); a dangling link names its missing target. Fails on a loop.
fs::path follow_links(const fs::path& path, const std::string& what) {
  fs::path p = fs::absolute(path);
  for (int hops = 0; hops < 40; ++hops) {
    std::error_code ec;
    if (!fs::is_symlink(fs::symlink_status(p, ec))) return p.lexically_normal();
    const fs::path target = fs::read_symlink(p, ec);
    if (ec) fail_option(what + " " + path.string() + ": cannot read the link: " + ec.message());
    p = target.is_absolute() ? target : p.parent_path() / target;
  }
  fail_option(what + " " + path.string() + ": too many levels of symbolic links");
}

// A file's identity: its device and inode when it exists, else its normalised path.
struct Identity {
  bool exists = false;
  dev_t dev = 0;
  ino_t ino = 0;
  std::string path;
  bool operator==(const Identity& o) const {
    return exists == o.exists && (exists ? dev == o.dev && ino == o.ino : path == o.path);
  }
};

Identity identity_of(const std::string& path) {
  Identity id;
  struct stat st {};
  const bool is_stdout = path == "-";
  if (is_stdout ? fstat(STDOUT_FILENO, &st) == 0 : stat(path.c_str(), &st) == 0) {
    id.exists = true;
    id.dev = st.st_dev;
    id.ino = st.st_ino;
    return id;
  }
  std::error_code ec;
  id.path = fs::weakly_canonical(fs::absolute(path), ec).string();
  if (ec) id.path = fs::absolute(path).lexically_normal().string();
  return id;
}

}  // namespace

OutputTarget OutputTarget::at(const std::string& path, const std::string& what) {
  OutputTarget t;
  t.path_ = path;
  t.what_ = what;
  const std::string named = what + " " + path + ": ";
  if (path.empty()) fail_option(what + ": give a file name (or - for standard output)");
  if (path == "-") {
    t.kind_ = Kind::Stdout;
    t.file_ = path;  // "-" (assigned from a string: GCC 12 warns, wrongly, for the literal)
    return t;
  }
  struct stat st {};
  if (stat(path.c_str(), &st) == 0) {  // what the path names, links followed by the kernel
    if (S_ISDIR(st.st_mode)) fail_option(named + "a folder, not a file");
    if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
      // Opened as given: /dev/stdout's link names no file the rules above could follow.
      if (access(path.c_str(), W_OK) != 0) fail_option(named + "cannot be written");
      t.kind_ = Kind::Stream;
      t.file_ = path;
      return t;
    }
    if (!S_ISREG(st.st_mode))
      fail_option(named + "not a regular file, a pipe or a character device");
  }
  const fs::path file = follow_links(path, what);
  t.file_ = file.string();
  const fs::path folder = file.parent_path();
  std::error_code ec;
  if (!fs::is_directory(folder, ec))
    fail_option(named + "the folder " + folder.string() + " does not exist");
  if (access(folder.c_str(), W_OK | X_OK) != 0)
    fail_option(named + "cannot write in the folder " + folder.string());
  t.kind_ = Kind::File;
  return t;
}

std::string OutputTarget::extension() const {
  if (kind_ == Kind::Stdout) return "";
  std::string e = fs::path(path_).extension().string();
  if (e.empty() && kind_ == Kind::File) e = fs::path(file_).extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return std::tolower(c); });
  return e;
}

bool OutputTarget::is_terminal() const {
  if (kind_ == Kind::Stdout) return isatty(STDOUT_FILENO) == 1;
  if (kind_ != Kind::Stream) return false;
  const int fd = open(file_.c_str(), O_WRONLY | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return false;
  const bool tty = isatty(fd) == 1;
  close(fd);
  return tty;
}

bool OutputTarget::is_stdout() const {
  return kind_ == Kind::Stdout || identity_of(file_) == identity_of("-");
}

void check_distinct(const std::vector<OutputTarget>& outputs,
                    const std::vector<std::string>& inputs) {
  std::vector<Identity> ids;
  for (const OutputTarget& o : outputs) ids.push_back(identity_of(o.file()));
  for (size_t i = 0; i < outputs.size(); ++i) {
    for (size_t j = 0; j < i; ++j)
      if (ids[i] == ids[j])
        fail_option(outputs[j].what() + " " + outputs[j].path() + " and " + outputs[i].what() +
                    " " + outputs[i].path() + " name the same file");
    if (!ids[i].exists || outputs[i].is_stream()) continue;
    for (const std::string& in : inputs)
      if (identity_of(in) == ids[i])
        fail_option(outputs[i].what() + " " + outputs[i].path() + ": that is one of the inputs (" +
                    in + "); name another file");
  }
}

namespace {

// Cuts `path` after its last newline: a line a killed run left half-written goes.
void drop_cut_line(const std::string& path, const std::string& named) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) fail(named + "cannot open " + path + " to continue it");
  off_t end = ::lseek(fd, 0, SEEK_END);
  char buf[4096];
  off_t keep = 0;
  while (end > 0) {
    const off_t from = std::max<off_t>(0, end - off_t(sizeof(buf)));
    const ssize_t got = ::pread(fd, buf, size_t(end - from), from);
    if (got != end - from) break;
    const void* nl = ::memrchr(buf, '\n', size_t(got));
    if (nl) {
      keep = from + (static_cast<const char*>(nl) - buf) + 1;
      break;
    }
    end = from;
  }
  const bool ok = ::ftruncate(fd, keep) == 0 || keep == ::lseek(fd, 0, SEEK_END);
  ::close(fd);
  if (!ok) fail(named + "cannot cut the unfinished last line of " + path);
}

// Flushes `path`'s data to the disk, so that the rename after it never shows an empty file
// after a crash of the machine.
void sync_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

OutputFile::OutputFile(OutputTarget target, bool keep_partial, bool append)
    : target_(std::move(target)), keep_partial_(keep_partial) {
  const std::string named = target_.what() + " " + target_.path() + ": ";
  switch (target_.kind()) {
    case OutputTarget::Kind::Stdout:
      out_ = &std::cout;
      return;
    case OutputTarget::Kind::Stream:
      file_.open(target_.file(), std::ios::out | std::ios::binary);
      if (!file_) fail(named + "cannot open it for writing");
      break;
    case OutputTarget::Kind::File:
      if (append && fs::exists(target_.partial())) {
        drop_cut_line(target_.partial(), named);
        file_.open(target_.partial(), std::ios::out | std::ios::binary | std::ios::app);
      } else {
        file_.open(target_.partial(), std::ios::out | std::ios::binary | std::ios::trunc);
      }
      if (!file_) fail(named + "cannot write " + target_.partial());
      break;
  }
  out_ = &file_;
}

OutputFile::~OutputFile() {
  if (committed_ || target_.kind() != OutputTarget::Kind::File) return;
  file_.close();
  if (!keep_partial_) std::remove(target_.partial().c_str());
}

void OutputFile::commit() {
  const std::string named = target_.what() + " " + target_.path() + ": ";
  out_->flush();
  if (!*out_) fail(named + "writing failed (disk full?)");
  if (target_.kind() == OutputTarget::Kind::File) {
    file_.close();
    if (!file_) fail(named + "writing failed (disk full?)");
    sync_file(target_.partial());
    std::error_code ec;
    fs::rename(target_.partial(), target_.file(), ec);
    if (ec) fail(named + "cannot rename the finished file into place: " + ec.message());
  }
  committed_ = true;
}

void write_output(const OutputTarget& target, const std::string& bytes) {
  OutputFile f(target);
  f.stream().write(bytes.data(), std::streamsize(bytes.size()));
  f.commit();
}

}  // namespace fervid
