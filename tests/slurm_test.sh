#!/usr/bin/env bash
# tools/slurm/ on a real Slurm cluster (a private single node, tools/slurm/local-cluster.sh):
#
#   tests/slurm_test.sh FERVID DATA_DIR WORK_DIR
#
# 1. An eval over 12 RAVDESS-named links to the shared clips, unsharded: the reference.
# 2. tools/slurm/submit.sh --shards 3: a 3-task job array and the merge job after it. The merged
#    rows (less their "shard") and the merged summary must equal the reference's.
# 3. Again, but shard 2 is killed mid-run (`scontrol requeue` while it runs, after it wrote a row)
#    and runs again: it must resume (its log says how many videos it found done) and the merged
#    output must still equal the reference.
# Exit 77 (ctest: skipped), saying why, only where the daemons cannot start (not root, no Slurm).
set -euo pipefail
fervid=$(realpath "$1")
data=$(realpath "$2")
work=$3
here=$(cd "$(dirname "$0")" && pwd)
slurm=$here/../tools/slurm
rm -rf "$work"
mkdir -p "$work"
work=$(realpath "$work")
export FERVID=$fervid

fail() {
  echo "slurm_test: FAIL: $*" >&2
  exit 1
}

# A small model and at most 60 frames a clip (about 0.5 s a clip on 2 cores), so that a shard runs
# for seconds.
cat >"$work/card.json" <<'CARD'
{"name":"slurm8","config":[32,"M",64,"M",64,"M"],"input_size":128,"head":"gap","dense":[64],
 "classes":["neutral","calm","happy","sad","angry","fearful","disgust","surprised"],
 "preprocess":"study","vote":"confidence"}
CARD
weights=$work/slurm8.safetensors
"$fervid" make-weights --seed 7 --spec "$work/card.json" --out "$weights" >/dev/null

