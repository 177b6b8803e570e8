#!/usr/bin/env bash
# Makes the part of the shared test data that Debian's packages carry, for a clone that has no
# ../shared/data beside it:
#   faces/astronaut.png    python3-skimage's sample (public domain)
#   faces/messi5.jpg       opencv-doc's sample data
#   video/vtest.avi        opencv-doc's sample data (real street footage)
#   video/astronaut-720p.mp4  made here from astronaut.png with the ffmpeg CLI: 1280x720, 30 fps,
#                          105 frames, H.264 High, the portrait centred on white, zooming slowly,
#                          its index at the end (not +faststart: a test reads it from a pipe)
# The packages are fetched with `apt-get download` (no root, nothing installed) and only these
# files are taken out of them. The RAVDESS clips cannot be made: tests that need them skip and
# say so. Usage: tools/make-test-data.sh [DIR] (default out/test-data). Idempotent; the folder
# appears complete or not at all.
set -euo pipefail

dir=${1:-out/test-data}
if [ -f "$dir/video/astronaut-720p.mp4" ]; then exit 0; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "make-test-data: fetching opencv-doc and python3-skimage's samples into $dir"
(cd "$work" && apt-get download -qq opencv-doc python3-skimage 2>/dev/null) || {
  echo "make-test-data: apt-get download failed (no network?): the data tests will skip" >&2
  exit 1
}
take() {  # take PACKAGE_GLOB PATH_IN_PACKAGE DESTINATION
  dpkg-deb --fsys-tarfile "$work"/$1 | tar -x -O "./$2" >"$3"
}
mkdir -p "$work/data/faces" "$work/data/video"
take 'python3-skimage_*.deb' usr/lib/python3/dist-packages/skimage/data/astronaut.png \
  "$work/data/faces/astronaut.png"
take 'opencv-doc_*.deb' usr/share/doc/opencv-doc/examples/data/messi5.jpg "$work/data/faces/messi5.jpg"
take 'opencv-doc_*.deb' usr/share/doc/opencv-doc/examples/data/vtest.avi "$work/data/video/vtest.avi"

# The portrait at 600 pixels, growing by 0.9 a frame, centred on a white 1280x720 background.
ffmpeg -v error -y -f lavfi -i "color=white:s=1280x720:r=30" \
  -loop 1 -framerate 30 -i "$work/data/faces/astronaut.png" \
  -filter_complex "[1:v]scale=w='2*trunc((600+0.9*n)/2)':h=-2:eval=frame[s];[0:v][s]overlay=x='(W-w)/2':y='(H-h)/2':eval=frame:shortest=1,format=yuv420p" \
  -frames:v 105 -c:v libx264 -profile:v high -pix_fmt yuv420p \
  "$work/data/video/astronaut-720p.mp4"

cat >"$work/data/README.md" <<'EOF'
Made by tools/make-test-data.sh from Debian's python3-skimage and opencv-doc (their samples'
licences: public domain; OpenCV's sample data) and the ffmpeg CLI. No RAVDESS clips: the tests
that need them skip.
EOF
mkdir -p "$(dirname "$dir")"
rm -rf "$dir"
mv "$work/data" "$dir"
echo "make-test-data: $dir ready (no RAVDESS clips: those tests skip)"
