// fervid calibrate: int8 activation scales measured on frames the user gives, written into the
// card of a copy of the weights (fervid::calibrate_weights; docs/int8.md).
#include <iostream>

#include "cli.h"
#include "fervid/fervid.h"

namespace fervid::cli {

void check_calibrate_args(const CalibrateArgs& a) {
  if (a.frames < 1) fail_option("--frames " + std::to_string(a.frames) + ": expected 1 or more");
  if (a.stride < 1) fail_option("--stride " + std::to_string(a.stride) + ": expected 1 or more");
  if (a.threads < 0) fail_option("--threads " + std::to_string(a.threads) + ": expected 0 or more");
  if (!a.crop.empty()) CropSpec::parse(a.crop);
}

int run_calibrate(const CalibrateArgs& a) {
  check_calibrate_args(a);
  WalkNotes walked;
  const std::vector<InputItem> inputs = expand_inputs(a.inputs, &walked);
  if (!a.quiet)
    for (const std::string& line : walked.lines()) std::cerr << "fervid: notice: " << line << "\n";
  CalibrateOptions o;
  o.card = a.spec;
  o.crop = a.crop;
  o.sampling.stride = a.stride;
  o.frames = a.frames;
  o.threads = a.threads;
  if (a.quiet) o.notify = [](const std::string&) {};
  const Engine::Int8Calibration cal = calibrate_weights(a.weights, inputs, a.out, o);
  for (const std::string& skipped : cal.skipped)
    std::cerr << "fervid: error: " << skipped << " (skipped)\n";
  std::cout << "wrote " << a.out << ": int8 input scales of " << cal.scales.size()
            << " conv layers from " << cal.frames << " frames of "
            << inputs.size() - cal.skipped.size() << " inputs; run it with --precision int8\n";
  return cal.skipped.empty() ? kExitOk : kExitSomeFailed;
}

}  // namespace fervid::cli
