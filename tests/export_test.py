#!/usr/bin/python3
"""tools/export_weights.py against the frameworks it reads, on real frames.

For each source format a small-but-real model is built from a seed in that framework, exported
with tools/export_weights.py, run through `fervid classify --device cpu` on real frames (7 frames
of ../shared/data/video/astronaut-720p.mp4 and the two photos of ../shared/data/faces/), and
compared with the framework's own output on the same frames:
  - PyTorch: torchvision vgg16 (flatten head) as a state_dict; vgg16_bn with non-trivial running
    statistics as a whole pickled model; the study's GAP head as a checkpoint dict.
  - ONNX: torch.onnx.export of the vgg16_bn model (reference: that torch model).
  - Keras: the study's model (VGG16 include_top=False nested + GlobalAveragePooling2D + Dense
    512/256/8 softmax) and keras.applications.VGG16(include_top=True) (Flatten + fc1/fc2/
    predictions), built by Keras 3 with the JAX backend, saved as .keras and .h5; reference: Keras's
    own predict (probabilities), run by the Python given with --keras-python (a venv that
    tools/setup.sh makes with keras and jax from PyPI).
Bound (fp32): relative L2 < 1e-4 of the logits (probabilities for the softmax-ended Keras models)
and the same top-1 on every frame. Bad inputs: a non-VGG checkpoint and an ONNX graph with an
unsupported op are refused with one line naming the layer, and nothing is written.
Exit 77 (skipped) only for the Keras part when no Keras is available, saying so.
"""
import argparse
import csv
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
import torchvision.transforms.functional as TF
from PIL import Image

BOUND = 1e-4
CLASSES = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
HERE = os.path.dirname(os.path.abspath(__file__))
EXPORT = os.path.join(HERE, "..", "tools", "export_weights.py")

KERAS_BUILD = r'''
import os, sys
os.environ["KERAS_BACKEND"] = "jax"
import numpy as np, keras
out, seed, frames_nhwc = sys.argv[1], int(sys.argv[2]), np.load(sys.argv[3])
keras.utils.set_random_seed(seed)
rng = np.random.default_rng(seed)

def randomise(model):
    # Non-zero biases and weights scaled so that the logits spread (a degenerate, near-uniform
    # output would prove nothing).
    for layer in model.layers:
        if hasattr(layer, "layers"):
            randomise(layer)
        elif layer.get_weights():
            k, b = layer.get_weights()
            fan_in = np.prod(k.shape[:-1])
            k = rng.normal(0, np.sqrt(2.0 / fan_in), k.shape).astype("float32")
            layer.set_weights([k, rng.uniform(-0.1, 0.1, b.shape).astype("float32")])

base = keras.applications.VGG16(include_top=False, weights=None, input_shape=(224, 224, 3))
inp = keras.Input((224, 224, 3))
x = keras.layers.GlobalAveragePooling2D()(base(inp))
x = keras.layers.Dense(512, activation="relu")(x)
x = keras.layers.Dropout(0.5)(x)
x = keras.layers.Dense(256, activation="relu")(x)
x = keras.layers.Dense(8, activation="softmax")(x)
study = keras.Model(inp, x)
randomise(study)
study.save(os.path.join(out, "study.keras"))
study.save(os.path.join(out, "study.h5"))
top = keras.applications.VGG16(include_top=True, weights=None, classes=8,
                               classifier_activation="softmax")
randomise(top)
top.save(os.path.join(out, "top.h5"))
# The references: the models as built (one process; loading each file again in a new one costs
# more than the rest of the test's Keras part).
for name, model in (("study", study), ("top", top)):
    ref = np.asarray(model.predict(frames_nhwc, batch_size=4, verbose=0), dtype=np.float64)
    np.save(os.path.join(out, name + "_ref.npy"), ref)
# Not a VGG: a 5x5 convolution.
inp = keras.Input((224, 224, 3))
x = keras.layers.Conv2D(8, 5, padding="same", activation="relu", name="odd_conv")(inp)
x = keras.layers.Dense(8)(keras.layers.GlobalAveragePooling2D()(x))
keras.Model(inp, x).save(os.path.join(out, "bad.keras"))
'''

def frames(data, work):
    """Real frames as lossless PNG: 3 of the face video, and the two photos."""
    d = os.path.join(work, "frames")
    os.makedirs(d)
    video = os.path.join(data, "video", "astronaut-720p.mp4")
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", video, "-vf", r"select=not(mod(n\,45))",
                    "-vsync", "vfr", os.path.join(d, "v%03d.png")], check=True)
    for name in ("astronaut.png", "messi5.jpg"):
        Image.open(os.path.join(data, "faces", name)).convert("RGB").save(
            os.path.join(d, "x_" + os.path.splitext(name)[0] + ".png"))
    return d, sorted(os.path.join(d, f) for f in os.listdir(d))


