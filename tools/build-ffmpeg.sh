#!/usr/bin/env bash
# A static, minimal FFmpeg 5.1 for the fervid carried to the lent GPU machine, which has no Debian
# packages (docs/gpu.md, issue 8). Built from Debian's own source package of FFmpeg (the same
# 5.1 as the normal build's shared libraries), configured with --disable-everything plus what
# fervid and its tests use: the demuxers, parsers, bitstream filters and software decoders of the
# shared videos and RAVDESS (H.264, HEVC, MPEG-4, MS-MPEG4, FFV1, MJPEG, PNG, raw), the NVDEC
# hwaccels through the ffnvcodec headers (libcuda and libnvcuvid are loaded at run time from the
# driver), and for the tests' clip making the ffmpeg CLI with lavfi sources and a few native
# encoders. Position-independent static libraries and the CLI land in out/ffmpeg-static.
#   tools/build-ffmpeg.sh        (~2-4 minutes on 2 cores; a second run reuses the result)
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=$(pwd)/out/ffmpeg-static
if [ -f "$prefix/lib/libavcodec.a" ] && [ -x "$prefix/bin/ffmpeg" ]; then
  echo "build-ffmpeg: $prefix is there"
  exit 0
fi
src=out/ffmpeg-src
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
# Build dependencies of this minimal build: the ffnvcodec headers, nasm, zlib.
need=()
for p in libffmpeg-nvenc-dev nasm zlib1g-dev dpkg-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [ ! -d "$src" ]; then
  # Debian's source package: deb-src entries for the configured suites, then `apt-get source`.
  if ! apt-get source --download-only -q ffmpeg >/dev/null 2>&1; then
    list=/etc/apt/sources.list.d/fervid-deb-src.sources
    sed -n 's/^Types: deb$/Types: deb-src/p; /^URIs:/p; /^Suites:/p; /^Components:/p; /^Signed-By:/p; /^$/p' \
      /etc/apt/sources.list.d/debian.sources | $sudo tee "$list" >/dev/null
    $sudo apt-get update -qq
  fi
  mkdir -p out/ffmpeg-download
  (cd out/ffmpeg-download && apt-get source --download-only -q ffmpeg >/dev/null 2>&1)
  orig=$(ls out/ffmpeg-download/ffmpeg_*.orig.tar.xz | head -1)
  mkdir -p "$src"
  tar -C "$src" --strip-components=1 -xJf "$orig"
fi
cd "$src"
./configure --prefix="$prefix" --enable-static --disable-shared --enable-pic \
  --disable-autodetect --disable-doc --disable-debug --disable-everything \
  --enable-avcodec --enable-avformat --enable-avutil --enable-swscale --enable-avfilter \
  --enable-avdevice --enable-swresample --enable-ffmpeg --disable-ffplay --disable-ffprobe \
  --enable-zlib --enable-ffnvcodec --enable-nvdec --enable-cuda \
  --enable-protocol=file,pipe \
  --enable-demuxer=mov,matroska,avi,rawvideo,image2,h264,hevc,m4v,mpegts \
  --enable-muxer=mp4,mov,ipod,matroska,avi,rawvideo,image2,null \
  --enable-parser=h264,hevc,mpeg4video,png,mjpeg \
  --enable-bsf=h264_mp4toannexb,hevc_mp4toannexb,extract_extradata \
  --enable-decoder=h264,hevc,mpeg4,msmpeg4v1,msmpeg4v2,msmpeg4v3,ffv1,rawvideo,png,mjpeg,aac,pcm_s16le \
  --enable-encoder=mpeg4,ffv1,rawvideo,png,mjpeg,aac,wrapped_avframe \
  --enable-hwaccel=h264_nvdec,hevc_nvdec,mpeg4_nvdec \
  --enable-indev=lavfi \
  --enable-filter=scale,format,select,pad,zoompan,null,setpts,fps,testsrc,testsrc2,smptebars,rgbtestsrc,mandelbrot,color,trim,copy,buffer,buffersink,sine,aresample,aformat,anull,abuffer,abuffersink \
  >../ffmpeg-configure.log 2>&1 || { tail -20 ../ffmpeg-configure.log; exit 1; }
make -j "$(nproc)" >../ffmpeg-build.log 2>&1 || { tail -30 ../ffmpeg-build.log; exit 1; }
make install >>../ffmpeg-build.log 2>&1
echo "build-ffmpeg: $(ls "$prefix/lib"/*.a | wc -l) static libraries and $prefix/bin/ffmpeg"
