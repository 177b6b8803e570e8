// fervid::Error: the one exception type of the engine. Its message is one line that names the
// input (file, layer, tensor) and the reason, ready to print to the user as it is.
#pragma once

#include <stdexcept>
#include <string>

namespace fervid {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void fail(const std::string& message) { throw Error(message); }

}  // namespace fervid
