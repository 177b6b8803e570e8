#!/usr/bin/env bash
# The GPU round (docs/gpu.md). The lent GPU machine gives a session 15 minutes in all, machine
# starts included, at most 10 minutes a command, so the round is three calls of prepared work,
# each stopping its steps at a deadline and writing what it learns to $OUT as it goes.
#
# Here, without a GPU:
#   tools/gpu-check.sh pack       build fervid and the CUDA test programs for sm_90a with a static
#                                 FFmpeg, and pack them with the libraries they load (all but
#                                 glibc, libstdc++, cuDNN and cuBLASLt), the shared test data and
#                                 real frames into out/gpu-bundle.tar.xz
#   tools/gpu-check.sh selfcheck  unpack that bundle in a fresh folder with this checkout, ../shared
#                                 and the CUDA toolkit hidden (a mount namespace), cuDNN and
#                                 cuBLASLt only in the folders NVIDIA's wheels put them in, and
#                                 check: ldd leaves exactly those two to the wheels, fervid prints
#                                 their versions, every CUDA test program runs its host tests,
#                                 a CPU classify of the bundled clips works, each phase runs alone
# On the GPU machine (the device tool's run, carry ["out/gpu-bundle.tar.xz"]):
#   tools/gpu-check.sh run a      call A, ~5 min: env, tests, bench, classify
#   tools/gpu-check.sh run b      call B, ~4 min: env, retest, sanitize, bench-more
#   tools/gpu-check.sh run c      call C, ~8 min: env, torch, e2e (when A and B are clean)
#   tools/gpu-check.sh run PHASE...   any phases alone, in the order given
# Phases:
#   env         GPU, driver, libnvcuvid, compute-sanitizer, Python/torch/cuDNN, fervid --version,
#               ldd of every bundle binary, CPU
#   tests       the CUDA test programs, each under its own timeout
#   bench       fervid bench fp16 at batch 256 with --conv-impl auto, cudnn, fervid
#   classify    the bundled RAVDESS clips and a face video with --decoder cpu and nvdec: labels
#               compared, frames/s
#   retest      the programs and gtest filters in FERVID_RETEST ("prog=Suite.Test:Suite.*" ...)
#   sanitize    compute-sanitizer memcheck, racecheck, synccheck on fervid's own kernels only
#   bench-more  bf16 (each conv impl), tf32, fp32 at batch 256; fp16 at batch 1 (latency)
#   torch       PyTorch eager/channels-last/CUDA graph/torch.compile on the same weights
#               (bench/baselines/torch_gpu.py)
#   e2e         fervid bench --end-to-end over decoders and decode threads, and the PyTorch user
#               pipeline (bench/baselines/torch_pipeline.py)
# Environment: FERVID_BUDGET (seconds for the call; default a 420, b 300, c 540, else 540),
# FERVID_RETEST, FERVID_DEVICE (cuda), FERVID_CLASSIFY_ARGS (more classify flags; selfcheck's CPU
# classify takes a few frames a clip), FERVID_COMPILE (torch.compile mode,
# "none" skips it), FERVID_NVIDIA (the folder holding cudnn/lib and cu13/lib; default: Python's
# nvidia package), FERVID_BUNDLE. At most 8 files land in $OUT: env.txt, summary.txt, tests.log
# (or retest.log, sanitize.log), bench.json, classify-cpu.csv, classify-nvdec.csv, torch.json.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bundle=${FERVID_BUNDLE:-$root/out/gpu-bundle.tar.xz}