def inputs(paths, preprocess, resize=0):
    """NCHW float32 batch as fervid computes it: bilinear (half-pixel) to 224 — or, with `resize`,
    torchvision's Resize(resize, antialias=False) + CenterCrop(224) — then the card's
    normalisation."""
    xs = []
    for p in paths:
        rgb = np.asarray(Image.open(p).convert("RGB"))
        x = torch.from_numpy(rgb.copy()).permute(2, 0, 1).unsqueeze(0).to(torch.float32)
        if resize:
            x = TF.center_crop(TF.resize(x, resize, antialias=False), 224)
        else:
            x = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
        if preprocess == "torchvision":
            x = x / 255.0
            x = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / \
                torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        else:
            x = x / 255.0
        xs.append(x)
    return torch.cat(xs)


def antialiased(paths, preprocess, resize):
    """inputs() with torchvision's antialiased Resize, as PIL-based training pipelines resize."""
    xs = []
    for p in paths:
        rgb = np.asarray(Image.open(p).convert("RGB"))
        x = torch.from_numpy(rgb.copy()).permute(2, 0, 1).unsqueeze(0).to(torch.float32)
        x = TF.center_crop(TF.resize(x, resize, antialias=True), 224) / 255.0
        if preprocess == "torchvision":
            x = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / \
                torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        xs.append(x)
    return torch.cat(xs)


def export(src, out, *extra):
    r = subprocess.run([sys.executable, EXPORT, src, out, *extra], capture_output=True, text=True)
    print("   ", (r.stdout + r.stderr).strip())
    return r


def fervid_outputs(fervid, weights, frame_dir, work, column, classes=CLASSES):
    """fervid's logits (or probabilities) of the frames, columns in the model's output order."""
    rows = os.path.join(work, "fervid-frames.csv")
    subprocess.run([fervid, "classify", frame_dir, "--weights", weights, "--device", "cpu", "--batch", "4",
                    "--frames", rows, "--logits", "--quiet", "--format", "csv",
                    "--output", os.path.join(work, "fervid-videos.csv")], check=True)
    with open(rows) as f:
        return np.array([[float(r[column + c]) for c in classes] for r in csv.DictReader(f)])


def compare(name, ref, got):
    failures = 0
    if ref.shape != got.shape:
        print(f"{name}: shapes {ref.shape} and {got.shape}")
        return 1
    for i, (r, g) in enumerate(zip(ref, got)):
        rel = np.linalg.norm(g - r) / np.linalg.norm(r)
        same = int(np.argmax(r)) == int(np.argmax(g))
        spread = float(np.ptp(r))
        ok = rel < BOUND and same and spread > 1e-3
        failures += not ok
        print(f"  {name:24s} frame {i}: rel L2 {rel:.2e}, top-1 {CLASSES[int(np.argmax(r))]}/"
              f"{CLASSES[int(np.argmax(g))]}, spread {spread:.3f}  {'ok' if ok else 'FAIL'}")
    return failures


def randomise_torch(model, gen):
    with torch.no_grad():
        for m in model.modules():
            if getattr(m, "bias", None) is not None:
                m.bias.copy_((torch.rand(m.bias.shape, generator=gen) - 0.5) * 0.2)
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=gen))
                m.running_mean.copy_((torch.rand(m.running_mean.shape, generator=gen) - 0.5) * 0.4)
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))


