#!/usr/bin/env bash
# The whole GPU round in two halves (docs/gpu.md):
#
#   tools/gpu-check.sh pack   here: build for sm_90a without FFmpeg (the GPU machine has no
#                             Debian packages), extract real test frames, and pack binaries,
#                             the Debian libraries they need and the frames into
#                             out/gpu-bundle.tar.xz.
#   tools/gpu-check.sh run [tests] [bench] [torch] [sanitize]
#                             on the GPU machine (device tool, carry out/gpu-bundle.tar.xz):
#                             report what it finds, run every test binary, the benchmarks of
#                             both model cards and the PyTorch baseline (these three by default;
#                             name some to split the round over calls of the device's 10-minute
#                             limit), and with `sanitize` the CUDA test programs under
#                             compute-sanitizer (memcheck; racecheck and synccheck on the
#                             hand-written kernels); write logs and JSON to $OUT (or
#                             out/gpu-check) and print a short table last.
#
# Environment for `run`: FERVID_BATCHES (default "1 64 256"); FERVID_COMPILE, the baseline's
# torch.compile mode (default max-autotune-no-cudagraphs, minutes per shape, so only for the
# study's card at the largest batch; "none" skips it).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bundle=out/gpu-bundle.tar.xz

pack() {
  set -e
  local build=build-gpu stage=out/gpu-bundle data=../shared/data
  # Video through a static minimal FFmpeg (tools/build-ffmpeg.sh) when there is one, so that the
  # video, pipeline and CLI tests run there too; the shared test data travels in the bundle and
  # the tests look for it where `run` unpacks it.
  local video=(-DFERVID_VIDEO=OFF)
  if [ "${FERVID_GPU_VIDEO:-1}" = 1 ] && tools/build-ffmpeg.sh; then
    video=(-DFERVID_VIDEO=ON "-DFERVID_FFMPEG_STATIC=$root/out/ffmpeg-static")
  fi
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFERVID_CUDA=ON \
    -DFERVID_CUDA_ARCHS=90a "${video[@]}" -DFERVID_FACE=OFF -DFERVID_BENCH=OFF \
    -DFERVID_DATA_DIR=/tmp/fervid-gpu/gpu-bundle/data >/dev/null
  cmake --build "$build" -j "$(nproc)"
  rm -rf "$stage" && mkdir -p "$stage/bin" "$stage/lib" "$stage/frames" "$stage/data"
  cp "$build/bin/fervid" "$stage/bin/"
  if [ -x out/ffmpeg-static/bin/ffmpeg ] && grep -q 'FERVID_VIDEO:BOOL=ON' "$build/CMakeCache.txt"; then
    cp out/ffmpeg-static/bin/ffmpeg "$stage/bin/"
    cp -rL "$data/video" "$data/faces" "$data/ravdess" "$stage/data/"
  fi
  find "$build/tests" -maxdepth 1 -name '*_test' -type f -executable -exec cp {} "$stage/bin/" \;
  # The Debian libraries the binaries load (OpenBLAS, gfortran, gomp, stb, ...); glibc and
  # libstdc++ are newer there, cuDNN and cuBLAS come from the machine's Python packages.
  for b in "$stage"/bin/*; do ldd "$b"; done | awk '/=> \//{print $3}' | sort -u |
    grep -Ev '/(libc|libm|libdl|librt|libpthread|libstdc\+\+|libgcc_s|ld-linux[^/]*|libcudnn[^/]*|libcublas[^/]*)\.so' |
    while read -r lib; do cp -L "$lib" "$stage/lib/"; done
  # Real frames (DESIGN.md: real data only): the sampling of tests/cuda/cuda_backend_test.cpp.
  extract() {  # video, every n-th frame, name
    ffmpeg -nostdin -v error -i "$data/$1" -vf "select=not(mod(n\,$2))" -fps_mode passthrough \
      -q:v 2 "$stage/frames/$3_%03d.jpg"
  }
  extract video/astronaut-720p.mp4 8 astronaut
  extract video/vtest.avi 60 vtest
  extract ravdess/modified/01-01-07-02-02-01-01_1.mp4 20 ravdess-a
  extract ravdess/modified/01-01-08-02-01-01-19.mp4 20 ravdess-b
  git rev-parse HEAD >"$stage/COMMIT"
  tar -C out -cf - gpu-bundle | xz -T0 -6 >"$bundle"
  echo "gpu-check: $(du -h "$bundle" | cut -f1) in $bundle ($(ls "$stage/bin" | wc -l) binaries," \
    "$(ls "$stage/lib" | wc -l) libraries, $(ls "$stage/frames" | wc -l) frames," \
    "commit $(cut -c1-12 "$stage/COMMIT"))"
}

run() {
  local phases=${*:-tests bench torch}
  want() { [[ " $phases " == *" $1 "* ]]; }
  local out=${OUT:-$root/out/gpu-check} work=/tmp/fervid-gpu
  mkdir -p "$out" && rm -rf "$work" && mkdir -p "$work"
  [ -f "$bundle" ] || { echo "gpu-check: no $bundle; run tools/gpu-check.sh pack first" >&2; exit 2; }
  xz -dc "$bundle" | tar -C "$work" -xf -
  local b=$work/gpu-bundle
  local py=python3 nv
  nv=$($py -c 'import nvidia, os; print(list(nvidia.__path__)[0])' 2>/dev/null || true)
  export LD_LIBRARY_PATH="$nv/cu13/lib:$nv/cudnn/lib:$b/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export FERVID_TEST_FRAMES=$b/frames FERVID_BIN=$b/bin/fervid PATH="$b/bin:$PATH"
  {
    echo "== what this machine has"
    echo "date: $(date -u +%FT%TZ); bundle commit: $(cat "$b/COMMIT")"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>&1
    echo "nvcc: $(nvcc --version 2>/dev/null | tail -1)"
    echo "python: $($py --version 2>&1); nvidia packages: ${nv:-none}"
    $py -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())' 2>&1
    ls "$nv/cudnn/lib" "$nv/cu13/lib" 2>&1 | grep -E 'cudnn\.so|cublasLt\.so' | tr '\n' ' '
    echo
    "$b/bin/fervid" --version
  } 2>&1 | tee "$out/env.txt"

  local summary=()
  if want tests; then
    echo "== tests"
    local t log
    : >"$out/tests.log"
    for t in "$b"/bin/*_test; do
      name=$(basename "$t")
      case $name in
        video_test | pipeline_test | cli_test)
          if [ ! -x "$b/bin/ffmpeg" ]; then
            summary+=("$name|not run: the bundle has no FFmpeg (CI runs it)")
            continue
          fi
          ;;
      esac
      log=$(cd "$work" && "$t" 2>&1)
      echo "$log" >>"$out/tests.log"
      local passed failed skipped
      passed=$(echo "$log" | sed -n 's/.*\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
      failed=$(echo "$log" | sed -n 's/.*\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
      skipped=$(echo "$log" | sed -n 's/.*\[  SKIPPED \] \([0-9]*\) test.*/\1/p' | head -1)
      summary+=("$name|${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped")
      echo "$name: ${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped"
      echo "$log" | grep -E '^\[ (network|bounds) ' | grep -E 'network|%' | head -40
    done

  fi
  if want bench; then
    echo "== fervid bench"
    local batches=${FERVID_BATCHES:-1 64 256} card prec
    local benches=()
    for card in ravdess-vgg16 torchvision-vgg16; do
      for prec in fp16 bf16 tf32 fp32; do
        local bb=$batches impls=auto
        [ "$prec" = fp16 ] || bb=256
        [ "$card" = ravdess-vgg16 ] || [ "$prec" = fp16 ] || continue
        # cuDNN alone against the per-layer choice (fervid's kernel where it is faster).
        if [ "$prec" = fp16 ] || [ "$prec" = bf16 ]; then impls="auto cudnn fervid"; fi
        # The per-layer choice also without CUDA graphs (the frame stage op by op), fp16 only.
        [ "$card-$prec" = ravdess-vgg16-fp16 ] && impls="$impls auto:off"
        for impl in $impls; do
          local graphs=on
          [ "$impl" = auto:off ] && impl=auto && graphs=off
          local f="$work/bench-$card-$prec-$impl-$graphs.json"
          # shellcheck disable=SC2086
          if "$b/bin/fervid" bench --device cuda --spec "$card" --precision "$prec" --batch $bb \
            --conv-impl "$impl" --cuda-graphs "$graphs" --iters 20 --warmup 5 --json >"$f" \
            2>>"$out/tests.log"; then
            benches+=("$f")
          else
            echo "bench $card $prec --conv-impl $impl --cuda-graphs $graphs failed (tests.log)"
          fi
        done
      done
    done
    $py -c 'import json,sys; print(json.dumps([json.load(open(f)) for f in sys.argv[1:]], indent=1))' \
      "${benches[@]}" >"$out/bench.json"
    if [ -d "$b/data/ravdess" ]; then
      # The whole job on real clips, the RAVDESS clips and the face video repeated to ~200 clips:
      # CPU decode, then NVDEC with 1 to 7 decode threads (the H100 has 7 NVDEC engines), then
      # NVDEC with the stages in order on one stream (--stage-streams off, for comparison); each
      # row also has the decode-only ceiling of its decoder and threads.
      echo "== fervid bench --end-to-end"
      for dec in "cpu --decode-threads 0" "nvdec --decode-threads 1 2 4 7" \
        "nvdec --decode-threads 4 --stage-streams off"; do
        # shellcheck disable=SC2086
        "$b/bin/fervid" bench --end-to-end "$b/data/ravdess" "$b/data/video/astronaut-720p.mp4" \
          --repeat 34 --device cuda --batch 256 --decoder $dec 2>>"$out/tests.log" |
          tee -a "$out/end-to-end.txt" || echo "bench --end-to-end --decoder ${dec%% *} failed (tests.log)"
      done
    fi

  fi
  if want sanitize; then
    # The CUDA tests under compute-sanitizer: memcheck on every program (the whole-network test
    # left out: seven configurations of two VGG16s under memcheck would not fit a call), racecheck
    # and synccheck on the programs of fervid's own kernels. A finding fails the program (exit 99).
    echo "== compute-sanitizer"
    local cs t name tool log
    cs=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
    : >"$out/sanitize.log"
    for t in "$b"/bin/cuda_*_test; do
      name=$(basename "$t")
      for tool in memcheck racecheck synccheck; do
        case $tool-$name in
          memcheck-*) ;;
          *-cuda_conv3x3_bias_relu_test | *-cuda_vote_test | *-cuda_maxpool2x2_test | *-cuda_preprocess_test | \
            *-cuda_softmax_argmax_test | *-cuda_global_avgpool_test) ;;
          *) continue ;;
        esac
        log=$(cd "$work" && "$cs" --tool "$tool" --error-exitcode 99 "$t" \
          --gtest_filter='-CudaBackend.WholeNetworkMatchesCpuOnRealFrames' 2>&1)
        local rc=$?
        echo "$log" >>"$out/sanitize.log"
        local errors
        errors=$(echo "$log" | sed -n 's/.*ERROR SUMMARY: \([0-9]*\) error.*/\1/p' | tail -1)
        summary+=("$name|$tool: exit $rc, ${errors:-?} errors")
        echo "$name $tool: exit $rc, ${errors:-?} errors"
      done
    done
  fi
  if want torch; then
    echo "== PyTorch baseline (same weights, same run)"
    local mode=${FERVID_COMPILE:-max-autotune-no-cudagraphs}
    for card in ravdess-vgg16 torchvision-vgg16; do
      local args=(--fervid "$b/bin/fervid" --spec "$card" --json "$work/torch-$card.json")
      # shellcheck disable=SC2206
      args+=(--batch ${batches})
      if [ "$mode" = none ] || [ "$card" != ravdess-vgg16 ]; then
        args+=(--no-compile)
      else
        args+=(--compile-mode "$mode" --compile-batch "${batches##* }")  # the largest batch only
      fi
      $py bench/baselines/torch_gpu.py "${args[@]}" 2>&1 | tail -8 || echo "torch baseline $card failed"
    done
    $py -c 'import json,sys,os; print(json.dumps([json.load(open(f)) for f in sys.argv[1:] if os.path.exists(f)], indent=1))' \
      "$work"/torch-*.json >"$out/torch.json"
    if [ -d "$b/data/ravdess" ]; then
      # The whole job: the PyTorch user pipeline, decode-only ceilings (CPU, NVDEC per clip) and
      # fervid --end-to-end on the same ~200 clips (issue 8's comparison).
      echo "== PyTorch user pipeline against fervid --end-to-end"
      $py bench/baselines/torch_pipeline.py "$b/data/ravdess" "$b/data/video/astronaut-720p.mp4" \
        --repeat 34 --batch 256 --fervid "$b/bin/fervid" --json "$out/pipeline.json" 2>&1 | tail -8 ||
        echo "torch_pipeline failed"
    fi

  fi
  echo
  echo "== gpu-check summary: $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || echo 'no GPU'), commit $(cut -c1-12 "$b/COMMIT")"
  printf '%-28s %s\n' test result
  for s in "${summary[@]}"; do printf '%-28s %s\n' "${s%%|*}" "${s#*|}"; done
  $py - "$out/bench.json" "$out/torch.json" <<'PY'