pack() {
  set -e
  local build=build-gpu stage=out/gpu-bundle data=../shared/data
  [ -d "$data/ravdess" ] || {
    echo "gpu-check: pack needs $data with its RAVDESS clips (the round classifies them)" >&2
    return 1
  }
  tools/build-ffmpeg.sh
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFERVID_CUDA=ON \
    -DFERVID_CUDA_ARCHS=90a -DFERVID_VIDEO=ON "-DFERVID_FFMPEG_STATIC=$root/out/ffmpeg-static" \
    -DFERVID_FACE=OFF -DFERVID_BENCH=OFF >/dev/null
  local tests  # only fervid and the CUDA test programs travel (the CPU tests are CI's job)
  tests=$(ninja -C "$build" -t targets all | grep -oE '(^|/)cuda_[a-z0-9_]+_test: ' |
    sed 's|^/||; s|: $||' | sort -u | tr '\n' ' ')
  # shellcheck disable=SC2086
  cmake --build "$build" -j "$(nproc)" --target fervid $tests
  rm -rf "$stage" && mkdir -p "$stage/bin" "$stage/lib" "$stage/frames" "$stage/data"
  cp "$build/bin/fervid" out/ffmpeg-static/bin/ffmpeg "$stage/bin/"
  cp "$build"/tests/cuda_*_test "$stage/bin/"
  cp -rL "$data/video" "$data/faces" "$data/ravdess" "$stage/data/"
  # The face detector's weights (tools/setup.sh converts them), for the GPU detector's tests.
  local detector=${XDG_CACHE_HOME:-$HOME/.cache}/fervid
  mkdir -p "$stage/data/detector"
  cp "$detector"/blazeface-*-range.safetensors "$stage/data/detector/" 2>/dev/null ||
    echo "gpu-check: no face detector in $detector (tools/setup.sh makes it): cuda_face_detector_test will skip" >&2
  # The libraries the binaries load (OpenBLAS, oneDNN, gfortran, gomp, ...); glibc and libstdc++
  # are newer there, cuDNN and cuBLASLt come from the machine's Python wheels.
  for f in "$stage"/bin/*; do ldd "$f"; done | awk '/=> \//{print $3}' | sort -u |
    grep -Ev '/(libc|libm|libdl|librt|libpthread|libstdc\+\+|libgcc_s|ld-linux[^/]*|libcudnn[^/]*|libcublas[^/]*)\.so' |
    while read -r lib; do cp -L "$lib" "$stage/lib/"; done
  # Real frames (docs/design.md: real data only): the sampling of tests/network_compare.h.
  extract() {  # video, every n-th frame, name
    ffmpeg -nostdin -v error -i "$data/$1" -vf "select=not(mod(n\,$2))" -fps_mode passthrough \
      -q:v 2 "$stage/frames/$3_%03d.jpg"
  }
  extract video/astronaut-720p.mp4 8 astronaut
  extract video/vtest.avi 60 vtest
  extract ravdess/modified/01-01-07-02-02-01-01_1.mp4 20 ravdess-a
  extract ravdess/modified/01-01-08-02-01-01-19.mp4 20 ravdess-b
  git rev-parse HEAD >"$stage/COMMIT"
  git status --porcelain --untracked-files=no | grep -q . && echo "+ uncommitted changes" >>"$stage/COMMIT"
  tar -C out -cf - gpu-bundle | xz -T0 -6 >"$bundle"
  echo "gpu-check: $(du -h "$bundle" | cut -f1) in $bundle ($(ls "$stage/bin" | wc -l) binaries," \
    "$(ls "$stage/lib" | wc -l) libraries, $(ls "$stage/frames" | wc -l) frames," \
    "commit $(head -c12 "$stage/COMMIT"))"
}

# ---- the run on the GPU machine ------------------------------------------------------------

out="" work="" b="" py=python3 deadline=0 device=cuda

note() { echo "$*" | tee -a "$out/summary.txt"; }
# What is left of the call's budget, less a reserve for the summary.
left() { echo $((deadline - $(date +%s) - 10)); }
# Runs a command under `timeout`, at most LIMIT seconds and never past the deadline; output to
# the file FILE. Returns the command's status (124: stopped at its limit; 125: not started).
step() {
  local limit=$1 file=$2
  shift 2
  local l
  l=$(left)
  ((l < limit)) && limit=$l
  if ((limit < 5)); then
    echo "(not run: the call's budget is spent)" >>"$file"
    return 125
  fi
  timeout -k 5 "$limit" "$@" >>"$file" 2>&1
}

setup_run() {
  out=${OUT:-$root/out/gpu-check}
  work=/tmp/fervid-gpu-$$
  mkdir -p "$out" "$work"
  [ -f "$bundle" ] || {
    echo "gpu-check: no $bundle; run tools/gpu-check.sh pack first" >&2
    exit 2
  }
  xz -dc "$bundle" | tar -C "$work" -xf - || {
    echo "gpu-check: cannot unpack $bundle" >&2
    exit 2
  }
  b=$work/gpu-bundle
  local nv=${FERVID_NVIDIA:-}
  [ -n "$nv" ] || nv=$($py -c 'import nvidia, os; print(list(nvidia.__path__)[0])' 2>/dev/null || true)
  export LD_LIBRARY_PATH="${nv:+$nv/cu13/lib:$nv/cudnn/lib:}$b/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export FERVID_TEST_FRAMES=$b/frames FERVID_TEST_DATA=$b/data FERVID_BIN=$b/bin/fervid
  [ -f "$b/data/detector/blazeface-short-range.safetensors" ] &&
    export FERVID_DETECTOR=$b/data/detector/blazeface-short-range.safetensors
  export PATH="$b/bin:$PATH"
  device=${FERVID_DEVICE:-cuda}
  nvidia_dir=$nv
}

phase_env() {
  {
    echo "== env: $(date -u +%FT%TZ), bundle commit $(tr '\n' ' ' <"$b/COMMIT")"
    if command -v nvidia-smi >/dev/null; then
      nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,compute_mode \
        --format=csv,noheader 2>&1 | head -4
    else
      echo "nvidia-smi: none (no driver here)"
    fi
    echo "libnvcuvid (NVDEC): $( (ldconfig -p 2>/dev/null | grep -m1 -o '/[^ ]*libnvcuvid.so[.0-9]*') ||
      find /usr/lib /usr/lib64 /usr/local/nvidia -name 'libnvcuvid.so*' 2>/dev/null | head -1 || true)"
    local cs
    cs=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
    echo "compute-sanitizer: ${cs:-none} $([ -n "$cs" ] && "$cs" --version 2>&1 | tail -1)"
    echo "nvcc: $( (nvcc --version 2>/dev/null || echo none) | tail -1)"
    echo "python: $($py --version 2>&1); nvidia wheels: ${nvidia_dir:-none}"
    $py -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())' 2>&1 | tail -1
    echo "cpu: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p'), $(nproc) cores"
    "$b/bin/fervid" --version 2>&1
    echo "ldd of the bundle's binaries (LD_LIBRARY_PATH=$LD_LIBRARY_PATH):"
    local f
    for f in "$b"/bin/*; do
      local missing
      missing=$(ldd "$f" 2>&1 | grep 'not found' | awk '{print $1}' | tr '\n' ' ')
      echo "  $(basename "$f"): ${missing:+MISSING }${missing:-all found}"
    done
    ldd "$b/bin/fervid" 2>&1 | grep -E 'cudnn|cublas' | sed 's/^/  fervid loads /'
  } 2>&1 | tee "$out/env.txt"
}

# The gtest summary of one program's log: "N passed, M failed, K skipped" and the failed names.
gtest_summary() {
  local log=$1 passed failed skipped names
  passed=$(sed -n 's/.*\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
  failed=$(sed -n 's/.*\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
  skipped=$(sed -n 's/.*\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$log" | head -1)
  names=$(sed -n 's/^\[  FAILED  \] \([A-Za-z0-9_]*\.[A-Za-z0-9_]*\).*/\1/p' "$log" | sort -u | tr '\n' ':')
  echo "${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped${names:+; retest with ${names%:}}"
}

