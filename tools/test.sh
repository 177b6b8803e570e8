#!/usr/bin/env bash
# setup + configure + build + every test (GoogleTest through ctest, the PyTorch fidelity and
# export checks), then the Python module: `pip install .` into a throw-away virtual environment
# and its pytest suite. Ends with pytest's summary line. BUILD_DIR and FERVID_CUDA may be set by
# the caller.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
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

# The Python module as a user installs it: pip install . (scikit-build-core from PyPI; the build
# kept in build/python/), into a venv of Debian's python that sees Debian's numpy, pandas,
# matplotlib and PyAV, then python/tests with pytest.
cd "$root"
echo "test: Python module: pip install . into a throw-away venv, then pytest"
venv=$(mktemp -d /tmp/fervid-venv-XXXXXX)
trap 'rm -rf "$venv"' EXIT
/usr/bin/python3 -m venv --system-site-packages "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check .
"$venv/bin/python" -c "import fervid; print('test: imported fervid', fervid.__version__, 'cuda' if fervid.cuda_built() else 'cpu-only')"
FERVID_BIN="$(cd "$build" && pwd)/bin/fervid" "$venv/bin/python" -m pytest -q -p no:cacheprovider python/tests