def torch_cases(seed, work):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    tv = torchvision.models.vgg16(num_classes=8)
    randomise_torch(tv, gen)
    bn = torchvision.models.vgg16_bn(num_classes=8)
    randomise_torch(bn, gen)
    study = torchvision.models.vgg16()
    study.avgpool = torch.nn.AdaptiveAvgPool2d(1)
    study.classifier = torch.nn.Sequential(
        torch.nn.Linear(512, 512), torch.nn.ReLU(True), torch.nn.Dropout(),
        torch.nn.Linear(512, 256), torch.nn.ReLU(True), torch.nn.Dropout(), torch.nn.Linear(256, 8))
    randomise_torch(study, gen)
    # (name, source, model, preprocess, exporter options, resize, classes in output order)
    cases = []
    p = os.path.join(work, "vgg16_state.pth")
    torch.save(tv.state_dict(), p)
    cases.append(("torch state_dict vgg16", p, tv.eval(), "torchvision", ["--classes", "ravdess"],
                  0, CLASSES))
    p = os.path.join(work, "vgg16_bn_model.pt")
    torch.save(bn.eval(), p)  # a whole pickled model: loaded as a pickle (torch >= 2.6 refuses it)
    cases.append(("torch model vgg16_bn", p, bn, "torchvision", ["--classes", "ravdess"], 0,
                  CLASSES))
    # A checkpoint with torchvision's ImageFolder classes: alphabetical, taken from the file.
    p = os.path.join(work, "study_ckpt.pth")
    by_name = sorted(CLASSES)
    torch.save({"epoch": 3, "model_state_dict": study.state_dict(),
                "class_to_idx": {c: i for i, c in enumerate(by_name)}}, p)
    cases.append(("torch checkpoint study", p, study.eval(), "study", ["--preprocess", "study"], 0,
                  by_name))
    # torchvision's Resize(256) + CenterCrop(224) in the card.
    p2 = os.path.join(work, "study_resize.pth")
    torch.save({"state_dict": study.state_dict(), "classes": CLASSES}, p2)
    cases.append(("torch resize 256 study", p2, study.eval(), "torchvision",
                  ["--preprocess", "torchvision", "--resize", "256"], 256, CLASSES))
    p = os.path.join(work, "vgg16_bn.onnx")
    torch.onnx.export(bn, torch.zeros(1, 3, 224, 224), p, opset_version=13, do_constant_folding=True)
    cases.append(("onnx vgg16_bn", p, bn, "torchvision", ["--classes", "ravdess"], 0, CLASSES))
    return cases