# The CUDA test programs, the quick op tests first, each with its own limit (seconds).
phase_tests() {
  echo "== tests"
  : >"$out/tests.log"
  local t name limit log rc
  for name in vote softmax_argmax maxpool2x2 bias_relu global_avgpool linear preprocess \
    conv2d frame_sink gradcam conv3x3_bias_relu backend; do
    t=$b/bin/cuda_${name}_test
    [ -x "$t" ] || continue
    case $name in backend) limit=200 ;; conv3x3_bias_relu) limit=120 ;; *) limit=45 ;; esac
    log=$work/cuda_${name}_test.log
    : >"$log"
    local t0=$SECONDS
    (cd "$work" && step "$limit" "$log" "$t")
    rc=$?
    cat "$log" >>"$out/tests.log"
    if ((rc == 124 || rc == 137)); then
      note "cuda_${name}_test: STOPPED at its limit after $((SECONDS - t0)) s, in $(grep '^\[ RUN' "$log" | tail -1 | cut -c14-)"
    elif ((rc == 125)); then
      note "cuda_${name}_test: not run (budget spent)"
    else
      note "cuda_${name}_test: exit $rc in $((SECONDS - t0)) s: $(gtest_summary "$log")"
    fi
    grep -E '^\[ (network|gradcam|auto|streams) ' "$log" | sed 's/^/    /' | tee -a "$out/summary.txt"
  done
}

