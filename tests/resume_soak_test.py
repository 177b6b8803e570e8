#!/usr/bin/env python3
"""Kill-and-resume soak: `fervid classify` and `fervid eval` with --output FILE.jsonl --resume,
SIGKILLed at random moments and started again until a run completes. Required, at any kill
point: the rows already finished are never lost (the complete rows of FILE.part never decrease
from one kill to the next), the final FILE equals an uninterrupted run's rows (the same rows,
none twice, none missing), and no FILE.part is left.

  resume_soak_test.py --fervid BIN --work DIR [--rounds N] [--seed S]

The seed (printed; FERVID_SEED or --seed replays it) only chooses the kill moments: the test must
pass for every seed.
"""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *map(str, args)], check=True)


def make_dataset(d):
    """16 short clips under RAVDESS names (eval reads their labels) and one that is no video."""
    os.makedirs(d, exist_ok=True)
    for i in range(16):
        actor = i % 4 + 1
        emotion = i % 8 + 1
        name = f"02-01-{emotion:02d}-01-0{i % 2 + 1}-0{i // 8 + 1}-{actor:02d}.mp4"
        folder = os.path.join(d, f"Actor_{actor:02d}")
        os.makedirs(folder, exist_ok=True)
        ffmpeg("-f", "lavfi", "-i", f"testsrc=size=96x64:rate=10:decimals={i % 3}",
               "-frames:v", 20 + 3 * i, "-pix_fmt", "yuv420p", os.path.join(folder, name))
    with open(os.path.join(d, "Actor_04", "02-01-03-01-01-01-04.mp4"), "w") as f:
        f.write("this is not a video\n")


def complete_rows(path):
    """The rows of `path` that end with their newline (a kill can cut the last one)."""
    if not os.path.exists(path):
        return []
    text = open(path, "rb").read().decode("utf-8", "replace")
    return [json.loads(line) for line in text.split("\n")[:-1] if line]


def by_video(rows):
    out = {}
    for row in rows:
        if row["video"] in out:
            sys.exit(f"resume_soak: FAIL: {row['video']} twice")
        out[row["video"]] = row
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fervid", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--rounds", type=int, default=12, help="rounds per command (classify, eval)")
    ap.add_argument("--seed", type=int, default=int(os.environ.get("FERVID_SEED", "0")) or None)
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1 << 31)
    print(f"resume_soak: seed {seed} (FERVID_SEED={seed} replays it)")
    rng = random.Random(seed)
    shutil.rmtree(a.work, ignore_errors=True)
    data = os.path.join(a.work, "dataset")
    make_dataset(data)
    card, weights = os.path.join(a.work, "card.json"), os.path.join(a.work, "tiny.safetensors")
    json.dump({"name": "tiny", "config": [8, "M", 8, "M"], "input_size": 16, "head": "gap",
               "dense": [12], "classes": ["neutral", "calm", "happy", "sad", "angry", "fearful",
                                          "disgust", "surprised"],
               "preprocess": "study", "vote": "confidence"}, open(card, "w"))
    subprocess.run([a.fervid, "make-weights", "--seed", "5", "--spec", card, "--out", weights],
                   check=True, capture_output=True)
    kills = 0
    for command in ("classify", "eval"):
        args = [a.fervid, command, data, "--device", "cpu", "--weights", weights, "--quiet",
                "--batch", "4"]
        reference = os.path.join(a.work, f"{command}-reference.jsonl")
        t0 = time.monotonic()
        r = subprocess.run(args + ["--output", reference], capture_output=True, text=True)
        full_s = time.monotonic() - t0
        if r.returncode != 1:  # the junk file's row
            sys.exit(f"resume_soak: FAIL: the reference {command} exited {r.returncode}\n{r.stderr}")
        expected = by_video(complete_rows(reference))
        for round_ in range(a.rounds):
            out = os.path.join(a.work, f"{command}-{round_}.jsonl")
            kept = 0
            for attempt in range(50):
                p = subprocess.Popen(args + ["--output", out, "--resume"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                # Kill moments over the whole run, start-up and the final rename included; from
                # the fourth attempt on, let it finish.
                if attempt < 3:
                    time.sleep(rng.uniform(0, full_s * 1.1))
                    if p.poll() is None:
                        p.send_signal(signal.SIGKILL)
                        p.wait()
                        kills += 1
                        now = len(complete_rows(out + ".part") or complete_rows(out))
                        if now < kept:
                            sys.exit(f"resume_soak: FAIL: {command} round {round_}: {kept} finished "
                                     f"rows before the kill, {now} after (lost)")
                        kept = now
                        continue
                err = p.communicate()[1]
                if p.returncode != 1:
                    sys.exit(f"resume_soak: FAIL: {command} round {round_} exited {p.returncode}"
                             f"\n{err}")
                break
            got = by_video(complete_rows(out))
            if got != expected:
                missing = sorted(set(expected) - set(got))
                extra = sorted(set(got) - set(expected))
                differ = sorted(v for v in set(got) & set(expected) if got[v] != expected[v])
                sys.exit(f"resume_soak: FAIL: {command} round {round_}: missing {missing}, "
                         f"extra {extra}, rows differ {differ}")
            if os.path.exists(out + ".part"):
                sys.exit(f"resume_soak: FAIL: {out}.part left behind")
    print(f"resume_soak: PASS: {2 * a.rounds} runs to completion through {kills} SIGKILLs; every "
          "final output equals the uninterrupted run's, no finished row was ever lost")


if __name__ == "__main__":
    main()
