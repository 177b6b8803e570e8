"""The study end to end (docs/study.md): fine-tune VGG16 on a labelled video set over folds of
actors, export each fold's model to fervid's weights, evaluate it with `fervid eval` on the
fold's held-out actors, and summarise the folds.

    python3 -m fervid.study DATA --out DIR [--folds 5] [--protocol actor-disjoint|study]
        [--seed 0] [--imagenet FILE|download|none] [--epochs 20] [--patience 5] ...

Frames come through fervid's own decoder and crop (Engine.network_inputs): a model is trained
on exactly the values fervid's network reads. Protocols: `actor-disjoint` (default) keeps a
validation set of training actors for early stopping and the checkpoint, and touches each test
fold once; `study` is the published protocol, whose validation set is the test fold itself (the
model is chosen on its test data). Every number written names the protocol, folds, seed and
actors it comes from. A run resumes where it stopped (per fold, per epoch): run the same command
again.
"""
import argparse
import hashlib
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

RAVDESS = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
VIDEO_EXTENSIONS = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v"}
PROTOCOLS = ("actor-disjoint", "study")
VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
HEAD = [512, 256]  # the study's head: GAP -> 512 -> 256 -> classes
TRAINABLE_FROM = 24  # torchvision's vgg16.features[24:]: the last block (conv5_1..conv5_3, pool)


class StudyError(Exception):
    pass


# ---- folds ------------------------------------------------------------------------------------

def plan_folds(actors, folds, seed, protocol):
    """Folds over actors: each actor in exactly one test fold (the shuffled actors dealt out in
    turn, as a shuffled k-fold split), the rest training actors. actor-disjoint: a validation set
    of training actors (one fold's share, at least one, drawn by the seed) taken out of training;
    study: the validation set is the test fold. Checked disjoint before it is returned."""
    if protocol not in PROTOCOLS:
        raise StudyError(f"--protocol {protocol}: must be one of {', '.join(PROTOCOLS)}")
    actors = sorted(set(int(a) for a in actors))
    if folds < 2:
        raise StudyError(f"--folds {folds}: at least 2")
    if len(actors) < folds:
        raise StudyError(f"{len(actors)} actors cannot make {folds} folds")
    rng = random.Random(seed)
    order = list(actors)
    rng.shuffle(order)
    plan = []
    for k in range(folds):
        test = sorted(order[k::folds])
        rest = [a for a in order if a not in test]
        if protocol == "study":
            val, train = list(test), sorted(rest)
        else:
            if len(rest) < 2:
                raise StudyError(f"fold {k + 1}: {len(rest)} training actor(s) leave none for "
                                 "validation (actor-disjoint needs two or more)")
            n_val = min(len(rest) - 1, max(1, round(len(rest) / (folds - 1))))
            picked = rng.sample(rest, n_val)
            val, train = sorted(picked), sorted(a for a in rest if a not in picked)
        fold = {"fold": k + 1, "test": test, "val": val, "train": train}
        check_fold(fold, protocol)
        plan.append(fold)
    tested = sorted(a for f in plan for a in f["test"])
    if tested != actors:
        raise StudyError("internal error: the test folds do not cover every actor once")
    return plan


def check_fold(fold, protocol):
    test, val, train = set(fold["test"]), set(fold["val"]), set(fold["train"])
    if not train or not test:
        raise StudyError(f"fold {fold['fold']}: no training or no test actor")
    if train & test or train & val:
        raise StudyError(f"fold {fold['fold']}: an actor both trains and tests or validates")
    if protocol == "actor-disjoint" and val & test:
        raise StudyError(f"fold {fold['fold']}: a validation actor is also a test actor")
    if protocol == "study" and val != test:
        raise StudyError(f"fold {fold['fold']}: the study's validation set is its test fold")


# ---- data -------------------------------------------------------------------------------------

def find_videos(root):
    root = Path(root)
    if not root.exists():
        raise StudyError(f"{root}: no such folder")
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS)


