#!/usr/bin/python3
"""fervid's int8 against its fp32 on real frames, with weights whose answers mean something.

    /usr/bin/python3 bench/int8_agreement.py --fervid build/bin/fervid --out /tmp/int8-agreement

Untrained weights make near-flat logits whose top-1 flips at any rounding, so this fits the study's
network first, on the shared clips: four videos (the two RAVDESS clips, the astronaut and the
street scene of ../shared/data), each its own class (disgust, surprised, neutral, calm: names
only), frames read by fervid's Python module exactly as fervid classifies them. torchvision's
VGG16 with its default (He) initialisation, no ImageNet weights (none offline here); the first
four blocks stay as initialised and their outputs are cached, the fifth block and the study's head
(GAP -> 512 -> 256 -> 8) are trained with Adam (class-balanced loss) until every training frame is right. Every 2nd
frame trains (every 4th of the street scene); the others are held out. The model is exported
with tools/export_weights.py, calibrated by `fervid calibrate` on every 5th frame of each clip,
and each clip's every frame classified by `fervid classify` in fp32 and in int8.

Prints, and writes as JSON to OUT/agreement.json: per clip and in all, the frames whose int8
label equals fp32's, the video labels of both, and the largest probability difference.
Needs Debian's python (torch, torchvision) and the built module (build/python/_fervid*.so).
"""
import argparse
import csv
import glob
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.path.join(ROOT, "..", "shared", "data")
CLIPS = [("ravdess/modified/01-01-07-02-02-01-01_1.mp4", "disgust", 2),
         ("ravdess/modified/01-01-08-02-01-01-19.mp4", "surprised", 2),
         ("video/astronaut-720p.mp4", "neutral", 2),
         ("video/vtest.avi", "calm", 4)]
CLASSES = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]


def module_path(work):
    """The fervid package with the built extension beside it, in a folder of `work`."""
    pkg = os.path.join(work, "py")
    shutil.copytree(os.path.join(ROOT, "python", "fervid"), os.path.join(pkg, "fervid"))
    for so in glob.glob(os.path.join(ROOT, "build", "python", "_fervid*.so")):
        shutil.copy(so, os.path.join(pkg, "fervid"))
    return pkg


def fit(a, work):
    """The fitted model as safetensors; returns its path."""
    import torch
    sys.path.insert(0, module_path(work))
    sys.path.insert(0, os.path.join(HERE, "baselines"))
    import fervid
    from torch_cpu import model_for
    torch.manual_seed(a.seed)
    torch.set_num_threads(os.cpu_count())
    model = model_for("ravdess-vgg16")
    untrained = os.path.join(work, "untrained.safetensors")
    subprocess.run([a.fervid, "make-weights", "--seed", "1", "--out", untrained], check=True,
                   capture_output=True)
    xs, ys = [], []
    with fervid.Engine(untrained, device="cpu") as engine:
        for path, label, stride in CLIPS:
            x = engine.network_inputs(os.path.join(DATA, path), stride=stride * 2)["inputs"]
            xs.append(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous())
            ys.append(torch.full((len(x),), CLASSES.index(label)))
    x, y = torch.cat(xs), torch.cat(ys)
    frozen, block5 = model.features[:24], model.features[24:]
    with torch.no_grad():
        feats = torch.cat([frozen(x[i:i + 16]) for i in range(0, len(x), 16)])
    head = torch.nn.Sequential(block5, model.avgpool, torch.nn.Flatten(), model.classifier)
    opt = torch.optim.Adam(head.parameters(), lr=a.lr)
    # Balanced over the clips (the street scene has most frames).
    counts = torch.bincount(y, minlength=len(CLASSES)).float()
    weight = torch.where(counts > 0, counts.sum() / (counts.clamp(min=1) * (counts > 0).sum()),
                         torch.zeros_like(counts))
    for epoch in range(a.epochs):
        head.train()
        perm = torch.randperm(len(feats))
        for i in range(0, len(perm), 16):
            idx = perm[i:i + 16]
            loss = torch.nn.functional.cross_entropy(head(feats[idx]), y[idx], weight=weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
        head.eval()
        with torch.no_grad():
            right = (head(feats).argmax(1) == y).float().mean().item()
        print(f"epoch {epoch + 1}: training frames right {right:.3f}", file=sys.stderr)
        if right == 1.0:
            break
    pt, st = os.path.join(work, "fitted.pt"), os.path.join(work, "fitted.safetensors")
    torch.save(model.state_dict(), pt)
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "export_weights.py"), pt, st,
                    "--classes", "ravdess", "--preprocess", "study"], check=True,
                   capture_output=True)
    return st


def frame_rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fervid", default=os.path.join(ROOT, "build", "bin", "fervid"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--calibration-frames", type=int, default=128)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    work = os.path.join(a.out, "work")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    st = fit(a, work)
    st8 = os.path.join(a.out, "fitted-int8.safetensors")
    videos = [os.path.join(DATA, p) for p, _, _ in CLIPS]
    subprocess.run([a.fervid, "calibrate", *videos, "--weights", st, "--out", st8, "--stride",
                    "5", "--frames", str(a.calibration_frames), "--quiet"], check=True)
    rows = {}
    for precision, weights in (("fp32", st), ("int8", st8)):
        frames_csv = os.path.join(a.out, f"frames-{precision}.csv")
        videos_csv = os.path.join(a.out, f"videos-{precision}.csv")
        subprocess.run([a.fervid, "classify", *videos, "--weights", weights, "--device", "cpu",
                        "--precision", precision, "--frames", frames_csv, "--output",
                        videos_csv, "--quiet"], check=True)
        rows[precision] = (frame_rows(frames_csv), frame_rows(videos_csv))
    report = {"clips": [], "frames": 0, "frames_agree": 0}
    prob_keys = [k for k in rows["fp32"][0][0] if k.startswith("p_")]
    for v, (path, label, _) in zip(videos, CLIPS):
        f32 = [r for r in rows["fp32"][0] if r["video"] == v]
        f8 = [r for r in rows["int8"][0] if r["video"] == v]
        agree = sum(p["label"] == q["label"] for p, q in zip(f32, f8))
        right = sum(p["label"] == label for p in f32)
        diff = max(abs(float(p[k]) - float(q[k])) for p, q in zip(f32, f8) for k in prob_keys)
        v32 = next(r for r in rows["fp32"][1] if r["video"] == v)["label"]
        v8 = next(r for r in rows["int8"][1] if r["video"] == v)["label"]
        report["clips"].append({"clip": path, "class": label, "frames": len(f32),
                                "fp32_right": right, "int8_agrees": agree,
                                "video_fp32": v32, "video_int8": v8, "max_prob_diff": diff})
        report["frames"] += len(f32)
        report["frames_agree"] += agree
        print(f"{path}: {len(f32)} frames, fp32 right {right}, int8 = fp32 on {agree}, "
              f"video {v32} / {v8}, largest probability difference {diff:.4f}")
    print(f"all: int8 = fp32 on {report['frames_agree']} of {report['frames']} frames "
          f"({100.0 * report['frames_agree'] / report['frames']:.2f} %)")
    with open(os.path.join(a.out, "agreement.json"), "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