import json, sys
try:
    bench = json.load(open(sys.argv[1]))
except Exception:
    bench = []
try:
    torch = {t["spec"]: t for t in json.load(open(sys.argv[2]))}
except Exception:
    torch = {}
print(f"{'card':<18} {'prec':<5} {'conv':<6} {'graphs':<6} {'batch':>5} {'frames/s':>10} {'TFLOP/s':>8} {'of GEMM':>8} {'torch best':>11} {'ratio':>6}")
for r in bench:
    for x in r["results"]:
        t = torch.get(r["model"], {})
        row = next((y for y in t.get("rows", []) if y["batch"] == x["batch"]), None)
        best = f"{row['best_fps']:.0f}" if row and r["precision"] == "fp16" else "-"
        ratio = f"{x['frames_per_s'] / row['best_fps']:.2f}x" if row and r["precision"] == "fp16" else "-"
        frac = f"{100 * x['fraction_of_gemm']:.0f}%" if "fraction_of_gemm" in x else "-"
        g = r.get("cuda_graphs", {})
        graphs = "failed" if "failure" in g else "on" if g.get("enabled") else "off"
        print(f"{r['model']:<18} {r['precision']:<5} {r.get('conv_impl', '-'):<6} {graphs:<6} {x['batch']:>5} "
              f"{x['frames_per_s']:>10.0f} {x['tflop_per_s']:>8.1f} {frac:>8} {best:>11} {ratio:>6}")
# Per conv layer, from the auto runs: cuDNN (+ pool kernel) against fervid's kernel.
for r in bench:
    if r.get("conv_impl") != "auto" or r["model"] != "ravdess-vgg16" or r["precision"] not in ("fp16", "bf16") \
            or not r.get("cuda_graphs", {}).get("enabled", True):
        continue
    layers = [l for l in r.get("conv_layers", []) if "timed_batch" in l]
    if not layers:
        continue
    print(f"\nconv3x3 {r['precision']} at batch {layers[0]['timed_batch']}: cudnn(+pool) vs fervid, ms")
    for l in layers:
        print(f"  {l['layer']:<8} {l['size']:>3}^2 {l['in_channels']:>3}>{l['out_channels']:<3} "
              f"{'pool' if l['pool'] else '    '} {l['cudnn_ms']:8.3f} {l['fervid_ms']:8.3f} "
              f"{l['cudnn_ms'] / l['fervid_ms']:6.2f}x -> {l['impl']}")
PY
}

case ${1:-} in
  pack) pack ;;
  run)
    shift
    run "$@"
    ;;
  *)
    echo "usage: tools/gpu-check.sh pack | run   (docs/gpu.md)" >&2
    exit 2
    ;;
esac