def label_videos(paths, classes, labels_csv):
    """(path, class index, actor) of each labelled video: RAVDESS's names (its video-only and
    audio-video clips; audio-only left out, as `fervid eval` does) or a labels CSV."""
    from . import _fervid
    out = []
    for path, truth, actor in _fervid.label_paths([str(p) for p in paths], list(classes),
                                                  labels_csv or ""):
        if truth >= 0:
            out.append((path, int(truth), int(actor)))
    if not out:
        raise StudyError("no labelled video found (RAVDESS names, or give --labels)")
    if any(a < 0 for _, _, a in out):
        raise StudyError("folds over actors need each video's actor: RAVDESS names carry it "
                         "(a labels CSV does not)")
    return out


def card_crop(crop):
    """A card names full, center or a box; a model trained on face crops is run with --crop face
    (its card says center, the nearest fixed crop)."""
    return crop if crop in ("full", "center") or crop.startswith("box=") else "center"


def study_card(args, classes):
    return {"name": "study-inputs", "config": VGG16, "input_size": args.input_size, "head": "gap",
            "dense": HEAD, "classes": list(classes), "preprocess": args.preprocess,
            "crop": card_crop(args.crop), "vote": "confidence"}


class Inputs:
    """Each video's network inputs from fervid (Engine.network_inputs), cached in the run's
    folder as .npy (float32 [frames, S, S, 3]), written whole or not at all."""

    def __init__(self, out, args, classes):
        import fervid
        self.dir = out / "inputs"
        self.dir.mkdir(parents=True, exist_ok=True)
        card = out / "inputs-card.json"
        write_json(card, study_card(args, classes))
        weights = out / "inputs-card.safetensors"
        if not weights.exists():
            run([args.fervid, "make-weights", "--seed", "1", "--spec", str(card), "--out",
                 str(weights)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fervid.UntrainedWeights)
            self.engine = fervid.Engine(weights, device="cpu", precision="fp32", batch=8)
        self.args = args

    def of(self, path):
        key = hashlib.sha1(f"{os.path.abspath(path)}|{self.args.stride}|{self.args.max_frames}|"
                           f"{self.args.crop}|{self.args.input_size}|{self.args.preprocess}"
                           .encode()).hexdigest()[:16]
        file = self.dir / f"{key}.npy"
        if not file.exists():
            d = self.engine.network_inputs(path, stride=self.args.stride,
                                           max_frames=self.args.max_frames, crop=self.args.crop)
            with tempfile.NamedTemporaryFile(dir=self.dir, suffix=".npy.part", delete=False) as f:
                np.save(f, d["inputs"])
            os.replace(f.name, file)
        return np.load(file, mmap_mode="r")


# ---- the model --------------------------------------------------------------------------------

def build_model(classes, imagenet):
    """torchvision's VGG16, ImageNet weights from a file, torchvision's download, or none; the
    study's head (GAP -> 512 -> 256 -> classes); only the last block and the head train."""
    import torch
    import torchvision
    from torch import nn
    if imagenet == "download":
        model = torchvision.models.vgg16(weights=torchvision.models.VGG16_Weights.IMAGENET1K_V1)
    else:
        model = torchvision.models.vgg16(weights=None)
        if imagenet != "none":
            state = torch.load(imagenet, map_location="cpu")
            if isinstance(state, dict) and "state_dict" in state:
                state = state["state_dict"]
            model.load_state_dict(state)
    model.avgpool = nn.AdaptiveAvgPool2d(1)
    model.classifier = nn.Sequential(
        nn.Linear(512, HEAD[0]), nn.ReLU(True), nn.Dropout(0.5),
        nn.Linear(HEAD[0], HEAD[1]), nn.ReLU(True), nn.Dropout(0.5),
        nn.Linear(HEAD[1], len(classes)))
    for i, layer in enumerate(model.features):
        for p in layer.parameters():
            p.requires_grad = i >= TRAINABLE_FROM
    return model


def class_weights(labels, n):
    """Balanced over frames: frames / (classes present x frames of the class); 0 for a class
    without frames."""
    counts = np.bincount(labels, minlength=n).astype(np.float64)
    present = int((counts > 0).sum())
    return np.where(counts > 0, len(labels) / (present * np.maximum(counts, 1)), 0.0)


# The presets' normalisation, value = (pixel / 255 - mean) / std (tools/export_weights.py's).
NORMALISATION = {"torchvision": ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
                 "study": ([0.0, 0.0, 0.0], [1.0, 1.0, 1.0])}


def augment(x, rng, preprocess):
    """The authors' augmentations on a batch [N, S, S, 3] of network inputs, done on the pixels
    (in [0, 1]) they stand for: a random horizontal flip, brightness (plus up to +-0.1) and
    contrast (x 0.8-1.2 about each channel's mean), clipped to [0, 1] and normalised again."""
    mean, std = (np.array(v, dtype=np.float32) for v in NORMALISATION[preprocess])
    x = np.array(x, dtype=np.float32, copy=True) * std + mean
    for i in range(len(x)):
        if rng.random() < 0.5:
            x[i] = x[i, :, ::-1]
        centre = x[i].mean(axis=(0, 1), keepdims=True)
        x[i] = (x[i] - centre) * rng.uniform(0.8, 1.2) + centre + rng.uniform(-0.1, 0.1)
    return ((np.clip(x, 0.0, 1.0) - mean) / std).astype(np.float32)


def batches(index, size):
    for i in range(0, len(index), size):
        yield index[i:i + size]


class Frames:
    """The frames of a set of videos: (video, frame) pairs over the cached inputs."""

    def __init__(self, videos, inputs):
        self.arrays = [inputs.of(p) for p, _, _ in videos]
        self.labels = np.array([t for (_, t, _), a in zip(videos, self.arrays) for _ in range(len(a))],
                               dtype=np.int64)
        self.pairs = [(v, f) for v, a in enumerate(self.arrays) for f in range(len(a))]

    def __len__(self):
        return len(self.pairs)

    def take(self, idx):
        return np.stack([self.arrays[self.pairs[i][0]][self.pairs[i][1]] for i in idx])


def evaluate(model, frames, weights, batch, device):
    import torch
    model.eval()
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights, reduction="sum")
    total, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for idx in batches(list(range(len(frames))), batch):
            x = torch.from_numpy(frames.take(idx)).permute(0, 3, 1, 2).to(device)
            y = torch.from_numpy(frames.labels[idx]).to(device)
            logits = model(x)
            total += float(loss_fn(logits, y))
            correct += int((logits.argmax(1) == y).sum())
            n += len(idx)
    return total / max(n, 1), correct / max(n, 1)