phase_retest() {
  echo "== retest: ${FERVID_RETEST:-nothing named (set FERVID_RETEST)}"
  : >"$out/retest.log"
  local item prog filter log rc
  for item in ${FERVID_RETEST:-}; do
    prog=${item%%=*}
    filter=${item#*=}
    [ "$filter" = "$item" ] && filter='*'
    log=$work/retest-$prog.log
    : >"$log"
    (cd "$work" && step 120 "$log" "$b/bin/$prog" --gtest_filter="$filter")
    rc=$?
    cat "$log" >>"$out/retest.log"
    note "retest $prog ($filter): exit $rc: $(gtest_summary "$log")"
  done
}

# fervid bench runs, their JSON collected in bench.json (appended when several phases run).
run_bench() {
  local name=$1
  shift
  local f=$work/bench-$name.json err=$work/bench-$name.err t0=$SECONDS rc
  : >"$f"
  : >"$err"
  step 90 "$err" "$b/bin/fervid" bench --device "$device" --spec ravdess-vgg16 --json \
    --iters 20 --warmup 5 "$@" >"$f"
  rc=$?
  if ((rc == 0)) && [ -s "$f" ]; then
    $py - "$f" "$name" "$((SECONDS - t0))" <<'PY' | tee -a "$out/summary.txt"
import json, sys
r = json.load(open(sys.argv[1]))
for x in r["results"]:
    print(f"bench {sys.argv[2]}: batch {x['batch']}: {x['frames_per_s']:.0f} frames/s, "
          f"{x['ms_per_batch']:.3f} ms a batch, {x['tflop_per_s']:.1f} TFLOP/s "
          f"({sys.argv[3]} s)")
PY
  else
    note "bench $name: FAILED (exit $rc in $((SECONDS - t0)) s): $(tail -2 "$err" | tr '\n' ' ')"
  fi
  collect_bench
}

collect_bench() {
  $py - "$out/bench.json" "$work"/bench-*.json <<'PY'
import json, sys
rows = []
for f in sys.argv[2:]:
    try:
        rows.append(json.load(open(f)))
    except Exception:
        pass
json.dump(rows, open(sys.argv[1], "w"), indent=1)
PY
}

phase_bench() {
  echo "== bench: fp16, batch 256, each conv implementation"
  local impl
  for impl in auto cudnn fervid; do run_bench "fp16-$impl" --precision fp16 --batch 256 --conv-impl "$impl"; done
  # The per-layer choice of the auto run: cuDNN (+ pool kernel) against fervid's kernel.
  $py - "$work/bench-fp16-auto.json" <<'PY' 2>/dev/null | tee -a "$out/summary.txt"
import json, sys
r = json.load(open(sys.argv[1]))
for l in r.get("conv_layers", []):
    if "timed_batch" in l:
        print(f"  {l['layer']:<8} {l['size']:>3}^2 {l['in_channels']:>3}>{l['out_channels']:<3} "
              f"{'pool' if l['pool'] else '    '} cudnn {l['cudnn_ms']:.3f} ms, fervid {l['fervid_ms']:.3f} ms "
              f"at batch {l['timed_batch']} -> {l['impl']}")
PY
}

phase_bench_more() {
  echo "== bench-more: bf16 (each conv impl), tf32, fp32 at batch 256; fp16 latency at batch 1"
  local impl
  for impl in auto cudnn fervid; do run_bench "bf16-$impl" --precision bf16 --batch 256 --conv-impl "$impl"; done
  run_bench tf32-auto --precision tf32 --batch 256
  run_bench fp32-auto --precision fp32 --batch 256
  run_bench fp16-batch1 --precision fp16 --batch 1
}

phase_classify() {
  echo "== classify: the bundled RAVDESS clips and a face video, CPU decode and NVDEC"
  local w=$work/study.safetensors dec decoders=cpu
  "$b/bin/fervid" make-weights --seed 7 --out "$w" >/dev/null 2>&1 || {
    note "classify: make-weights failed"
    return
  }
  [ "$device" = cuda ] && decoders="cpu nvdec"
  for dec in $decoders; do
    local t0=$SECONDS rc
    # shellcheck disable=SC2086
    step 90 "$work/classify-$dec.err" "$b/bin/fervid" classify "$b/data/ravdess" \
      "$b/data/video/astronaut-720p.mp4" --weights "$w" --device "$device" --decoder "$dec" \
      --format csv --output "$out/classify-$dec.csv" ${FERVID_CLASSIFY_ARGS:-}
    rc=$?
    note "classify --device $device --decoder $dec: exit $rc in $((SECONDS - t0)) s;" \
      "$(tail -1 "$work/classify-$dec.err")"
  done
  [ -f "$out/classify-cpu.csv" ] && [ -f "$out/classify-nvdec.csv" ] &&
    $py - "$out/classify-cpu.csv" "$out/classify-nvdec.csv" <<'PY' | tee -a "$out/summary.txt"
import csv, sys
a, b = ({r["video"].rsplit("/", 1)[-1]: r for r in csv.DictReader(open(f))} for f in sys.argv[1:3])
same = sum(a[k]["label"] == b[k]["label"] for k in a if k in b)
print(f"classify: {same} of {len(a)} labels equal between CPU decode and NVDEC")
for k in sorted(a):
    if k in b and (a[k]["label"] != b[k]["label"] or a[k]["status"] != b[k]["status"]):
        print(f"  {k}: cpu {a[k]['label']} ({a[k]['status']}), nvdec {b[k]['label']} ({b[k]['status']})")
PY
}

# compute-sanitizer on fervid's own kernels (--kernel-name kns=fervid: cuDNN's and cuBLAS's
# kernels run unchecked and at speed): memcheck on every CUDA test program but the whole-network
# and Grad-CAM-on-frames tests, racecheck and synccheck on the programs of fervid's kernels.
phase_sanitize() {
  echo "== sanitize"
  : >"$out/sanitize.log"
  local cs filter=() t name tool log rc
  cs=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
  if [ -z "$cs" ]; then
    note "sanitize: no compute-sanitizer on this machine"
    return
  fi
  "$cs" --help 2>&1 | grep -q -- '--kernel-name' && filter=(--kernel-name kns=fervid)
  local skip='-CudaBackend.WholeNetworkMatchesCpuOnRealFrames:CudaBackend.GradcamMatchesCpuOnRealFrames:CudaFaceDetector.FacesTrackedOnTheGpuEqualTheCpus'
  for tool in memcheck racecheck synccheck; do
    for name in vote softmax_argmax maxpool2x2 bias_relu global_avgpool preprocess gradcam conv2d \
      conv3x3_bias_relu linear frame_sink backend; do
      case $tool-$name in
        memcheck-*) ;;
        *-linear | *-frame_sink | *-backend) continue ;;  # no kernels of fervid's own to race
      esac
      t=$b/bin/cuda_${name}_test
      [ -x "$t" ] || continue
      log=$work/sanitize-$tool-$name.log
      : >"$log"
      local t0=$SECONDS
      (cd "$work" && step 60 "$log" "$cs" --tool "$tool" "${filter[@]}" --error-exitcode 99 "$t" \
        --gtest_filter="$skip")
      rc=$?
      cat "$log" >>"$out/sanitize.log"
      local errors
      errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) error.*/\1/p' "$log" | tail -1)
      note "sanitize $tool cuda_${name}_test: exit $rc in $((SECONDS - t0)) s, ${errors:-?} errors$(
        grep -q 'Device not supported' "$log" && echo ' (the machine refuses the sanitizer: gVisor?)')"
    done
  done
}

