// Choosing and making the backend: the one place that looks at the device the user asked for.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "backends/backend.h"
#include "fervid/options.h"

namespace fervid {

// Where the engine's notices go (a line without "fervid: notice: "): the CLI prints them on
// stderr, the Python module hands them to `warnings`.
using Notify = std::function<void(const std::string&)>;

// The backend for `options`, whose combinations are checked here, once: fervid's conv3x3 needs
// fp16 or bf16; --device cpu takes neither a GPU precision nor a --conv-impl. Auto picks CUDA
// when a device is usable and otherwise the CPU, telling `notify` why; cuda without a device
// fails with one line.
std::unique_ptr<Backend> make_backend(const BackendOptions& options, const Notify& notify);

}  // namespace fervid
