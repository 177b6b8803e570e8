#!/usr/bin/python3
"""Grad-CAM of `fervid explain` against PyTorch autograd on real frames, and its files.

The two models of fidelity_torch.py (torchvision's flatten head and the study's GAP head, same
seed rules), 7 real frames of ../shared/data/video/astronaut-720p.mp4 as an image folder.
fervid: `fervid explain FOLDER --device cpu --top 7 --spaced 0` (every frame, each video's
winning class). PyTorch, float64: the activations of features[29] (block5_conv3 after its ReLU),
the gradient of the class logit by autograd, averaged per channel, the weighted sum, ReLU,
F.interpolate(bilinear, align_corners=False) to 224, divided by its max. Required: per frame a
relative L2 < 1e-4 between the maps, the same class and frame; explain.json consistent with the
files; every PNG decodes at its size; maps.npy is float32 [frames, 224, 224] in [0, 1]; a bad
input is an error entry while the others are explained (exit 1).
"""
import json
import os
import subprocess
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fidelity_torch import CLASSES, build_models, save_safetensors, setup  # noqa: E402

REL_L2_BOUND = 1e-4


def torch_gradcam(model, path, imagenet, cls):
    model = model.double()
    feats = {}
    model.features[29].inplace = False
    handle = model.features[29].register_forward_hook(lambda m, i, o: feats.update(a=o))
    rgb = np.asarray(Image.open(path).convert("RGB"))
    x = torch.from_numpy(rgb.copy()).permute(2, 0, 1).unsqueeze(0).to(torch.float64)
    x = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False) / 255.0
    if imagenet:
        mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1)
        x = (x - mean) / std
    logits = model(x)
    a = feats["a"]
    grad, = torch.autograd.grad(logits[0, cls], a)
    handle.remove()
    alpha = grad.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((alpha * a).sum(dim=1, keepdim=True))
    up = F.interpolate(cam, size=(224, 224), mode="bilinear", align_corners=False)[0, 0]
    top = up.max()
    return (up / top if top > 0 else up).detach().numpy(), logits[0].detach().numpy()


def main():
    args, video, frame_dir, frames = setup()
    missing = os.path.join(args.work, "no-such-video.mp4")
    print(f"seed {args.seed}; {len(frames)} frames of {video}")
    failures = 0

    def check(ok, what):
        nonlocal failures
        failures += not ok
        if not ok:
            print("FAIL:", what)

    for name, model, card, imagenet in build_models(args.seed):
        weights = os.path.join(args.work, name + ".safetensors")
        save_safetensors(weights, model.state_dict(),
                         {"fervid.model_card": json.dumps(card), "source": "gradcam_torch.py"})
        out = os.path.join(args.work, name + "-explain")
        run = subprocess.run([args.fervid, "explain", frame_dir, missing, "--weights", weights,
                              "--device", "cpu", "--out", out, "--top", str(len(frames)),
                              "--spaced", "0", "--quiet"], capture_output=True, text=True)
        check(run.returncode == 1, f"{name}: exit {run.returncode} (want 1: one input failed): {run.stderr}")
        with open(os.path.join(out, "explain.json")) as f:
            doc = json.load(f)
        videos = {os.path.basename(v["video"]): v for v in doc["videos"]}
        check("error" in videos.get("no-such-video.mp4", {}), f"{name}: the missing input has no error entry")
        v = videos["astronaut-frames"]
        maps = np.load(os.path.join(out, v["maps"]))
        check(maps.dtype == np.float32 and maps.shape == (len(v["frames"]), 224, 224),
              f"{name}: maps.npy {maps.dtype} {maps.shape}")
        check(float(maps.min()) >= 0 and float(maps.max()) <= 1, f"{name}: maps outside [0, 1]")
        check(len(v["frames"]) == len(frames), f"{name}: {len(v['frames'])} frames explained")
        timeline = Image.open(os.path.join(out, v["timeline"]))
        timeline.load()
        print(f"{name:12s} winner {v['label']}; timeline {timeline.size[0]}x{timeline.size[1]}")
        print(f"{name:12s} frame  rel_L2    class      probability  file")
        for i, fr in enumerate(v["frames"]):
            png = Image.open(os.path.join(out, fr["file"]))
            png.load()
            check(png.size[0] == 320 and png.size[1] > 320, f"{name}: {fr['file']} is {png.size}")
            cls = CLASSES.index(fr["class"])
            ref, logits = torch_gradcam(model, frames[fr["frame"]], imagenet, cls)
            rel = np.linalg.norm(maps[i].astype(np.float64) - ref) / np.linalg.norm(ref)
            ok = rel < REL_L2_BOUND and np.linalg.norm(ref) > 0
            check(ok, f"{name}: frame {fr['frame']}: relative L2 {rel:.2e}")
            check(fr["class"] == v["class_explained"], f"{name}: frame class {fr['class']}")
            print(f"{'':12s} {fr['frame']:5d}  {rel:.2e}  {fr['class']:>9s}  {fr['probability']:.4f}"
                  f"       {fr['file']}  {'ok' if ok else 'FAIL'}")
            if np.ptp(ref) < 1e-3:
                check(False, f"{name}: frame {fr['frame']}: a flat map proves nothing")
    print(f"{failures} failed checks (bound: relative L2 < {REL_L2_BOUND} per map)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
