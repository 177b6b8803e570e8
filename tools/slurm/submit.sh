#!/usr/bin/env bash
# Submits a fervid run as a Slurm job array and the merge after it (docs/scale-out.md):
#
#   tools/slurm/submit.sh --shards N --out DIR [--sbatch "OPTIONS"] -- classify|eval|faces INPUT... [options]
#
# N array tasks each classify one shard (tools/slurm/fervid-shard.sbatch), then a job that runs
# once every task ended well (--dependency=afterok) merges them into DIR/merged.jsonl; for eval it
# also writes DIR/summary.json and DIR/confusion.png. --sbatch passes options to both sbatch calls
# (e.g. "--partition=gpu --gres=gpu:1 --cpus-per-task=8"). Prints the two job ids. FERVID names the
# fervid binary (default: this checkout's build/bin/fervid, else fervid on PATH).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
shards="" out="" extra=""
while [ $# -gt 0 ]; do
  case $1 in
    --shards) shards=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --sbatch) extra=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "submit.sh: unknown option $1 (usage: see the top of $0)" >&2; exit 2 ;;
  esac
done
if [ -z "$shards" ] || [ -z "$out" ] || [ $# -lt 2 ]; then
  echo "submit.sh: usage: submit.sh --shards N --out DIR [--sbatch OPTIONS] -- classify|eval|faces INPUT... [options]" >&2
  exit 2
fi
case $shards in '' | *[!0-9]* | 0) echo "submit.sh: --shards $shards: expected a number >= 1" >&2; exit 2 ;; esac
if [ -z "${FERVID:-}" ]; then
  FERVID=$here/../../build/bin/fervid
  [ -x "$FERVID" ] || FERVID=fervid
fi
export FERVID
mkdir -p "$out"
out=$(cd "$out" && pwd)
merge_options=()
[ "$1" = eval ] && merge_options=(--summary "$out/summary.json" --confusion "$out/confusion.png")
# shellcheck disable=SC2086
array=$(sbatch --parsable --array="1-$shards" --output="$out/shard-%a.log" $extra \
  "$here/fervid-shard.sbatch" "$out" "$@")
array=${array%%;*}
# shellcheck disable=SC2086
merge=$(sbatch --parsable --dependency="afterok:$array" --output="$out/merge.log" $extra \
  "$here/fervid-merge.sbatch" "$out" "$shards" "${merge_options[@]}")
merge=${merge%%;*}
echo "submit.sh: array job $array ($shards shards), merge job $merge; results in $out"