def train_fold(fold, videos, inputs, classes, args, fold_dir, device, log):
    """Trains one fold, resuming from its last finished epoch; returns the best checkpoint's path
    (the best validation accuracy; training stops after --patience epochs without a lower
    validation loss)."""
    import torch
    state_file, best_file = fold_dir / "state.pt", fold_dir / "best.pt"
    by_actor = lambda actors: [v for v in videos if v[2] in set(actors)]  # noqa: E731
    train, val = Frames(by_actor(fold["train"]), inputs), Frames(by_actor(fold["val"]), inputs)
    if len(train) == 0 or len(val) == 0:
        raise StudyError(f"fold {fold['fold']}: no training or no validation frames")
    torch.manual_seed(args.seed * 1000 + fold["fold"])
    model = build_model(classes, args.imagenet).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=args.lr)
    weights = torch.tensor(class_weights(train.labels, len(classes)), dtype=torch.float32,
                           device=device)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights)
    s = {"epoch": 0, "best_acc": -1.0, "best_loss": math.inf, "stale": 0, "history": []}
    if state_file.exists():
        saved = torch.load(state_file, map_location=device)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        s = saved["progress"]
        log(f"fold {fold['fold']}: resumed after epoch {s['epoch']}")
    rng = random.Random(f"{args.seed}/{fold['fold']}/{s['epoch']}")
    while s["epoch"] < args.epochs and s["stale"] < args.patience:
        t0 = time.time()
        model.train()
        order = list(range(len(train)))
        rng.shuffle(order)
        seen, total = 0, 0.0
        for idx in batches(order, args.batch):
            x = augment(train.take(idx), rng, args.preprocess)
            x = torch.from_numpy(x).permute(0, 3, 1, 2).to(device)
            y = torch.from_numpy(train.labels[idx]).to(device)
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            seen += len(idx)
            total += float(loss) * len(idx)
        t1 = time.time()
        val_loss, val_acc = evaluate(model, val, weights, args.batch, device)
        s["epoch"] += 1
        s["history"].append({"epoch": s["epoch"], "train_loss": total / max(seen, 1),
                             "val_loss": val_loss, "val_accuracy": val_acc,
                             "train_frames": seen, "train_s": t1 - t0,
                             "val_frames": len(val), "val_s": time.time() - t1})
        if val_acc > s["best_acc"]:
            s["best_acc"] = val_acc
            save_atomic({"model": model.state_dict(), "classes": list(classes)}, best_file)
        if val_loss < s["best_loss"]:
            s["best_loss"], s["stale"] = val_loss, 0
        else:
            s["stale"] += 1
        save_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "progress": s}, state_file)
        h = s["history"][-1]
        log(f"fold {fold['fold']} epoch {s['epoch']}: train loss {h['train_loss']:.4f}, "
            f"val loss {val_loss:.4f}, val accuracy {val_acc:.3f} ({seen} frames trained in "
            f"{h['train_s']:.1f} s, {len(val)} validated in {h['val_s']:.1f} s)")
    return best_file, s["history"]


