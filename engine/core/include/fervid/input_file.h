// The small text files a user names (model cards, labels and boxes CSVs), read whole. A file
// that cannot be read fails in one line that names it and says why in the system's words
// ("no such file or directory", "is a folder", "too many levels of symbolic links").
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace fervid {

// Why `path` cannot be read as a regular file, or "" when it can be opened.
std::string unreadable_reason(const std::string& path);

// The file's bytes, a leading UTF-8 byte-order mark (as Excel writes CSVs) dropped. Fails with
// "PATH: cannot read the WHAT: REASON", or when the file holds more than `max_bytes`.
std::string read_text_file(const std::string& path, const std::string& what, size_t max_bytes);

// `text` cut into lines at "\n", a "\r" before it dropped (files from Windows).
std::vector<std::string_view> text_lines(std::string_view text);

}  // namespace fervid
