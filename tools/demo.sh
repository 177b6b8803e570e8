#!/usr/bin/env bash
# The main job on a built-in default: build fervid, make untrained demo weights for the study's
# model card, make a short sample clip with the ffmpeg CLI, classify it and print the result
# table. --device auto uses the GPU when one is usable and the CPU otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)" --target fervid
fervid="$build/bin/fervid"

demo=out/demo
mkdir -p "$demo"
weights="$demo/ravdess-vgg16-demo.safetensors"
[ -f "$weights" ] || "$fervid" make-weights --seed 2026 --spec ravdess-vgg16 --out "$weights"

clip="$demo/sample.mp4"
if [ ! -f "$clip" ]; then
  face=../shared/data/faces/astronaut.png
  [ -f "$face" ] || face=out/test-data/faces/astronaut.png  # tools/make-test-data.sh's
  if [ -f "$face" ]; then
    # A real face on white, 1280x720 H.264 like a RAVDESS clip, with a slow zoom.
    ffmpeg -nostdin -v error -y -loop 1 -i "$face" -t 2 -r 15 \
      -vf "scale=-2:720,pad=1280:720:(ow-iw)/2:0:white,zoompan=z='1+0.002*on':d=1:s=1280x720:fps=15,format=yuv420p" "$clip"
  else
    ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=1280x720:rate=15 -t 2 -pix_fmt yuv420p "$clip"
  fi
fi

echo "classifying $clip (untrained demo weights: the labels mean nothing, the pipeline is real)"
"$fervid" classify "$clip" --weights "$weights" --device auto --stride 3 --crop center

cat <<NEXT

What you see: one row per input. label: the vote over its sampled frames; p: that label's mean
probability over those frames; votes: how many of the frames the label won; status: ok, or why
the input failed. --format csv (or jsonl) gives every class's count_<class> and p_<class>.
The binary is $fervid (fervid --help lists the commands). Next:
  $fervid classify YOUR_CLIPS/ --weights YOUR_MODEL.safetensors --format csv --output rows.csv
  $fervid eval RAVDESS_FOLDER/ --weights YOUR_MODEL.safetensors --summary summary.json
  $fervid explain $clip --weights $weights --out $demo/explained   (Grad-CAM heat maps)
  $fervid bench --device auto                                         (frames/s of this machine)
Your own PyTorch, Keras or ONNX model: tools/export_weights.py (weights/README.md).
From Python: docs/python.md.
NEXT