# The dataset: each of the 4 real clips (2 without ../shared/data's RAVDESS clips) 3 times (statement-repetition 01-01, 01-02, 02-01), one
# actor folder each.
dataset=$work/dataset
i=0
for take in 01-01 01-02 02-01; do
  for clip in video/astronaut-720p.mp4:03 video/vtest.avi:05 \
    ravdess/modified/01-01-07-02-02-01-01_1.mp4:07 ravdess/modified/01-01-08-02-01-01-19.mp4:08; do
    src=${clip%%:*} emotion=${clip##*:}
    [ -e "$data/$src" ] || continue  # the RAVDESS clips come with ../shared/data only
    i=$((i + 1))
    actor=$(printf %02d "$i")
    mkdir -p "$dataset/Actor_$actor"
    ln -s "$data/$src" "$dataset/Actor_$actor/01-01-$emotion-01-$take-$actor.${src##*.}"
  done
done
run=(eval "$dataset" --device cpu --weights "$weights" --max-frames 60)

echo "slurm_test: the reference: one unsharded run"
"$fervid" "${run[@]}" --output "$work/reference.jsonl" --summary "$work/reference.json" \
  >/dev/null 2>"$work/reference.log" || fail "the reference run failed: $(cat "$work/reference.log")"

cluster=$work/cluster
status=0
"$slurm/local-cluster.sh" start "$cluster" >"$work/cluster.env" 2>"$work/cluster.err" || status=$?
if [ "$status" -eq 3 ]; then
  echo "slurm_test: SKIPPED: $(cat "$work/cluster.err")"
  exit 77
fi
[ "$status" -eq 0 ] || fail "local-cluster.sh start: exit $status: $(cat "$work/cluster.err")"
trap '"$slurm/local-cluster.sh" stop "$cluster"' EXIT
# shellcheck disable=SC1091
source "$work/cluster.env"

# submit OUTDIR: the array and the merge; sets $array and $merge.
submit() {
  local line
  line=$("$slurm/submit.sh" --shards 3 --out "$1" -- "${run[@]}")
  echo "slurm_test: $line"
  array=$(sed -n 's/.*array job \([0-9]*\) .*/\1/p' <<<"$line")
  merge=$(sed -n 's/.*merge job \([0-9]*\);.*/\1/p' <<<"$line")
  [ -n "$array" ] && [ -n "$merge" ] || fail "no job ids in: $line"
}

# The state of job (or array task) $1, empty once it left the queue.
state() { squeue -h -j "$1" -o %T 2>/dev/null || true; }

# Waits for the merge job of OUTDIR $1 to leave the queue (at most 5 minutes).
wait_merge() {
  for _ in $(seq 1500); do
    [ -z "$(state "$merge")" ] && return 0
    if squeue -h -j "$merge" -o %r 2>/dev/null | grep -q DependencyNeverSatisfied; then
      tail -n 5 "$1"/*.log >&2
      fail "a shard failed, the merge job will never run"
    fi
    sleep 0.2
  done
  squeue >&2
  fail "the merge job did not finish within 5 minutes"
}

# Compares OUTDIR $1's merged rows and summary with the reference.
same_as_reference() {
  [ -f "$1/merged.jsonl" ] || fail "no $1/merged.jsonl: $(cat "$1/merge.log")"
  python3 - "$work/reference.jsonl" "$1/merged.jsonl" "$work/reference.json" "$1/summary.json" <<'PY'
import json, sys
def rows(path):
    out = {}
    for line in open(path):
        row = json.loads(line)
        row.pop("shard", None)
        out[row["video"]] = row
    return out
ref, merged = rows(sys.argv[1]), rows(sys.argv[2])
if ref != merged:
    missing = sorted(set(ref) ^ set(merged))
    differ = sorted(v for v in set(ref) & set(merged) if ref[v] != merged[v])
    sys.exit(f"slurm_test: FAIL: merged rows differ: videos in one only {missing}, rows differ {differ}")
ref_sum, merged_sum = json.load(open(sys.argv[3])), json.load(open(sys.argv[4]))
keys = ["classes", "confusion", "frame_confusion", "frames", "frames_correct", "videos",
        "videos_correct", "videos_failed", "video_accuracy", "frame_accuracy", "uar", "macro_f1",
        "weighted_f1", "per_class", "per_actor"]
differ = [k for k in keys if ref_sum.get(k) != merged_sum.get(k)]
if differ:
    sys.exit(f"slurm_test: FAIL: merged summary differs in {differ}")
print(f"slurm_test: {len(merged)} merged rows and the summary equal the unsharded run's")
PY
  [ -s "$1/confusion.png" ] || fail "no $1/confusion.png"
}

echo "slurm_test: 3 shards and the merge"
submit "$work/run1"
wait_merge "$work/run1"
same_as_reference "$work/run1"

# Kills shard 2 once it has written a row, requeues it, and checks it resumed: the second start
# found k >= 1 videos done and classified at least one more. Where the shard ends before the
# requeue reaches it (a busy machine), the round is run again, up to 3 times.
echo "slurm_test: 3 shards, shard 2 killed mid-run and requeued"
for attempt in 1 2 3; do
  out=$work/run2-$attempt
  submit "$out"
  part=$out/shard-2-of-3.jsonl.part
  for _ in $(seq 1500); do
    [ -s "$part" ] && break
    sleep 0.05
  done
  [ -s "$part" ] || fail "shard 2 wrote no row within 75 s"
  scontrol requeue "${array}_2"
  for _ in $(seq 600); do
    [ "$(state "${array}_2")" = PENDING ] && break
    sleep 0.1
  done
  # A requeued job waits ~2 minutes before it is eligible again; let it start now.
  scontrol update JobId="${array}_2" StartTime=now
  wait_merge "$out"
  same_as_reference "$out"
  log=$out/shard-2.log
  grep -q "start 1 of job" "$log" || fail "shard 2 did not start a second time: $(cat "$log")"
  done_before=$(sed -n 's/.*resuming .*: \([0-9]*\) videos already done.*/\1/p' "$log" | tail -n 1)
  echo "slurm_test: the requeued shard 2 found ${done_before:-?} videos done"
  if [ "${done_before:-0}" -ge 1 ] && [ "$done_before" -lt "$(wc -l <"$out/shard-2-of-3.jsonl")" ]; then
    echo "slurm_test: PASS"
    exit 0
  fi
  echo "slurm_test: shard 2 ended before the requeue reached it; again"
done
fail "could not requeue shard 2 mid-run in 3 attempts"
