#!/usr/bin/env bash
# setup + configure + build + every test (GoogleTest through ctest, and the PyTorch fidelity
# check). Ends with ctest's summary line. BUILD_DIR and FERVID_CUDA may be set by the caller.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh

echo "test: layering check"
python3 tools/check-layers.py

files=$(git ls-files '*.cpp' '*.h' '*.cu' '*.cuh' 2>/dev/null || true)
if [ -n "$files" ]; then
  echo "test: clang-format check"
  clang-format --dry-run -Werror $files
fi

build=${BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFERVID_CUDA="${FERVID_CUDA:-AUTO}" >/dev/null
cmake --build "$build" -j "$(nproc)"
cd "$build"
if [ -x tests/cuda_vote_test ]; then
  # CUDA tests skip without a device; say why up front so the skip is visible in CI's log.
  reason=$(tests/cuda_vote_test --gtest_filter='CudaVote.*' 2>&1 | grep -m1 'no CUDA device' || true)
  echo "test: CUDA tests: ${reason:-a CUDA device is present, they run}"
fi
ctest --output-on-failure -j "$(nproc)"
