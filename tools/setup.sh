#!/usr/bin/env bash
# Installs the Debian packages fervid needs when they are missing. Idempotent, and quiet when
# everything is already there. The CUDA 13 toolkit with cuDNN and cuBLAS is expected at
# /usr/local/cuda (the machine image has it); without nvcc the build is CPU-only.
set -euo pipefail

packages=(
  cmake ninja-build pkg-config g++ clang-format
  libavformat-dev libavcodec-dev libswscale-dev libavutil-dev ffmpeg
  libopenblas-dev libstb-dev nlohmann-json3-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev libopencv-objdetect-dev opencv-data
  python3-torch python3-torchvision python3-numpy python3-pil
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