def fidelity(best, weights, video, inputs, args, device):
    """The exported model's logits in fervid (CPU, fp32) against PyTorch's on the same inputs of
    one held-out video: the largest difference."""
    import torch
    import fervid
    model = build_model_for_export(best, device)
    x = np.array(inputs.of(video))
    with torch.no_grad():
        want = model(torch.from_numpy(x).permute(0, 3, 1, 2).to(device)).cpu().numpy()
    with fervid.Engine(weights, device="cpu", precision="fp32", batch=8) as engine:
        r = engine.classify([video], stride=args.stride, max_frames=args.max_frames,
                            crop=args.crop, frames=True, logits=True)[0]
    if not r.ok or r.frame_rows is None:
        raise StudyError(f"{video}: fervid could not classify it: {r.error}")
    got = np.asarray(r.frame_rows.logits, dtype=np.float64)
    if got.shape != want.shape:
        raise StudyError(f"{video}: fervid read {got.shape[0]} frames, the inputs hold "
                         f"{want.shape[0]}")
    return float(np.abs(got - want).max()), float(np.abs(want).max())


def build_model_for_export(best, device):
    import torch
    saved = torch.load(best, map_location=device)
    model = build_model(saved["classes"], "none").to(device)
    model.load_state_dict(saved["model"])
    model.eval()
    return model


# ---- the run ----------------------------------------------------------------------------------

def run(cmd, **kw):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if p.returncode != 0:
        lines = (p.stderr or p.stdout).strip().splitlines() or [""]
        raise StudyError(f"{' '.join(str(c) for c in cmd[:2])} failed (exit {p.returncode}): "
                         f"{lines[-1][:400]}")
    return p


def write_json(path, data):
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def save_atomic(obj, path):
    import torch
    tmp = Path(str(path) + ".part")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def find_tool(name, env, program):
    """tools/NAME of the checkout: $ENV, else beside this module's or the fervid program's
    checkout (python/fervid/, build/bin/)."""
    if os.environ.get(env):
        return os.environ[env]
    bases = [Path(__file__).resolve().parents[2]]
    found = shutil.which(program)
    if found:
        bases.append(Path(found).resolve().parents[2])
    for base in bases:
        if (base / "tools" / name).exists():
            return str(base / "tools" / name)
    return None


def summarise(settings, folds):
    keys = ("frame_accuracy", "video_accuracy", "uar", "macro_f1")
    summary = {"settings": settings, "folds": folds, "mean": {}, "std": {}}
    for k in keys:
        values = [f["metrics"][k] for f in folds if f["metrics"].get(k) is not None]
        if values:
            summary["mean"][k] = float(np.mean(values))
            summary["std"][k] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return summary


