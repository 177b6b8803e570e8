#include "fervid/input_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

#include "fervid/error.h"

namespace fervid {

namespace {

std::string system_words(int err) {
  std::string s = std::strerror(err);
  if (!s.empty()) s[0] = char(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

// An open file descriptor, closed when it goes.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Opens `path` for reading; on failure returns -1 with `why` set.
int open_regular(const std::string& path, std::string* why) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *why = system_words(errno);
    return -1;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    *why = S_ISDIR(st.st_mode) ? "is a folder" : system_words(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

std::string unreadable_reason(const std::string& path) {
  std::string why;
  Fd f{open_regular(path, &why)};
  return f.fd < 0 ? why : "";
}

std::string read_text_file(const std::string& path, const std::string& what, size_t max_bytes) {
  std::string why;
  Fd f{open_regular(path, &why)};
  if (f.fd < 0) fail(path + ": cannot read the " + what + ": " + why);
  std::string text;
  char buf[65536];
  for (;;) {
    const ssize_t got = ::read(f.fd, buf, sizeof(buf));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) fail(path + ": cannot read the " + what + ": " + system_words(errno));
    if (got == 0) break;
    text.append(buf, size_t(got));
    if (text.size() > max_bytes)
      fail(path + ": the " + what + " is larger than " + std::to_string(max_bytes) +
           " bytes; is it the right file?");
  }
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);
  return text;
}

std::vector<std::string_view> text_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return lines;
}

}  // namespace fervid
