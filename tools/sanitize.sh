#!/usr/bin/env bash
# The sanitizer stage (CI runs it after tools/test.sh): everything but CUDA built with clang,
# AddressSanitizer, UndefinedBehaviorSanitizer and LeakSanitizer (and libFuzzer's coverage) into
# build-san, the ctest suite run on it (all but the tests labelled `reference`, the comparisons
# with other frameworks: tests/CMakeLists.txt says why), then every fuzz target for a bounded time
# (tools/fuzz.sh; FERVID_FUZZ_SECONDS each, default 40). Every sanitizer report goes to a log
# file as well, so a report fails the stage even inside a test that expects its program to fail.
#   tools/sanitize.sh            build, ctest, fuzz
#   FERVID_FUZZ_SECONDS=0 tools/sanitize.sh    build and ctest only
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
build=${SAN_BUILD_DIR:-build-san}
echo "sanitize: clang build with ASan+UBSan+LSan in $build"
cmake -S . -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERVID_CUDA=OFF -DFERVID_BENCH=OFF \
  -DFERVID_SANITIZE=address,undefined -DFERVID_FUZZ=ON >/dev/null
cmake --build "$build" -j "$(nproc)"

logs=$(mktemp -d /tmp/fervid-sanitize-XXXXXX)
export ASAN_OPTIONS="detect_leaks=1:log_path=$logs/asan:exitcode=86"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$logs/ubsan:exitcode=86"
echo "sanitize: ctest under the sanitizers (reports also in $logs)"
status=0
(cd "$build" && ctest --output-on-failure -j "$(nproc)" -LE reference) || status=1
if [ -n "$(ls -A "$logs")" ]; then
  for f in "$logs"/*; do
    echo "sanitize: report $f:"
    head -60 "$f"
  done
  status=1
fi
[ "$status" -eq 0 ] || {
  echo "sanitize: FAILED"
  exit 1
}
rm -rf "$logs"
echo "sanitize: ctest clean under ASan+UBSan+LSan"
unset ASAN_OPTIONS UBSAN_OPTIONS
if [ "${FERVID_FUZZ_SECONDS:-40}" != 0 ]; then
  tools/fuzz.sh "$build"
fi