def table(summary):
    s = summary["settings"]
    lines = [f"protocol {s['protocol']}, {s['folds']} folds over {len(s['actors'])} actors, "
             f"seed {s['seed']}, {s['epochs']} epochs at most, ImageNet weights: {s['imagenet']}",
             "fold | test actors | frame acc | video acc | UAR | macro-F1 | epochs",
             "--- | --- | --- | --- | --- | --- | ---"]
    for f in summary["folds"]:
        m = f["metrics"]
        lines.append(f"{f['fold']} | {','.join(map(str, f['test']))} | "
                     f"{m['frame_accuracy']:.3f} | {m['video_accuracy']:.3f} | {m['uar']:.3f} | "
                     f"{m['macro_f1']:.3f} | {len(f['history'])}")
    mean, std = summary["mean"], summary["std"]
    lines.append("mean +- sd | | " + " | ".join(
        f"{mean[k]:.3f} +- {std[k]:.3f}" for k in ("frame_accuracy", "video_accuracy", "uar",
                                                   "macro_f1")) + " |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m fervid.study",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("data", help="a folder of videos (RAVDESS's names and layout, or --labels)")
    ap.add_argument("--out", required=True, help="the run's folder (resumed when it exists)")
    ap.add_argument("--labels", help="CSV of path,label (the actor still comes from RAVDESS names)")
    ap.add_argument("--classes", default="ravdess", help="ravdess, or class names a,b,...")
    ap.add_argument("--protocol", default="actor-disjoint", choices=PROTOCOLS)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--imagenet", default="none",
                    help="ImageNet weights: a torchvision vgg16 state_dict file, 'download' "
                         "(torchvision's, needs a network), or 'none' (random start)")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--patience", type=int, default=5,
                    help="epochs without a lower validation loss before a fold stops")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--stride", type=int, default=5, help="train and evaluate every Nth frame")
    ap.add_argument("--max-frames", type=int, default=0, help="frames per video at most (0: all)")
    ap.add_argument("--crop", default="face", help="full | center | face (fervid's --crop)")
    ap.add_argument("--input-size", type=int, default=224)
    ap.add_argument("--preprocess", default="torchvision", choices=("torchvision", "study"),
                    help="the inputs' normalisation (torchvision: ImageNet's mean and std)")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--fervid", default=os.environ.get("FERVID_BIN") or shutil.which("fervid")
                    or "fervid", help="the fervid program")
    args = ap.parse_args(argv)
    out = Path(args.out)
    started = time.time()

    def log(line):
        print(f"[{time.time() - started:7.1f} s] {line}", file=sys.stderr, flush=True)

    try:
        import torch
        device = "cuda" if args.device == "cuda" or (
            args.device == "auto" and torch.cuda.is_available()) else "cpu"
        if args.imagenet == "none":
            log("no ImageNet weights (--imagenet none): VGG16 starts from random weights, so "
                "its results are far below a fine-tuned ImageNet model's")
        classes = RAVDESS if args.classes == "ravdess" else [c.strip() for c in
                                                             args.classes.split(",")]
        exporter = find_tool("export_weights.py", "FERVID_EXPORTER", args.fervid)
        if not exporter:
            raise StudyError("tools/export_weights.py not found (set FERVID_EXPORTER)")
        out.mkdir(parents=True, exist_ok=True)
        videos = label_videos(find_videos(args.data), classes, args.labels)
        actors = sorted({a for _, _, a in videos})
        plan = plan_folds(actors, args.folds, args.seed, args.protocol)
        settings = {"protocol": args.protocol, "folds": args.folds, "seed": args.seed,
                    "actors": actors, "videos": len(videos), "classes": classes,
                    "epochs": args.epochs, "patience": args.patience, "batch": args.batch,
                    "lr": args.lr, "stride": args.stride, "max_frames": args.max_frames,
                    "crop": args.crop, "input_size": args.input_size,
                    "preprocess": args.preprocess, "imagenet": args.imagenet,
                    "device": device, "data": os.path.abspath(args.data)}
        plan_file = out / "plan.json"
        if plan_file.exists():
            earlier = json.loads(plan_file.read_text())
            if earlier["settings"] != settings:
                changed = [k for k in settings if earlier["settings"].get(k) != settings[k]]
                raise StudyError(f"{out} holds a run with other settings ({', '.join(changed)}): "
                                 "resume it with its own, or give another --out")
        write_json(plan_file, {"settings": settings, "folds": plan})
        log(f"{len(videos)} videos, {len(actors)} actors, {args.folds} folds, protocol "
            f"{args.protocol}, seed {args.seed}, on {device}")
        inputs = Inputs(out, args, classes)
        t0 = time.time()
        frames = sum(len(inputs.of(p)) for p, _, _ in videos)
        log(f"network inputs: {frames} frames of {len(videos)} videos ready in "
            f"{time.time() - t0:.1f} s (cached in {inputs.dir})")
        results = []
        for fold in plan:
            fold_dir = out / f"fold-{fold['fold']}"
            fold_dir.mkdir(exist_ok=True)
            done = fold_dir / "result.json"
            if done.exists():
                results.append(json.loads(done.read_text()))
                log(f"fold {fold['fold']}: done earlier")
                continue
            best, history = train_fold(fold, videos, inputs, classes, args, fold_dir, device, log)
            weights = fold_dir / "model.safetensors"
            run([sys.executable, exporter, best, weights, "--classes", ",".join(classes),
                 "--preprocess", args.preprocess, "--crop", card_crop(args.crop), "--name",
                 f"study-fold{fold['fold']}", "--input-size", args.input_size])
            test = [p for p, _, a in videos if a in set(fold["test"])]
            cmd = [args.fervid, "eval", "--weights", weights, "--device", "cpu", "--stride",
                   args.stride, "--max-frames", args.max_frames, "--crop", args.crop,
                   "--output", fold_dir / "videos.jsonl", "--summary", fold_dir / "eval.json",
                   "--quiet"]
            if args.labels:
                cmd += ["--labels", args.labels]
            p = subprocess.run([str(c) for c in cmd + test], capture_output=True, text=True)
            if p.returncode not in (0, 1) or not (fold_dir / "eval.json").exists():
                raise StudyError(f"fervid eval of fold {fold['fold']} failed (exit "
                                 f"{p.returncode}): {p.stderr.strip()[-400:]}")
            metrics = json.loads((fold_dir / "eval.json").read_text())
            worst, scale = fidelity(best, weights, test[0], inputs, args, device)
            result = {"fold": fold["fold"], "test": fold["test"], "val": fold["val"],
                      "train": fold["train"], "protocol": args.protocol, "seed": args.seed,
                      "metrics": {k: metrics.get(k) for k in
                                  ("frame_accuracy", "video_accuracy", "uar", "macro_f1",
                                   "videos", "frames")},
                      "history": history,
                      "fidelity": {"video": test[0], "max_abs_logit_diff": worst,
                                   "max_abs_logit": scale}}
            write_json(done, result)
            results.append(result)
            log(f"fold {fold['fold']}: video accuracy {metrics.get('video_accuracy'):.3f}, "
                f"fervid's logits within {worst:.2e} of PyTorch's")
        summary = summarise(settings, results)
        confusion_rows(out, results, classes, videos, settings)
        write_json(out / "summary.json", summary)
        text = table(summary)
        (out / "summary.md").write_text(text + "\n")
        print(text)
        return 0
    except StudyError as e:
        print(f"fervid.study: error: {e}", file=sys.stderr)
        return 2


def confusion_rows(out, results, classes, videos, settings):
    """One confusion matrix over every fold's held-out videos (each scored once, by its fold's
    model), as a PNG, with the pooled metrics."""
    from . import _fervid
    truth = {p: (t, a) for p, t, a in videos}
    rows = []
    for r in results:
        for line in (out / f"fold-{r['fold']}" / "videos.jsonl").read_text().splitlines():
            v = json.loads(line)
            path = v["video"]
            if path not in truth:
                continue
            t, a = truth[path]
            label = v.get("label")
            predicted = classes.index(label) if label in classes else -1
            counts = [int(v.get("counts", {}).get(c, 0)) for c in classes]
            status = v.get("status", "ok")
            rows.append((path, t, predicted, a, counts, "" if status == "ok" else status))
    title = (f"{settings['protocol']}, {settings['folds']} folds, seed {settings['seed']}: "
             "every held-out video")
    pooled = json.loads(_fervid.score(rows, list(classes), str(out / "confusion.png"), title))
    pooled["settings"] = settings  # the protocol, folds, seed and actors these come from
    write_json(out / "pooled.json", pooled)


if __name__ == "__main__":
    sys.exit(main())