def bad_inputs(work):
    """Refusals: one line naming the layer, exit 2, no file."""
    failures = 0
    resnet = os.path.join(work, "resnet.pth")
    torch.save(torchvision.models.resnet18().state_dict(), resnet)
    wide = torchvision.models.vgg11(num_classes=8)
    wide.features[0] = torch.nn.Conv2d(3, 64, kernel_size=5, padding=2)
    wide_path = os.path.join(work, "vgg5x5.pt")
    torch.save(wide, wide_path)
    for src, reason in ((resnet, "features"), (wide_path, "features.0"),
                        (os.path.join(work, "missing.pth"), "no such file")):
        out = os.path.join(work, "refused.safetensors")
        r = export(src, out)
        err = r.stderr.strip()
        ok = r.returncode == 2 and len(err.splitlines()) == 1 and reason in err and not os.path.exists(out) \
            and not os.path.exists(out + ".part")
        print(f"  refuse {os.path.basename(src)}: {'ok' if ok else 'FAIL'}")
        failures += not ok
    # An ONNX graph with an op fervid's VGG does not have.
    odd = torchvision.models.vgg11(num_classes=8).eval()
    odd.features[1] = torch.nn.Sigmoid()
    odd_path = os.path.join(work, "sigmoid.onnx")
    torch.onnx.export(odd, torch.zeros(1, 3, 224, 224), odd_path, opset_version=13)
    r = export(odd_path, os.path.join(work, "refused.safetensors"))
    ok = r.returncode == 2 and "(Sigmoid)" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    print(f"  refuse an ONNX Sigmoid: {'ok' if ok else 'FAIL'}")
    failures += not ok
    r = export(os.path.join(work, "vgg16_state.pth"), os.path.join(work, "x.safetensors"), "--classes", "a,b")
    ok = r.returncode == 2 and "8 outputs" in r.stderr
    print(f"  refuse mismatched --classes: {'ok' if ok else 'FAIL'}")
    failures += not ok
    # No class names in the source and no --classes: refused, saying how to name them.
    r = export(os.path.join(work, "vgg16_state.pth"), os.path.join(work, "x.safetensors"))
    ok = r.returncode == 2 and "does not name its 8 classes: give --classes" in r.stderr \
        and "--classes ravdess" in r.stderr and not os.path.exists(os.path.join(work, "x.safetensors"))
    print(f"  refuse a source without class names: {'ok' if ok else 'FAIL'}")
    failures += not ok
    # Outputs by fervid's rules: a folder and a missing folder refused, a symlink written through.
    src = os.path.join(work, "vgg16_state.pth")
    for out, reason in ((work, "a folder, not a file"),
                        (os.path.join(work, "nope", "x.safetensors"), "does not exist"),
                        (src, "that is the source")):
        r = export(src, out, "--classes", "ravdess")
        ok = r.returncode == 2 and reason in r.stderr
        print(f"  refuse the output {os.path.basename(out)}: {'ok' if ok else 'FAIL'}")
        failures += not ok
    link = os.path.join(work, "link.safetensors")
    os.symlink("target.safetensors", link)
    r = export(src, link, "--classes", "ravdess")
    ok = r.returncode == 0 and os.path.islink(link) and \
        os.path.getsize(os.path.join(work, "target.safetensors")) > 1000
    print(f"  write through a symlink: {'ok' if ok else 'FAIL'}")
    return failures + (not ok)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fervid", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--keras-python", default=os.environ.get("FERVID_KERAS_PYTHON", ""))
    ap.add_argument("--seed", type=int, default=int(os.environ.get("FERVID_SEED", "2026")))
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    frame_dir, paths = frames(args.data, args.work)
    print(f"seed {args.seed}; {len(paths)} real frames")
    failures = 0
    for name, src, model, pre, extra, resize, classes in torch_cases(args.seed, args.work):
        out = os.path.join(args.work, name.replace(" ", "_") + ".safetensors")
        r = export(src, out, *extra)
        if r.returncode != 0:
            failures += 1
            continue
        if f"classes (8, output order): {','.join(classes)}" not in r.stdout:
            print(f"  {name}: the wrote line does not name the classes in order: FAIL")
            failures += 1
        with torch.no_grad():
            ref = model(inputs(paths, pre, resize)).to(torch.float64).numpy()
        failures += compare(name, ref, fervid_outputs(args.fervid, out, frame_dir, args.work,
                                                      "logit_", classes))
        if resize:
            # What a model trained on PIL's (antialiased) resize would see instead.
            with torch.no_grad():
                aa = model(antialiased(paths, pre, resize)).to(torch.float64).numpy()
            rel = np.linalg.norm(aa - ref, axis=1) / np.linalg.norm(ref, axis=1)
            print(f"  {name}: fervid's bilinear against an antialiased Resize({resize}): logits "
                  f"differ by {rel.min():.1e}..{rel.max():.1e} relative L2 (measured, not bounded)")
    failures += bad_inputs(args.work)

    keras_py = args.keras_python
    skipped = ""
    if not keras_py or subprocess.run([keras_py, "-c", "import keras, jax"], env=dict(os.environ, KERAS_BACKEND="jax"),
                                      capture_output=True).returncode != 0:
        skipped = f"no Keras with JAX at '{keras_py}' (tools/setup.sh makes one)"
    else:
        kdir = os.path.join(args.work, "keras")
        os.makedirs(kdir)
        x = inputs(paths, "study").permute(0, 2, 3, 1).contiguous().numpy()  # NHWC for Keras
        np.save(os.path.join(kdir, "x.npy"), x)
        subprocess.run([keras_py, "-c", KERAS_BUILD, kdir, str(args.seed),
                        os.path.join(kdir, "x.npy")], check=True)
        for fname in ("study.keras", "study.h5", "top.h5"):
            src = os.path.join(kdir, fname)
            out = os.path.join(kdir, fname.replace(".", "_") + ".safetensors")
            if export(src, out, "--classes", "ravdess").returncode != 0:
                failures += 1
                continue
            ref = np.load(os.path.join(kdir, fname.split(".")[0] + "_ref.npy"))
            got = fervid_outputs(args.fervid, out, frame_dir, kdir, "p_")
            failures += compare("keras " + fname, ref, got)
        r = export(os.path.join(kdir, "bad.keras"), os.path.join(kdir, "bad.safetensors"))
        ok = r.returncode == 2 and "odd_conv (Conv2D)" in r.stderr and \
            not os.path.exists(os.path.join(kdir, "bad.safetensors"))
        print(f"  refuse a Keras 5x5 Conv2D: {'ok' if ok else 'FAIL'}")
        failures += not ok
        # inspect shows where the file came from
        r = subprocess.run([args.fervid, "inspect", os.path.join(kdir, "study_keras.safetensors")],
                           capture_output=True, text=True)
        ok = "source_framework: Keras" in r.stdout and "exporter: fervid tools/export_weights.py" in r.stdout
        print(f"  inspect shows the source: {'ok' if ok else 'FAIL'}")
        failures += not ok
    print(f"{failures} failed checks (bound: relative L2 < {BOUND}, same top-1 on every frame)")
    if failures:
        return 1
    if skipped:
        print(f"SKIPPED the Keras part: {skipped}")
        return 77
    return 0


if __name__ == "__main__":
    sys.exit(main())
