#!/usr/bin/env python3
"""PyTorch GPU baseline for `fervid bench --device cuda`, on the same weights, in the same run.

Writes untrained weights with `fervid make-weights` (or takes --weights), loads them into the
torchvision VGG16 of the card (flatten head) or the study's model (gap head), and times the frame
stage (a ready 224x224 batch -> logits) in the modes a PyTorch user would try:
  eager-fp32        NCHW, fp32 (TF32 off)
  eager-fp16        NCHW, fp16
  cl-fp16           channels_last, fp16, cudnn.benchmark
  cl-fp16-graph     the same captured in a CUDA graph
  compile-fp16      torch.compile(mode=--compile-mode), channels_last fp16 (skipped with --no-compile)
Then it runs `fervid bench --device cuda --json` with the same weights, batch sizes and
precision and prints frames/s of every mode, the best PyTorch mode and fervid's ratio to it.
Timing: CUDA events around --iters back-to-back batches after --warmup ones.

  python3 bench/baselines/torch_gpu.py --fervid build/bin/fervid --spec ravdess-vgg16 --batch 1 64 256
"""
import argparse
import copy
import json
import os
import struct
import subprocess
import tempfile

import numpy as np
import torch
import torchvision

DTYPES = {"F32": np.float32, "F16": np.float16}


def load_safetensors(path):
    """The tensors of a safetensors file (f32/f16; bf16 via its upper f32 bits) as torch tensors."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw = data[a:b]
        if info["dtype"] == "BF16":
            u = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
            arr = u.view(np.float32)
        else:
            arr = np.frombuffer(raw, dtype=DTYPES[info["dtype"]])
        out[name] = torch.from_numpy(arr.reshape(info["shape"]).astype(np.float32))
    return out


def model_for(card, classes=8):
    m = torchvision.models.vgg16(num_classes=classes)
    if card == "ravdess-vgg16":
        m.avgpool = torch.nn.AdaptiveAvgPool2d(1)
        m.classifier = torch.nn.Sequential(
            torch.nn.Linear(512, 512), torch.nn.ReLU(True), torch.nn.Dropout(),
            torch.nn.Linear(512, 256), torch.nn.ReLU(True), torch.nn.Dropout(),
            torch.nn.Linear(256, classes))
    return m.eval()


def time_fps(fn, batch, iters, warmup):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    stop.record()
    stop.synchronize()
    return batch * iters / (start.elapsed_time(stop) / 1000.0)


def modes(model, batch, args):
    """(name, callable) for every mode, each on its own copy of the model and input."""
    dev = torch.device("cuda")
    x32 = torch.randn(batch, 3, 224, 224, device=dev)

    m32 = copy.deepcopy(model).to(dev).float()
    yield "eager-fp32", lambda: m32(x32)
    m16 = copy.deepcopy(model).to(dev).half()
    x16 = x32.half()
    yield "eager-fp16", lambda: m16(x16)
    mcl = copy.deepcopy(model).to(dev).half().to(memory_format=torch.channels_last)
    xcl = x16.contiguous(memory_format=torch.channels_last)
    yield "cl-fp16", lambda: mcl(xcl)

    static_in = xcl.clone()
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            mcl(static_in)
    torch.cuda.current_stream().wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = mcl(static_in)  # noqa: F841 (kept alive by the graph)
    yield "cl-fp16-graph", graph.replay

    if not args.no_compile and (not args.compile_batch or batch in args.compile_batch):
        mc = torch.compile(mcl, mode=args.compile_mode)
        yield "compile-fp16", lambda: mc(xcl)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fervid", default="build/bin/fervid")
    ap.add_argument("--spec", default="ravdess-vgg16", choices=["ravdess-vgg16", "torchvision-vgg16"])
    ap.add_argument("--weights", help="safetensors file (default: fervid make-weights --seed 1)")
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 64, 256])
    ap.add_argument("--precision", default="fp16", help="fervid's precision for the comparison")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--compile-mode", default="max-autotune-no-cudagraphs")
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile (minutes)")
    ap.add_argument("--compile-batch", type=int, nargs="*", default=[],
                    help="compile only at these batch sizes (each one autotunes anew)")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()

    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    weights = args.weights
    if not weights:
        weights = os.path.join(tempfile.mkdtemp(prefix="fervid-torch-gpu-"), "w.safetensors")
        subprocess.run([args.fervid, "make-weights", "--seed", "1", "--spec", args.spec,
                        "--out", weights], check=True)
    model = model_for(args.spec)
    state = load_safetensors(weights)
    model.load_state_dict(state)

    out = subprocess.run([args.fervid, "bench", "--device", "cuda", "--weights", weights,
                          "--precision", args.precision, "--json", "--iters", str(args.iters),
                          "--warmup", str(args.warmup), "--batch", *map(str, args.batch)],
                         check=True, capture_output=True, text=True).stdout
    report = json.loads(out)
    fervid = {r["batch"]: r["frames_per_s"] for r in report["results"]}

    print(f"model {args.spec}, {torch.cuda.get_device_name()}, torch {torch.__version__}, "
          f"cuDNN {torch.backends.cudnn.version()}, fervid {args.precision}")
    rows = []
    with torch.no_grad():
        for b in args.batch:
            row = {"batch": b, "torch": {}}
            for name, fn in modes(model, b, args):
                row["torch"][name] = time_fps(fn, b, args.iters, args.warmup)
            best = max(row["torch"], key=row["torch"].get)
            row.update(best=best, best_fps=row["torch"][best], fervid_fps=fervid[b],
                       ratio=fervid[b] / row["torch"][best])
            rows.append(row)
            torch.cuda.empty_cache()
    names = list(dict.fromkeys(n for r in rows for n in r["torch"]))
    print(f"{'batch':>5} " + " ".join(f"{n:>14}" for n in names) +
          f" {'fervid':>10} {'fervid/best':>12}")
    for r in rows:
        print(f"{r['batch']:5d} " + " ".join(f"{r['torch'].get(n, float('nan')):14.1f}" for n in names) +
              f" {r['fervid_fps']:10.1f} {r['ratio']:11.2f}x  (best: {r['best']})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"spec": args.spec, "device": torch.cuda.get_device_name(),
                       "torch": torch.__version__, "fervid": report, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
