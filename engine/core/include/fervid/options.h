// The engine's options as typed values, and the one place their text forms (the CLI's flags, the
// Python module's keywords) are parsed. A parse function fails with one line naming the option
// and what it accepts; everything below the API boundary takes the typed values and never looks
// at a string again.
#pragma once

#include <string>

namespace fervid {

// --device: auto picks CUDA when a device is usable and the CPU otherwise.
enum class DeviceChoice { Auto, Cpu, Cuda };
// --precision: the arithmetic of the frame stage. Default: the backend's own (fp16 on CUDA,
// fp32 on the CPU). Int8: the CPU backend's convolutions on 8-bit integers, with the activation
// scales a calibration run wrote into the weights' card (fervid calibrate; docs/int8.md).
enum class Precision { Default, Fp32, Tf32, Fp16, Bf16, Int8 };
// --conv-impl: the conv3x3 of the CUDA backend (cuDNN, or Igemm: fervid's implicit-GEMM
// tensor-core kernel with the pool fused, spelled "fervid" on the command line; auto: the faster
// per layer) or of the CPU backend (oneDNN direct, oneDNN Winograd, or im2col + OpenBLAS; auto:
// Winograd in fp32 and direct in bf16 when the build has oneDNN).
enum class ConvImpl { Auto, Cudnn, Igemm, Onednn, Winograd, Blas };
// --decoder: where videos are decoded (auto: NVDEC when the backend reads device frames).
enum class DecoderChoice { Auto, Nvdec, Cpu };

DeviceChoice parse_device(const std::string& text);
Precision parse_precision(const std::string& text);  // "" = Default
ConvImpl parse_conv_impl(const std::string& text);
DecoderChoice parse_decoder(const std::string& text);
// "on" -> true, "off" -> false, anything else a one-line error naming the option by its `key`
// ("cuda_graphs"; fervid/error.h).
bool parse_on_off(const std::string& key, const std::string& value);

const char* device_choice_name(DeviceChoice d);  // "auto", "cpu", "cuda"
const char* precision_name(Precision p);         // "fp32", ...; "" for Default
const char* conv_impl_name(ConvImpl c);  // "auto", "cudnn", "fervid", "onednn", "winograd", "blas"
// Whether `c` is one of the CPU backend's (onednn, winograd, blas) or the CUDA backend's (cudnn,
// fervid).
bool cpu_conv_impl(ConvImpl c);
bool cuda_conv_impl(ConvImpl c);

// What a backend is made with (make_backend in the engine checks the combinations once).
struct BackendOptions {
  DeviceChoice device = DeviceChoice::Auto;
  Precision precision = Precision::Default;
  int threads = 0;  // CPU threads; 0 = all cores
  ConvImpl conv_impl = ConvImpl::Auto;
  bool cuda_graphs = true;  // CUDA: the frame stage as replayed graphs
};

}  // namespace fervid
