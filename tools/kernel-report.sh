#!/usr/bin/env bash
# Compile-time evidence for a hand-written kernel, no device needed: ptxas's registers, shared
# memory and spills per instantiation (-Xptxas -v), and the SASS instruction mix (cuobjdump -sass)
# for each architecture of the build. docs/kernels.md keeps its output.
#   tools/kernel-report.sh [kernels/cuda/FILE.cu]   (default: conv3x3_igemm_pool.cu)
# cuobjdump and nvdisasm are not in the CUDA image: they come from NVIDIA's PyPI wheels, installed
# once into a venv under ${FERVID_TOOLS_VENV:-/tmp/fervid-sass-venv}.
set -euo pipefail
cd "$(dirname "$0")/.."
src=${1:-kernels/cuda/conv3x3_igemm_pool.cu}
archs=${FERVID_CUDA_ARCHS:-90a 80}
nvcc=${NVCC:-/usr/local/cuda/bin/nvcc}
venv=${FERVID_TOOLS_VENV:-/tmp/fervid-sass-venv}
bin="$venv/lib/python3.11/site-packages/nvidia/cu13/bin"
if [ ! -x "$bin/cuobjdump" ] || [ ! -x "$bin/nvdisasm" ]; then
  echo "kernel-report: installing cuobjdump and nvdisasm (PyPI wheels) into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "nvidia-cuda-cuobjdump>=13.2" "nvidia-cuda-nvdisasm>=13.2"
  bin=$(dirname "$(find "$venv" -path '*/bin/cuobjdump' | head -1)")
fi
export PATH="$bin:$PATH"  # cuobjdump -sass runs nvdisasm from PATH

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gencode=()
for a in $archs; do gencode+=("--generate-code=arch=compute_$a,code=sm_$a"); done
"$nvcc" -I engine/core/include -I kernels -O3 -DNDEBUG -std=c++20 "${gencode[@]}" \
  -Xptxas -v -x cu -c "$src" -o "$work/k.o" 2>"$work/ptxas.txt"

echo "# $src, nvcc $("$nvcc" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'), archs: $archs"
echo
echo "## ptxas -v: per instantiation"
# Kernel names demangled to their template arguments: <T, kVec, kPool>.
awk '
  /Compiling entry function/ {
    name = $0; sub(/.*entry function .\x27?/, "", name); sub(/\x27? for .*/, "", name)
    arch = $0; sub(/.* for \x27/, "", arch); sub(/\x27.*/, "", arch)
  }
  /spill stores/ { spill = $0; sub(/^ +/, "", spill) }
  /Used [0-9]+ registers/ {
    regs = $0; sub(/.*Used /, "", regs); sub(/ registers.*/, "", regs)
    smem = "0"; if (match($0, /[0-9]+ bytes smem/)) smem = substr($0, RSTART, RLENGTH - 11)
    print arch "\t" name "\t" regs "\t" smem "\t" spill
  }' "$work/ptxas.txt" | while IFS=$'\t' read -r arch name regs smem spill; do
  pretty=$(echo "$name" | c++filt | sed 's/.*::\([a-z0-9_]*<[^>]*>\).*/\1/')
  printf '%-7s %-62s %4s regs %6s B smem  %s\n' "$arch" "$pretty" "$regs" "$smem" "$spill"
done

echo
echo "## SASS instruction mix (static counts per kernel)"
for a in $archs; do
  cuobjdump -sass -arch "sm_$a" "$work/k.o" >"$work/sass_$a.txt"
  awk -v arch="sm_$a" '
    /Function :/ { fn = $3 }
    /^ +\/\*[0-9a-f]+\*\/ / {
      line = $0; sub(/^ +\/\*[0-9a-f]+\*\/ +/, "", line); sub(/^@!?U?P[0-9T] +/, "", line)
      split(line, w, /[ .;]/); op = w[1]
      total[fn]++
      if (op == "HMMA" || op == "HGMMA" || op == "LDSM" || op == "LDGSTS" || op == "LDGDEPBAR" ||
          op == "DEPBAR" || op == "BAR" || op == "STS" || op == "LDS" || op == "STG" || op == "LDG" ||
          op == "FMNMX" || op == "FADD")
        n[fn, op]++
    }
    END {
      for (f in total) {
        printf "%s %s: %d instructions", arch, f, total[f]
        split("HMMA HGMMA LDSM LDGSTS LDGDEPBAR DEPBAR BAR LDS STS LDG STG FADD FMNMX", ops, " ")
        for (i = 1; i <= 13; ++i) if (n[f, ops[i]] > 0) printf ", %s %d", ops[i], n[f, ops[i]]
        printf "\n"
      }
    }' "$work/sass_$a.txt" | sort | while read -r arch fn rest; do
    echo "$arch $(echo "${fn%:}" | c++filt | sed 's/.*::\([a-z0-9_]*<[^>]*>\).*/\1/'): $rest"
  done
  echo "$a: HMMA forms: $(grep -o 'HMMA\.[A-Z0-9.]*' "$work/sass_$a.txt" | sort | uniq -c | tr -s ' ' | paste -sd, -)"
done
