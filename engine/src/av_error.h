// FFmpeg's text for one of its error codes, for the messages of the decoder and the encoder.
#pragma once

extern "C" {
#include <libavutil/error.h>
}

#include <string>

namespace fervid {

inline std::string av_error(int code) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(code, buf, sizeof(buf));
  return buf;
}

}  // namespace fervid
