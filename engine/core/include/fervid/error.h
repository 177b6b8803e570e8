// fervid::Error: the one exception type of the engine. Its message is one line that names the
// input (file, layer, tensor) and the reason, ready to print to the user as it is. Its kinds tell
// a program what went wrong without reading the message (the Python module raises a matching
// exception for each); the CLI treats them all alike.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

namespace fervid {

// Options are named in the engine's messages by their key between double braces ("{{batch}} 0:
// must be at least 1"), never by one front end's spelling: the CLI says "--batch 0", the Python
// module "batch=0" (in_words). The keys and their words are kOptionWords (option_words.cpp).
enum class Wording { Cli, Python };
struct OptionWords {
  const char* key;
  const char* cli;     // "--max-frames"
  const char* python;  // "max_frames="
};
// Every option the engine, the scoring library and the front ends name in a message.
extern const OptionWords kOptionWords[];
extern const size_t kOptionWordCount;
// `keyed` with each {{key}} of kOptionWords in `wording`'s words; a Python keyword takes the value
// that follows it ("{{batch}} 0" -> "batch=0"). Unknown keys stay as they are.
std::string in_words(std::string_view keyed, Wording wording);

class Error : public std::runtime_error {
 public:
  // what() is the message in the CLI's words (what a C++ caller prints); words() in either.
  explicit Error(const std::string& keyed)
      : std::runtime_error(in_words(keyed, Wording::Cli)), keyed_(keyed) {}
  std::string words(Wording wording) const { return in_words(keyed_, wording); }
  const std::string& keyed() const { return keyed_; }

 private:
  std::string keyed_;
};

// An option or its text that cannot be used: a flag, a combination of them, a crop, a batch size.
class OptionError : public Error {
  using Error::Error;
};
// A weights file or model card that cannot be used (format, spec, tensors, values).
class WeightsError : public Error {
  using Error::Error;
};
// An input handed over in memory that cannot be classified (a frame that is not 8-bit RGB).
// A bad file is not an exception: it is its own error row, and the run goes on.
class InputError : public Error {
  using Error::Error;
};
// The GPU: none usable, out of its memory, a failed CUDA, cuDNN or cuBLAS call.
class DeviceError : public Error {
  using Error::Error;
};
// A run its caller stopped (Engine::classify's stop token).
class Cancelled : public Error {
  using Error::Error;
};

// `text` (read from a file or given by a user) made fit for a one-line message: control
// characters written as \r, \n, \t or \xNN, the rest as it is.
inline std::string printable(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u != 0x7f) {
      out.push_back(c);
      continue;
    }
    out.push_back('\\');
    if (c == '\r') {
      out.push_back('r');
    } else if (c == '\n') {
      out.push_back('n');
    } else if (c == '\t') {
      out.push_back('t');
    } else {
      out.push_back('x');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    }
  }
  return out;
}

// Every error message goes through printable(): whatever text from a file or a user it quotes,
// it stays one line.
[[noreturn]] inline void fail(const std::string& message) { throw Error(printable(message)); }
// The error of the same kind as `e`, its message behind `prefix` (e.g. the layer it came from).
[[noreturn]] inline void fail_within(const std::string& prefix, const Error& e) {
  const std::string m = printable(prefix + e.keyed());
  if (dynamic_cast<const DeviceError*>(&e)) throw DeviceError(m);
  if (dynamic_cast<const InputError*>(&e)) throw InputError(m);
  if (dynamic_cast<const OptionError*>(&e)) throw OptionError(m);
  if (dynamic_cast<const WeightsError*>(&e)) throw WeightsError(m);
  if (dynamic_cast<const Cancelled*>(&e)) throw Cancelled(m);
  throw Error(m);
}
[[noreturn]] inline void fail_option(const std::string& message) {
  throw OptionError(printable(message));
}
[[noreturn]] inline void fail_input(const std::string& message) {
  throw InputError(printable(message));
}
[[noreturn]] inline void fail_device(const std::string& message) {
  throw DeviceError(printable(message));
}

}  // namespace fervid
