#!/usr/bin/env python3
"""The pipeline a PyTorch user writes for the whole job (docs/design.md), against
`fervid bench --end-to-end` on the same clips in the same run, with decode-only ceilings.

  user pipeline   decode + resize to 224x224 in a process pool (OpenCV when it is installed,
                  else the ffmpeg CLI through a pipe, `-vf scale=224:224`), batches of --batch
                  frames to the device, the study's model (VGG16 features, global average pool,
                  512-256-8) in fp16 channels_last on CUDA (fp32 on the CPU), softmax, the
                  confidence vote per video.
  decode ceilings the same decode pool with nothing after it (CPU), and with a GPU and an ffmpeg
                  that has the cuda hwaccel, --workers parallel `ffmpeg -hwaccel cuda
                  -hwaccel_output_format cuda -i CLIP -f null -` (NVDEC, per clip: each process
                  pays its decoder and context start-up, as the naive use does).
  fervid          `fervid bench --end-to-end` on the same clips, --repeat and --batch (--fervid).
Frames/s and videos/s of each, one JSON object with --json. Untrained weights: the numbers
measure speed only.

  python3 bench/baselines/torch_pipeline.py ../shared/data/ravdess ../shared/data/video/astronaut-720p.mp4 \\
      --repeat 34 --batch 256 --fervid build/bin/fervid
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from multiprocessing import Pool

import numpy as np
import torch
import torchvision

VIDEO_EXT = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm")


def clips_of(paths):
    out = []
    for p in paths:
        if os.path.isdir(p):
            for root, _, files in sorted(os.walk(p)):
                out += [os.path.join(root, f) for f in sorted(files) if f.lower().endswith(VIDEO_EXT)]
        else:
            out.append(p)
    return out


def decode(job):
    """All frames of one clip (every `stride`-th, at most `max_frames`) as uint8 [n,224,224,3]."""
    path, stride, max_frames = job
    frames = []
    try:
        import cv2  # noqa: F401  (the usual choice, when installed)
        cap = cv2.VideoCapture(path)
        i = 0
        while True:
            ok, bgr = cap.read()
            if not ok or (max_frames and len(frames) >= max_frames):
                break
            if i % stride == 0:
                frames.append(cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (224, 224)))
            i += 1
    except ImportError:
        vf = f"select=not(mod(n\\,{stride})),scale=224:224" if stride > 1 else "scale=224:224"
        cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-vf", vf, "-fps_mode", "passthrough"]
        if max_frames:
            cmd += ["-frames:v", str(max_frames)]
        cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
        raw = subprocess.run(cmd, capture_output=True).stdout
        frames = list(np.frombuffer(raw, np.uint8).reshape(-1, 224, 224, 3))
    return np.stack(frames) if frames else np.zeros((0, 224, 224, 3), np.uint8)


def study_model():
    m = torchvision.models.vgg16()
    m.avgpool = torch.nn.AdaptiveAvgPool2d(1)
    m.classifier = torch.nn.Sequential(
        torch.nn.Linear(512, 512), torch.nn.ReLU(True), torch.nn.Dropout(),
        torch.nn.Linear(512, 256), torch.nn.ReLU(True), torch.nn.Dropout(), torch.nn.Linear(256, 8))
    return m.eval()


def user_pipeline(jobs, args, device):
    model = study_model().to(device)
    dtype = torch.float16 if device == "cuda" else torch.float32
    model = model.to(dtype=dtype, memory_format=torch.channels_last)
    torch.backends.cudnn.benchmark = True
    votes, pending, owners, frames = [], [], [], 0

    def run(batch, owner):
        x = torch.from_numpy(np.concatenate(batch)).to(device, non_blocking=True)
        x = x.permute(0, 3, 1, 2).to(dtype).div_(255).contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            p = torch.softmax(model(x).float(), dim=1).cpu().numpy()
        start = 0
        for video, n in owner:
            while len(votes) <= video:
                votes.append(np.zeros(8))
            votes[video] += p[start:start + n].sum(0)
            start += n

    t0 = time.perf_counter()
    with Pool(args.workers) as pool:
        count = 0
        for video, clip in enumerate(pool.imap(decode, jobs, chunksize=1)):
            i = 0
            while i < len(clip):
                take = min(args.batch - count, len(clip) - i)
                pending.append(clip[i:i + take])
                owners.append((video, take))
                count += take
                i += take
                frames += take
                if count == args.batch:
                    run(pending, owners)
                    pending, owners, count = [], [], 0
        if pending:
            run(pending, owners)
    if device == "cuda":
        torch.cuda.synchronize()
    labels = [int(np.argmax(v)) for v in votes]
    return time.perf_counter() - t0, frames, len(labels)


def decode_only(jobs, args):
    t0 = time.perf_counter()
    with Pool(args.workers) as pool:
        frames = sum(len(c) for c in pool.imap(decode, jobs, chunksize=1))
    return time.perf_counter() - t0, frames


def nvdec_one(path):
    r = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-hwaccel", "cuda", "-hwaccel_output_format",
                        "cuda", "-i", path, "-f", "null", "-"], capture_output=True)
    return r.returncode


def nvdec_only(clips, frames, args):
    t0 = time.perf_counter()
    with Pool(args.workers) as pool:
        failed = sum(rc != 0 for rc in pool.imap(nvdec_one, clips, chunksize=1))
    return time.perf_counter() - t0, frames, failed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("inputs", nargs="+", help="clips or folders of clips")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--stride", type=int, default=1)
    ap.add_argument("--max-frames", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--fervid", help="fervid binary: run `fervid bench --end-to-end` on the same clips")
    ap.add_argument("--json", help="write the results to this file")
    args = ap.parse_args()
    clips = clips_of(args.inputs) * args.repeat
    if not clips:
        sys.exit("torch_pipeline: no clips")
    jobs = [(c, args.stride, args.max_frames) for c in clips]
    decoder = "OpenCV" if _has_cv2() else "ffmpeg CLI pipe"
    print(f"{len(clips)} clips, {args.workers} decode workers ({decoder}), batch {args.batch}, "
          f"device {args.device}")
    rows = {}
    secs, frames = decode_only(jobs, args)
    rows["decode-only CPU"] = {"seconds": secs, "frames": frames}
    secs, frames, videos = user_pipeline(jobs, args, args.device)
    rows["PyTorch user pipeline"] = {"seconds": secs, "frames": frames}
    if args.device == "cuda" and shutil.which("ffmpeg") and not args.max_frames and args.stride == 1:
        secs, frames, failed = nvdec_only(clips, rows["decode-only CPU"]["frames"], args)
        rows["decode-only NVDEC (ffmpeg per clip)"] = {"seconds": secs, "frames": frames, "failed": failed}
    # fervid with each decoder; its decode-only ceiling (the same decode threads, frames
    # dropped) comes from the same bench run.
    for decoder in (["cpu", "nvdec"] if args.fervid and args.device == "cuda" else ["cpu"] if args.fervid else []):
        cmd = [args.fervid, "bench", "--end-to-end", *args.inputs, "--repeat", str(args.repeat),
               "--batch", str(args.batch), "--device", "cuda" if args.device == "cuda" else "cpu",
               "--stride", str(args.stride), "--max-frames", str(args.max_frames),
               "--decoder", decoder, "--json"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode == 0:
            res = json.loads(r.stdout)["results"][0]
            rows[f"fervid decode-only ({decoder})"] = {
                "seconds": res["frames"] / res["decode_only_frames_per_s"], "frames": res["frames"]}
            rows[f"fervid end-to-end ({decoder})"] = {"seconds": res["seconds"], "frames": res["frames"],
                                                      "model_starved": res["model_starved"]}
        else:
            print(f"fervid bench --decoder {decoder} failed:", r.stderr.strip().splitlines()[-1:])
    base = rows["PyTorch user pipeline"]
    print(f"{'':40s} {'frames':>8s} {'seconds':>8s} {'frames/s':>9s} {'videos/s':>9s} {'vs user':>8s}")
    for name, r in rows.items():
        r["frames_per_s"] = r["frames"] / r["seconds"]
        r["videos_per_s"] = len(clips) / r["seconds"]
        ratio = r["frames_per_s"] / (base["frames"] / base["seconds"])
        print(f"{name:40s} {r['frames']:8d} {r['seconds']:8.2f} {r['frames_per_s']:9.1f} "
              f"{r['videos_per_s']:9.2f} {ratio:7.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"clips": len(clips), "workers": args.workers, "decoder": decoder,
                       "batch": args.batch, "device": args.device, "rows": rows}, f, indent=1)


def _has_cv2():
    try:
        import cv2  # noqa: F401
        return True
    except ImportError:
        return False


if __name__ == "__main__":
    main()
