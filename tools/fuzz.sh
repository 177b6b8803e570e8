#!/usr/bin/env bash
# Runs every libFuzzer target of tests/fuzz/ for a bounded time (FERVID_FUZZ_SECONDS each,
# default 40; two at a time) on a build made by tools/sanitize.sh (clang, ASan+UBSan, FERVID_FUZZ).
# Seed corpora are made here from valid files (weights and cards from fervid make-weights, rows
# from fervid classify and eval, clips and images from ffmpeg) and joined with the committed
# corpus, tests/fuzz/corpus/<target>/. Any finding fails: its input is kept in the work folder
# and replayed with the reason; docs/reliability.md says how to turn it into a regression test.
#   tools/fuzz.sh [BUILD_DIR [WORK_DIR]]      (default build-san, a temporary folder)
#   FERVID_FUZZ_TARGETS="rows cli" tools/fuzz.sh    only these
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=$(cd "${1:-build-san}" && pwd)
work=${2:-$(mktemp -d /tmp/fervid-fuzz-XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
seconds=${FERVID_FUZZ_SECONDS:-40}
targets=${FERVID_FUZZ_TARGETS:-"safetensors model_card labels_csv boxes_csv rows cli video image"}
fervid="$build/bin/fervid"
seeds="$work/seeds"
rm -rf "$seeds" && mkdir -p "$seeds"/{safetensors,model_card,labels_csv,boxes_csv,rows,cli,video,image}
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

echo "fuzz: seeds in $seeds"
# A seed ffmpeg cannot make is left out, with a word (the other seeds and the corpus remain).
ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "$@" || echo "fuzz: no seed ${*: -1}"; }
# Model cards: the shipped ones and the small network of the safetensors target.
cp weights/*.json "$seeds/model_card/"
tiny="$seeds/model_card/tiny.json"
cat >"$tiny" <<'CARD'
{"name": "fuzz-tiny", "config": [4, "M", 8, "M"], "input_size": 8, "head": "gap", "dense": [6],
 "classes": ["a", "b", "c"], "preprocess": {"channel_order": "bgr", "scale": 1, "mean": [1, 2, 3],
 "std": [4, 5, 6]}, "crop": "center", "vote": "majority"}
CARD
cat >"$seeds/model_card/flatten.json" <<'CARD'
{"name": "fuzz-flat", "config": [2, "M"], "input_size": 4, "head": "flatten", "dense": [3, 2],
 "classes": ["x", "y"], "crop": "box=1,1,2,2"}
CARD
# Weights: the small network in each stored dtype (the card in their metadata).
for dtype in f32 f16 bf16; do
  "$fervid" make-weights --seed 7 --spec "$tiny" --dtype $dtype \
    --out "$seeds/safetensors/tiny-$dtype.safetensors" >/dev/null
done
# Clips and images: a few codecs and containers, small.
src=(-f lavfi -i "testsrc2=size=48x32:rate=5:duration=1")
ff "${src[@]}" -c:v libx264 -pix_fmt yuv420p "$seeds/video/h264.mp4"
ff "${src[@]}" -c:v mpeg4 "$seeds/video/mpeg4.avi"
ff "${src[@]}" -c:v mjpeg "$seeds/video/mjpeg.mkv"
ff "${src[@]}" -c:v libvpx-vp9 "$seeds/video/vp9.webm"
ff "${src[@]}" -c:v gif "$seeds/video/anim.gif"
ff "${src[@]}" -c:v ffv1 "$seeds/video/ffv1.mkv"
ff "${src[@]}" -c:v libx264 -metadata:s:v rotate=90 "$seeds/video/rotated.mov"
# One seed per format stb_image reads (its PNM and HDR headers once let a 0-pixel side through).
for fmt in png jpg bmp tga ppm pgm; do
  ff -f lavfi -i "testsrc2=size=20x12" -frames:v 1 "$seeds/image/im.$fmt"
done
ff -f lavfi -i "testsrc2=size=20x12" -frames:v 1 -pix_fmt rgba "$seeds/image/rgba.png"
{ printf '#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 2 +X 2\n'; printf 'abcdefghijklmnop'; } \
  >"$seeds/image/im.hdr"
cp "$seeds/video/anim.gif" "$seeds/image/"
# Rows: classify and eval of two clips with the small weights, as JSON Lines.
mkdir -p "$work/inputs"
cp "$seeds/video/h264.mp4" "$work/inputs/a.mp4"
cp "$seeds/video/mpeg4.avi" "$work/inputs/b.avi"
printf 'path,label\na.mp4,a\nb.avi,c\n' >"$work/inputs/labels.csv"
w="$seeds/safetensors/tiny-f32.safetensors"
"$fervid" classify "$work/inputs/a.mp4" "$work/inputs/b.avi" "$work/missing.mp4" --weights "$w" \
  --format jsonl --output "$seeds/rows/classify.jsonl" --quiet || true
"$fervid" eval "$work/inputs/a.mp4" "$work/inputs/b.avi" --weights "$w" --labels \
  "$work/inputs/labels.csv" --format jsonl --output "$seeds/rows/eval.jsonl" --quiet >/dev/null
"$fervid" classify "$work/inputs/a.mp4" --weights "$w" --format jsonl --shard 1/2 \
  --output "$seeds/rows/shard.jsonl" --quiet || true
# CSVs: the labels target's inputs are a.mp4 and clips/b.mp4 beside the CSV.
printf 'path,label\na.mp4,happy\nclips/b.mp4,sad\n' >"$seeds/labels_csv/header.csv"
printf '\xef\xbb\xbfa.mp4,calm\r\n"clips/b.mp4",neutral\r\n' >"$seeds/labels_csv/bom-crlf.csv"
printf 'path,x,y,w,h\na.mp4,1,2,30,20\n"clips/b,c.mp4",0,0,1,1\n' >"$seeds/boxes_csv/header.csv"
printf '\xef\xbb\xbfa.mp4,10,10,100,100\r\n' >"$seeds/boxes_csv/bom-crlf.csv"
# Command lines, NUL between arguments.
i=0
while IFS= read -r line; do
  i=$((i + 1))
  printf '%s' "$line" | tr ' ' '\0' >"$seeds/cli/$i"
done <<'LINES'
classify a.mp4 --weights w.safetensors --batch 4 --stride 2 --max-frames 30 --crop box=1,2,3,4
classify v --device cpu --precision fp32 --threads 2 --format jsonl --output o.jsonl --resume
classify v --crop center --vote majority --frames f.csv --logits --decode-threads 3 --shard 2/5
eval d --labels l.csv --actors 1-3,7 --emotions happy,sad --modality video --channel speech
eval d --summary s.json --confusion c.png --format csv --output - --decoder cpu
merge a.jsonl b.jsonl --output m.jsonl --summary s.json --quiet
make-weights --seed 3 --out w.safetensors --spec torchvision-vgg16 --dtype bf16
inspect w.safetensors --spec card.json
bench --device cpu --batch 1 --batch 8 --iters 2 --warmup 0 --json
bench --end-to-end a.mp4 --repeat 2 --decode-threads 1 --decode-threads 2 --decode-only
--version
classify --help
LINES

echo "fuzz: ${seconds} s per target: $targets"
mkdir -p "$work/findings"
run_target() {
  local t=$1
  local corpus="$work/corpus/$t"
  mkdir -p "$corpus"
  local extra=()
  [ -d "$root/tests/fuzz/corpus/$t" ] && extra+=("$root/tests/fuzz/corpus/$t")
  if "$build/fuzz/${t}_fuzz" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 \
    -close_fd_mask=3 -print_final_stats=1 -artifact_prefix="$work/findings/$t-" \
    "$corpus" "$seeds/$t" "${extra[@]}" >"$work/$t.log" 2>&1; then
    local runs
    runs=$(grep -m1 'stat::number_of_executed_units' "$work/$t.log" | awk '{print $2}')
    local units
    units=$(ls "$corpus" | wc -l)
    echo "fuzz: $t: ok, ${runs:-?} inputs tried, $units in its corpus"
  else
    echo "fuzz: $t: FINDING (log: $work/$t.log)"
    return 1
  fi
}
export -f run_target
export work seconds build root seeds
failed=0
printf '%s\n' $targets | xargs -P 2 -I{} bash -c 'run_target {}' || failed=1
if [ "$failed" -ne 0 ] || [ -n "$(ls "$work/findings")" ]; then
  for f in "$work"/findings/*; do
    [ -e "$f" ] || continue
    t=$(basename "$f" | sed 's/-\(crash\|leak\|timeout\|oom\|slow-unit\)-.*//')
    echo "fuzz: finding $f, replayed by $build/fuzz/${t}_fuzz $f:"
    "$build/fuzz/${t}_fuzz" "$f" 2>&1 | grep -v '^INFO\|^Running\|^Executed' | head -40 || true
    echo "fuzz: keep it as a regression input: cp $f tests/fuzz/corpus/$t/ (then fix, then ctest -R fuzz_corpus_$t)"
  done
  echo "fuzz: FAILED"
  exit 1
fi
echo "fuzz: no findings"
