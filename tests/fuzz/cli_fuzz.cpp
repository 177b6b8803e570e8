// The command line's parsing and checks on any arguments (the input split at NUL bytes): a
// usage error of one line, or options that are checked without reading a file or running.
#include <cstdint>
#include <vector>

#include "cli.h"
#include "fervid/crop.h"
#include "fuzz_util.h"

using namespace fervid;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> args{"fervid"};
  std::string arg;
  for (size_t i = 0; i < size && args.size() < 64; ++i) {
    if (data[i] == 0) {
      args.push_back(arg);
      arg.clear();
    } else {
      arg += char(data[i]);
    }
  }
  if (!arg.empty() && args.size() < 64) args.push_back(arg);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  cli::CommandLine cl;
  int code = -1;
  fuzz::expect_clean("",
                     [&] { code = cli::parse_command_line(int(args.size()), argv.data(), cl); });
  if (code >= 0) return 0;
  if (cl.command.empty()) fuzz::finding("a command line parsed without a command");
  fuzz::expect_clean("", [&] {
    cli::check_command_line(cl);
    const std::string& crop = cl.command == "bench" ? cl.bench.crop : cl.run.crop;
    if (!crop.empty() && crop.rfind("boxes=", 0) != 0) CropSpec::parse(crop);
  });
  return 0;
}