phase_torch() {
  echo "== torch: PyTorch on the same weights (bench/baselines/torch_gpu.py)"
  local mode=${FERVID_COMPILE:-max-autotune-no-cudagraphs}
  local args=(--fervid "$b/bin/fervid" --spec ravdess-vgg16 --batch 256 --json "$out/torch.json")
  if [ "$mode" = none ]; then args+=(--no-compile); else args+=(--compile-mode "$mode" --compile-batch 256); fi
  local t0=$SECONDS rc
  step 420 "$work/torch.log" $py "$root/bench/baselines/torch_gpu.py" "${args[@]}"
  rc=$?
  tail -12 "$work/torch.log"
  note "torch: exit $rc in $((SECONDS - t0)) s$( ((rc == 0)) || echo "; $(tail -1 "$work/torch.log")")"
}

phase_e2e() {
  echo "== e2e: fervid bench --end-to-end (CPU decode, NVDEC with 1-7 decode threads)"
  local dec t0
  for dec in "cpu --decode-threads 0" "nvdec --decode-threads 1 2 4 7" \
    "nvdec --decode-threads 4 --stage-streams off"; do
    t0=$SECONDS
    # shellcheck disable=SC2086
    step 120 "$work/e2e.log" "$b/bin/fervid" bench --end-to-end "$b/data/ravdess" \
      "$b/data/video/astronaut-720p.mp4" --repeat 34 --device "$device" --batch 256 --decoder $dec
    note "e2e --decoder $dec: exit $? in $((SECONDS - t0)) s"
  done
  grep -E 'frames/s|decode' "$work/e2e.log" | tail -20 | tee -a "$out/summary.txt"
  t0=$SECONDS
  step 150 "$work/e2e.log" $py "$root/bench/baselines/torch_pipeline.py" "$b/data/ravdess" \
    "$b/data/video/astronaut-720p.mp4" --repeat 34 --batch 256 --fervid "$b/bin/fervid"
  note "torch_pipeline: exit $? in $((SECONDS - t0)) s"
  tail -8 "$work/e2e.log" | tee -a "$out/summary.txt"
}

