#!/usr/bin/env python3
"""Damaged and unusual videos, made at test time with the ffmpeg CLI, through `fervid classify`:

  truncated files (at 10, 50 and 90 % of an MP4 with its index first, and of an AVI), bytes
  overwritten (five fixed patterns), an empty file, a wrong extension (MP4 named .avi, PNG named
  .mp4), audio-only files, a 1x1 video, an 8K frame, 10-bit and 4:4:4 H.264, a rotation tag, a
  variable frame rate, an image folder with a corrupt PNG and a lone truncated PNG.

Required of every input: one row, either classified or an error whose reason a user can read;
never a crash (the exit code is 0 or 1), never a hang (a time limit per run); the decoded frame
count equals what ffprobe decodes; and each clip's frame rows are the same whatever clips are
decoded next to it (inputs in reverse order, three decode threads, each damaged clip alone).

  damaged_videos_test.py --fervid BIN --work DIR
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys

RUN_LIMIT_S = 300
# Words that betray an internal failure instead of a reason for the user.
NOT_A_REASON = ("internal error", "json.exception", "std::", "basic_", "Operation not permitted",
                "Unknown error")


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *map(str, args)], check=True)


def has_encoder(name):
    out = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True)
    return any(line.split()[1:2] == [name] for line in out.stdout.splitlines() if line.strip())


def overwrite(src, dst, seed, count=60):
    """A copy of src with `count` bytes past its first 2 kB overwritten (a fixed pattern)."""
    data = bytearray(open(src, "rb").read())
    rng = random.Random(seed)
    for _ in range(count):
        data[rng.randrange(2048, len(data))] = rng.randrange(256)
    open(dst, "wb").write(bytes(data))


def truncate(src, dst, share):
    data = open(src, "rb").read()
    open(dst, "wb").write(data[:int(len(data) * share)])


def make_corpus(d):
    """Every input of the test, by name; the damaged ones also in `damaged`."""
    os.makedirs(d, exist_ok=True)
    p = lambda name: os.path.join(d, name)
    x264 = has_encoder("libx264")
    h264 = ["-c:v", "libx264", "-g", "10"] if x264 else ["-c:v", "mpeg4"]
    src = "testsrc=size=128x96:rate=10"
    ffmpeg("-f", "lavfi", "-i", src, "-frames:v", 30, "-pix_fmt", "yuv420p", *h264,
           "-movflags", "+faststart", p("good.mp4"))
    ffmpeg("-f", "lavfi", "-i", src, "-frames:v", 30, "-c:v", "mpeg4", p("good.avi"))
    inputs, damaged = [p("good.mp4"), p("good.avi")], []
    for share in (0.1, 0.5, 0.9):
        for ext in ("mp4", "avi"):
            name = p(f"truncated-{int(share * 100)}.{ext}")
            truncate(p(f"good.{ext}"), name, share)
            damaged.append(name)
    for seed in range(5):
        name = p(f"overwritten-{seed}.mp4")
        overwrite(p("good.mp4"), name, seed)
        damaged.append(name)
    open(p("empty.mp4"), "wb").close()
    shutil.copy(p("good.mp4"), p("mp4-named.avi"))
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48", "-frames:v", 1, p("png-named.png"))
    shutil.copy(p("png-named.png"), p("png-named.mp4"))
    ffmpeg("-f", "lavfi", "-i", "sine=duration=0.3", p("audio.m4a"))
    ffmpeg("-f", "lavfi", "-i", "sine=duration=0.3", p("audio.wav"))
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=16x16:rate=5", "-frames:v", 3, "-vf", "scale=1:1",
           "-pix_fmt", "yuv444p", "-c:v", "ffv1", p("one-pixel.mkv"))
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=7680x4320", "-frames:v", 1, "-c:v", "mpeg4",
           "-q:v", 20, p("8k.avi"))
    if x264:
        ffmpeg("-f", "lavfi", "-i", src, "-frames:v", 5, "-c:v", "libx264", "-pix_fmt",
               "yuv420p10le", p("10bit.mp4"))
        ffmpeg("-f", "lavfi", "-i", src, "-frames:v", 5, "-c:v", "libx264", "-pix_fmt", "yuv444p",
               p("444.mp4"))
    else:
        ffmpeg("-f", "lavfi", "-i", src, "-frames:v", 5, "-c:v", "ffv1", "-pix_fmt",
               "yuv420p10le", p("10bit.mkv"))
        ffmpeg("-f", "lavfi", "-i", src, "-frames:v", 5, "-c:v", "ffv1", "-pix_fmt", "yuv444p",
               p("444.mkv"))
    ffmpeg("-i", p("good.mp4"), "-c", "copy", "-metadata:s:v:0", "rotate=90", p("rotated.mp4"))
    ffmpeg("-f", "lavfi", "-i", src, "-frames:v", 20, "-vf",
           "setpts='if(lt(N,10),N/10/TB,(10+(N-10)*3)/10/TB)'", "-fps_mode", "vfr", *h264,
           p("vfr.mp4"))
    folder = p("frames")
    os.makedirs(folder, exist_ok=True)
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48", "-frames:v", 4,
           os.path.join(folder, "f%02d.png"))
    truncate(os.path.join(folder, "f02.png"), os.path.join(folder, "f02.png.tmp"), 0.5)
    os.replace(os.path.join(folder, "f02.png.tmp"), os.path.join(folder, "f02.png"))
    truncate(p("png-named.png"), p("truncated.png"), 0.5)
    for name in sorted(os.listdir(d)):
        path = p(name)
        if path not in inputs and not name.startswith("run"):
            inputs.append(path)
    return inputs, damaged


def classify(fervid, weights, inputs, out, *extra):
    rows, frames = out + ".jsonl", out + "-frames.jsonl"
    cmd = [fervid, "classify", *inputs, "--device", "cpu", "--weights", weights, "--output", rows,
           "--frames", frames, "--quiet", *extra]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_LIMIT_S)
    except subprocess.TimeoutExpired:
        sys.exit(f"damaged_videos: FAIL: fervid ran past {RUN_LIMIT_S} s (a hang): {' '.join(cmd)}")
    if r.returncode not in (0, 1):
        sys.exit(f"damaged_videos: FAIL: exit {r.returncode} (0 or 1 expected)\n{r.stderr}")
    by_video = {}
    for line in open(rows):
        row = json.loads(line)
        if row["video"] in by_video:
            sys.exit(f"damaged_videos: FAIL: two rows for {row['video']}")
        by_video[row["video"]] = row
    frame_rows = {}
    for line in open(frames):
        f = json.loads(line)
        frame_rows.setdefault(f["video"], []).append((f["frame"], f["time_s"], f["probs"]))
    return by_video, frame_rows


def ffprobe_frames(path):
    r = subprocess.run(["ffprobe", "-v", "quiet", "-count_frames", "-select_streams", "v:0",
                        "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path],
                       capture_output=True, text=True)
    text = r.stdout.strip().split("\n")[0].strip(",") if r.stdout.strip() else ""
    return int(text) if text.isdigit() else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fervid", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    corpus = os.path.join(a.work, "corpus")
    inputs, damaged = make_corpus(corpus)
    card, weights = os.path.join(a.work, "card.json"), os.path.join(a.work, "tiny.safetensors")
    json.dump({"name": "tiny", "config": [8, "M", 8, "M"], "input_size": 16, "head": "gap",
               "dense": [12], "classes": ["neutral", "happy", "sad"], "preprocess": "study",
               "vote": "confidence"}, open(card, "w"))
    subprocess.run([a.fervid, "make-weights", "--seed", "3", "--spec", card, "--out", weights],
                   check=True, capture_output=True)
    out = lambda name: os.path.join(a.work, name)

    rows, frames = classify(a.fervid, weights, inputs, out("forward"), "--decode-threads", "1")
    missing = [i for i in inputs if i not in rows]
    if missing:
        sys.exit(f"damaged_videos: FAIL: inputs without a row: {missing}")
    failures = []
    for video, row in rows.items():
        status = row["status"]
        if status != "ok":
            reason = status[len("error: "):]
            if not status.startswith("error: ") or len(reason) < 8 or any(
                    w in reason for w in NOT_A_REASON):
                failures.append(f"{video}: not a reason a user can read: {status!r}")
        probed = ffprobe_frames(video) if os.path.isfile(video) else None
        if status == "ok" and probed is not None and row["frames_decoded"] != probed:
            failures.append(f"{video}: {row['frames_decoded']} frames decoded, ffprobe {probed}")
        print(f"damaged_videos: {os.path.basename(video):22} {status[:70]:70} "
              f"frames {row.get('frames_decoded')} (ffprobe {probed})"
              + (f" warning: {row['warning'][:60]}" if row.get("warning") else ""))

    # The same frames whatever is decoded next to each clip.
    backward, back_frames = classify(a.fervid, weights, inputs[::-1], out("backward"),
                                     "--decode-threads", "1")
    threads, thread_frames = classify(a.fervid, weights, inputs, out("threads"),
                                      "--decode-threads", "3")
    for name, other in (("in reverse order", back_frames), ("on 3 decode threads", thread_frames)):
        for video in inputs:
            if frames.get(video) != other.get(video):
                failures.append(f"{video}: frame rows differ {name}")
    for video in damaged:
        _, alone = classify(a.fervid, weights, [video], out("alone"))
        if frames.get(video) != alone.get(video):
            failures.append(f"{video}: frame rows differ from the clip classified alone")
    if failures:
        sys.exit("damaged_videos: FAIL:\n  " + "\n  ".join(failures))
    ok = sum(r["status"] == "ok" for r in rows.values())
    print(f"damaged_videos: PASS: {len(inputs)} inputs ({ok} classified, {len(inputs) - ok} error "
          f"rows), the same frames in reverse order, on 3 decode threads and alone")


if __name__ == "__main__":
    main()
