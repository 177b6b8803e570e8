#!/usr/bin/python3
"""PyTorch CPU baseline for `fervid bench --device cpu`, measured in the same run.

Times Debian PyTorch's VGG16 forward (eval, no_grad, fp32, NCHW; the model of the same card:
torchvision's flatten head or the study's gap head) at the same batch sizes and thread count,
runs `fervid bench --json` with the same settings, and prints frames/s of both and the ratio.

  /usr/bin/python3 bench/baselines/torch_cpu.py --fervid build/bin/fervid --batch 1 8
"""
import argparse
import json
import os
import subprocess
import time

import torch
import torchvision


def model_for(card):
    m = torchvision.models.vgg16(num_classes=8)
    if card == "ravdess-vgg16":
        m.avgpool = torch.nn.AdaptiveAvgPool2d(1)
        m.classifier = torch.nn.Sequential(
            torch.nn.Linear(512, 512), torch.nn.ReLU(True), torch.nn.Dropout(),
            torch.nn.Linear(512, 256), torch.nn.ReLU(True), torch.nn.Dropout(),
            torch.nn.Linear(256, 8))
    return m.eval()


def torch_fps(model, batch, iters, warmup):
    x = torch.randn(batch, 3, 224, 224)
    with torch.no_grad():
        for _ in range(warmup):
            model(x)
        t0 = time.perf_counter()
        for _ in range(iters):
            model(x)
        dt = (time.perf_counter() - t0) / iters
    return batch / dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fervid", default="build/bin/fervid")
    ap.add_argument("--spec", default="ravdess-vgg16", choices=["ravdess-vgg16", "torchvision-vgg16"])
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = subprocess.run([args.fervid, "bench", "--device", "cpu", "--spec", args.spec, "--json",
                          "--threads", str(args.threads), "--iters", str(args.iters),
                          "--warmup", str(args.warmup), "--batch", *map(str, args.batch)],
                         check=True, capture_output=True, text=True).stdout
    fervid = {r["batch"]: r["frames_per_s"] for r in json.loads(out)["results"]}
    model = model_for(args.spec)
    print(f"model {args.spec}, {args.threads} threads, torch {torch.__version__}, "
          f"{args.iters} timed iterations after {args.warmup} warm-up")
    print(f"{'batch':>5} {'torch fps':>10} {'fervid fps':>11} {'fervid/torch':>13}")
    for b in args.batch:
        t = torch_fps(model, b, args.iters, args.warmup)
        print(f"{b:5d} {t:10.2f} {fervid[b]:11.2f} {fervid[b] / t:12.2f}x")


if __name__ == "__main__":
    main()