run() {
  local phases=("$@") budget
  [ ${#phases[@]} -gt 0 ] || phases=(a)
  case "${phases[*]}" in
    a) phases=(env tests bench classify) budget=420 ;;
    b) phases=(env retest sanitize bench-more) budget=300 ;;
    c) phases=(env torch e2e) budget=540 ;;
    *) budget=540 ;;
  esac
  budget=${FERVID_BUDGET:-$budget}
  setup_run
  deadline=$(($(date +%s) + budget))
  : >"$out/summary.txt"
  note "gpu-check run ${*:-a}: phases ${phases[*]}, budget $budget s, bundle $(head -c12 "$b/COMMIT")"
  local p
  for p in "${phases[@]}"; do
    local t0=$SECONDS
    case $p in
      env) phase_env ;;
      tests) phase_tests ;;
      retest) phase_retest ;;
      bench) phase_bench ;;
      bench-more) phase_bench_more ;;
      classify) phase_classify ;;
      sanitize) phase_sanitize ;;
      torch) phase_torch ;;
      e2e) phase_e2e ;;
      *) note "unknown phase '$p' (env tests retest bench bench-more classify sanitize torch e2e; or a, b, c)" ;;
    esac
    note "phase $p: $((SECONDS - t0)) s"
  done
  echo
  echo "== summary ($out/summary.txt)"
  cat "$out/summary.txt"
  if command -v nvidia-smi >/dev/null; then
    echo "GPU: $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
  fi
  rm -rf "$work"
}

# ---- the check here, before any GPU time ---------------------------------------------------

