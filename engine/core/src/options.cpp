#include "fervid/options.h"

#include "fervid/error.h"

namespace fervid {

DeviceChoice parse_device(const std::string& text) {
  if (text == "auto") return DeviceChoice::Auto;
  if (text == "cpu") return DeviceChoice::Cpu;
  if (text == "cuda") return DeviceChoice::Cuda;
  fail_option("{{device}} " + text + ": expected auto, cpu or cuda");
}

Precision parse_precision(const std::string& text) {
  if (text.empty()) return Precision::Default;
  if (text == "fp32") return Precision::Fp32;
  if (text == "tf32") return Precision::Tf32;
  if (text == "fp16") return Precision::Fp16;
  if (text == "bf16") return Precision::Bf16;
  if (text == "int8") return Precision::Int8;
  fail_option("{{precision}} " + text + ": expected fp32, tf32, fp16, bf16 or int8");
}

ConvImpl parse_conv_impl(const std::string& text) {
  if (text == "auto") return ConvImpl::Auto;
  if (text == "cudnn") return ConvImpl::Cudnn;
  if (text == "fervid") return ConvImpl::Igemm;
  if (text == "onednn") return ConvImpl::Onednn;
  if (text == "winograd") return ConvImpl::Winograd;
  if (text == "blas") return ConvImpl::Blas;
  fail_option("{{conv_impl}} " + text +
              ": expected auto, cudnn, fervid (CUDA), onednn, winograd or blas (CPU)");
}

DecoderChoice parse_decoder(const std::string& text) {
  if (text == "auto") return DecoderChoice::Auto;
  if (text == "nvdec") return DecoderChoice::Nvdec;
  if (text == "cpu") return DecoderChoice::Cpu;
  fail_option("{{decoder}} " + text + ": expected auto, nvdec or cpu");
}

bool parse_on_off(const std::string& key, const std::string& value) {
  if (value != "on" && value != "off")
    fail_option("{{" + key + "}} " + value + ": expected on or off");
  return value == "on";
}

const char* device_choice_name(DeviceChoice d) {
  switch (d) {
    case DeviceChoice::Cpu:
      return "cpu";
    case DeviceChoice::Cuda:
      return "cuda";
    case DeviceChoice::Auto:
      break;
  }
  return "auto";
}

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::Fp32:
      return "fp32";
    case Precision::Tf32:
      return "tf32";
    case Precision::Fp16:
      return "fp16";
    case Precision::Bf16:
      return "bf16";
    case Precision::Int8:
      return "int8";
    case Precision::Default:
      break;
  }
  return "";
}

const char* conv_impl_name(ConvImpl c) {
  switch (c) {
    case ConvImpl::Cudnn:
      return "cudnn";
    case ConvImpl::Igemm:
      return "fervid";
    case ConvImpl::Onednn:
      return "onednn";
    case ConvImpl::Winograd:
      return "winograd";
    case ConvImpl::Blas:
      return "blas";
    case ConvImpl::Auto:
      break;
  }
  return "auto";
}

bool cpu_conv_impl(ConvImpl c) {
  return c == ConvImpl::Onednn || c == ConvImpl::Winograd || c == ConvImpl::Blas;
}
bool cuda_conv_impl(ConvImpl c) { return c == ConvImpl::Cudnn || c == ConvImpl::Igemm; }

}  // namespace fervid
