#include "backend_factory.h"

#include <thread>

#include "backends/cpu/cpu_backend.h"
#include "backends/cuda/conv_policy.h"
#include "backends/cuda/cuda_backend.h"
#include "backends/cuda/cuda_probe.h"
#include "fervid/error.h"

namespace fervid {

// The most CPU threads a run may ask for: far above any machine's cores, far below what makes
// libgomp overflow its stack (100,000) or run out of memory.
constexpr int kMaxThreads = 1024;

std::unique_ptr<Backend> make_backend(const BackendOptions& options, const Notify& notify) {
  if (options.threads < 0 || options.threads > kMaxThreads)
    fail_option("{{threads}} " + std::to_string(options.threads) + ": expected 0 (all cores) to " +
                std::to_string(kMaxThreads));
  if (const unsigned cores = std::thread::hardware_concurrency();
      notify && cores > 0 && options.threads > int(cores))
    notify("{{threads}} " + std::to_string(options.threads) + " is more than the " +
           std::to_string(cores) + " cores this machine has: the threads take turns (slower)");
  const std::string precision = precision_name(options.precision);
  const std::string impl = conv_impl_name(options.conv_impl);
  // A CUDA conv implementation that cannot run at this precision is refused whatever the device
  // (the rules and messages: resolve_cuda_conv, resolve_cpu_conv).
  if (cuda_conv_impl(options.conv_impl)) resolve_cuda_conv(options.conv_impl, options.precision);
  std::string why;
  const bool gpu = options.device != DeviceChoice::Cpu && cuda_device_available(&why);
  // --conv-impl onednn|winograd|blas asks for the CPU backend, as --device cpu does.
  const bool cpu_impl = cpu_conv_impl(options.conv_impl);
  if (options.device == DeviceChoice::Cuda) {
    resolve_cuda_conv(options.conv_impl, options.precision);
    if (!gpu) fail_device("{{device}} cuda: " + why);
    return make_cuda_backend(options);
  }
  // Precisions only a GPU computes in (bf16 the CPU backend has too, on CPUs that can).
  const bool gpu_precision =
      options.precision == Precision::Tf32 || options.precision == Precision::Fp16;
  // int8 is the CPU backend's alone: --device auto takes the CPU for it, and says so.
  const bool int8 = options.precision == Precision::Int8;
  if (options.device == DeviceChoice::Auto && gpu && !cpu_impl) {
    if (!int8) return make_cuda_backend(options);
    const std::string no_int8 = cpu::cpu_int8_unavailable();
    if (!no_int8.empty()) {
      if (notify)
        notify("{{precision}} int8 runs on the CPU backend, and " + no_int8 +
               ": using the GPU in its default precision");
      BackendOptions gpu_options = options;
      gpu_options.precision = Precision::Default;
      return make_cuda_backend(gpu_options);
    }
    if (notify) notify("{{precision}} int8 runs on the CPU backend: using it, not the GPU");
    return cpu::make_cpu_backend(options.threads, ConvImpl::Auto, options.precision);
  }
  Precision cpu_precision = gpu_precision ? Precision::Fp32 : options.precision;
  if (options.device == DeviceChoice::Auto && !cpu_impl) {
    std::string notice = why + "; using the CPU backend";  // said once, by the engine's sink
    if (gpu_precision) notice += " (fp32; {{precision}} " + precision + " is for GPUs)";
    const std::string no_bf16 =
        cpu_precision == Precision::Bf16 ? cpu::cpu_bf16_unavailable() : std::string();
    if (!no_bf16.empty()) {
      notice += " (fp32; {{precision}} bf16: " + no_bf16 + ")";
      cpu_precision = Precision::Fp32;
    }
    const std::string no_int8 = int8 ? cpu::cpu_int8_unavailable() : std::string();
    if (!no_int8.empty()) {
      notice += " (fp32; {{precision}} int8: " + no_int8 + ")";
      cpu_precision = Precision::Fp32;
    }
    if (cuda_conv_impl(options.conv_impl)) notice += " ({{conv_impl}} " + impl + " is for GPUs)";
    if (notify) notify(notice);
    // A CUDA --conv-impl under --device auto was noticed; the CPU backend takes its own.
    const ConvImpl cpu_conv =
        cuda_conv_impl(options.conv_impl) ? ConvImpl::Auto : options.conv_impl;
    return cpu::make_cpu_backend(options.threads, cpu_conv, cpu_precision);
  }
  // --device cpu (or a CPU --conv-impl): what the CPU backend cannot run, resolve_cpu_conv refuses.
  return cpu::make_cpu_backend(options.threads, options.conv_impl, options.precision);
}

}  // namespace fervid