selfcheck() {
  [ -f "$bundle" ] || {
    echo "gpu-check: no $bundle; run tools/gpu-check.sh pack first" >&2
    exit 2
  }
  if [ "$(id -u)" != 0 ] || ! unshare -m true 2>/dev/null; then
    echo "gpu-check selfcheck: needs root and mount namespaces (unshare -m)" >&2
    exit 77
  fi
  local tmp cuda_lib
  tmp=$(mktemp -d /tmp/fervid-selfcheck-XXXXXX)
  cuda_lib=$(readlink -f /usr/local/cuda)/lib
  # A copy of what travels besides the bundle (this script and the baselines), then, in a mount
  # namespace: cuDNN and cuBLASLt bind-mounted where NVIDIA's wheels put them (nvidia/cudnn/lib,
  # nvidia/cu13/lib: the layout of nvidia-cudnn-cu13 9.28 and nvidia-cublas 13.10 on PyPI), and
  # the checkout, ../shared and the CUDA toolkit hidden under empty folders.
  mkdir -p "$tmp/tree/tools" "$tmp/tree/bench/baselines" "$tmp/tree/out" "$tmp/nvidia/cudnn/lib" \
    "$tmp/nvidia/cu13/lib" "$tmp/out"
  local f
  for f in "$cuda_lib"/libcudnn*.so.9 "$cuda_lib"/libcublas*.so.13; do
    [ -e "$f" ] || continue
    case $(basename "$f") in libcudnn*) touch "$tmp/nvidia/cudnn/lib/$(basename "$f")" ;;
      *) touch "$tmp/nvidia/cu13/lib/$(basename "$f")" ;; esac
  done
  cp tools/gpu-check.sh "$tmp/tree/tools/"
  cp bench/baselines/*.py "$tmp/tree/bench/baselines/"
  cp "$bundle" "$tmp/tree/out/"
  local shared
  shared=$(cd .. && pwd)/shared
  unshare -m bash -s -- "$tmp" "$cuda_lib" "$root" "$shared" <<'SELF'
set -uo pipefail
tmp=$1 cuda_lib=$2 root=$3 shared=$4
mount --make-rprivate /
for f in "$tmp"/nvidia/*/lib/*; do mount --bind "$(readlink -f "$cuda_lib/$(basename "$f")")" "$f"; done
for d in "$(dirname "$cuda_lib")" "$root" "$shared"; do [ -d "$d" ] && mount -t tmpfs none "$d"; done
cd "$tmp/tree"
fail=0
check() { if eval "$2"; then echo "selfcheck ok: $1"; else echo "selfcheck FAILED: $1"; fail=1; fi; }
# The device is cuda (no GPU here: those steps fail at once and say so), but for a CPU classify
# of a few frames a clip, which shows the bundle's FFmpeg, data and cards work.
export FERVID_NVIDIA=$tmp/nvidia
echo "== the checkout ($root), ../shared and the CUDA toolkit are hidden: $(ls -A "$root" | wc -l) entries in the checkout"
# Every phase alone, each a run of its own (bash errors such as an unbound variable must not
# occur; the GPU's own results do not exist here).
for p in env tests bench classify retest sanitize bench-more torch e2e; do
  dev=cuda
  [ "$p" = classify ] && dev=cpu
  OUT=$tmp/out/$p FERVID_BUDGET=240 FERVID_COMPILE=none FERVID_DEVICE=$dev \
    FERVID_CLASSIFY_ARGS="--max-frames 4" tools/gpu-check.sh run "$p" >"$tmp/out/$p.log" 2>&1
  echo "phase $p alone: exit $?"
  check "phase $p has no shell error" "! grep -E 'unbound variable|syntax error|command not found|No such file' '$tmp/out/$p.log'"
  check "phase $p wrote at most 8 files" "[ \$(find '$tmp/out/$p' -type f | wc -l) -le 8 ]"
done
env=$tmp/out/env/env.txt
check "fervid loads cuDNN and cuBLASLt from the wheels' folders" "grep -q 'fervid loads.*$tmp/nvidia/cudnn/lib/libcudnn.so.9' '$env' && grep -q 'fervid loads.*$tmp/nvidia/cu13/lib/libcublasLt.so.13' '$env'"
check "fervid --version names cuDNN and cuBLASLt" "grep -E -q 'CUDA build: cuDNN [0-9]+\\.[0-9]+\\.[0-9]+, cuBLASLt [0-9]+' '$env'"
check "every binary resolves every library" "! grep -q MISSING '$env'"
cat "$env" | sed 's/^/  /'
# Without the wheels' folders, exactly cuDNN and cuBLASLt are left to the GPU machine.
mkdir -p "$tmp/b" && xz -dc out/gpu-bundle.tar.xz | tar -C "$tmp/b" -xf -
missing=$(for f in "$tmp"/b/gpu-bundle/bin/*; do LD_LIBRARY_PATH=$tmp/b/gpu-bundle/lib ldd "$f" | awk '/not found/{print $1}'; done | sort -u | tr '\n' ' ')
check "without the wheels only cuDNN and cuBLASLt are missing (got: $missing)" "[ '$missing' = 'libcublasLt.so.13 libcudnn.so.9 ' ]"
tests=$tmp/out/tests/summary.txt
check "every CUDA test program ran its host tests, none failed" "[ \$(grep -c ': exit 0 in' '$tests') -ge 11 ] && ! grep -E -q '[1-9][0-9]* failed|STOPPED' '$tests'"
grep -E '^cuda_' "$tests" | sed 's/^/  /'
check "a CPU classify of the bundled clips (bundle FFmpeg, data, cards) gives ok rows" "[ \$(grep -c ',ok' '$tmp/out/classify/classify-cpu.csv' 2>/dev/null) -ge 6 ]"
exit $fail
SELF
  local rc=$?
  echo "gpu-check selfcheck: $([ $rc = 0 ] && echo passed || echo FAILED) (logs in $tmp/out)"
  return $rc
}

case ${1:-} in
  pack) pack ;;
  selfcheck) selfcheck ;;
  run)
    shift
    run "$@"
    ;;
  *)
    echo "usage: tools/gpu-check.sh pack | selfcheck | run [a|b|c|PHASE...]   (docs/gpu.md)" >&2
    exit 2
    ;;
esac
