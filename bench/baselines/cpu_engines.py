#!/usr/bin/python3
"""fervid's CPU frame stage against PyTorch, ONNX Runtime and OpenVINO, in one run.

    /usr/bin/python3 bench/baselines/cpu_engines.py --fervid build/bin/fervid --batch 8 --rounds 3

One model for all: the card's VGG16 (the study's gap head or torchvision's flatten head) with
random weights built in Debian's PyTorch, saved as a state_dict, exported to ONNX (opset 13) and to
the safetensors fervid loads (tools/export_weights.py). Each engine times the frame stage (a
random NCHW/NHWC batch -> logits) at the same batch and thread count: 1 warm-up, then --iters
timed calls. Engines run in interleaved rounds (every engine once per round, a fresh process
each), so drift of a shared machine spreads over all of them; the table gives each engine's
median frames/s and fervid's ratio to it.

ONNX Runtime, OpenVINO and NNCF are not Debian packages: they are installed from PyPI into a
virtual environment this script makes (FERVID_BASELINES_VENV, default
~/.cache/fervid/cpu-baselines-venv) on Debian's python, seeing Debian's torch and numpy. OpenVINO
also runs in bf16 (INFERENCE_PRECISION_HINT) when the CPU has AVX512_BF16 or AMX, as fervid does
(--precision bf16), and in int8 when the CPU has AVX-512 VNNI, AVX-VNNI or AMX-INT8: NNCF's
post-training quantization of the same ONNX model (its default preset), calibrated on the same
frames as `fervid calibrate` (--calibration: a video, cut to --calibration-frames frames of
224x224 by the ffmpeg CLI, read by both as the same PNG files).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
VENV = os.environ.get("FERVID_BASELINES_VENV",
                      os.path.expanduser("~/.cache/fervid/cpu-baselines-venv"))
PYPI = ["onnxruntime==1.20.1", "openvino==2024.6.0", "nncf==2.14.1", "numpy<2"]
DEFAULT_CALIBRATION = os.path.join(ROOT, "..", "shared", "data", "ravdess", "modified",
                                   "01-01-07-02-02-01-01_1.mp4")


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def venv_python():
    py = os.path.join(VENV, "bin", "python")
    probe = [py, "-c", "import onnxruntime, openvino, nncf"]
    if os.path.exists(py) and subprocess.run(probe, capture_output=True).returncode == 0:
        return py
    print(f"cpu_engines: ONNX Runtime, OpenVINO and NNCF (PyPI) into {VENV}", file=sys.stderr)
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", VENV], check=True)
    subprocess.run([py, "-m", "pip", "install", "-q", *PYPI], check=True)
    return py


def prepare(work, spec):
    """The model as a state_dict, ONNX and safetensors; returns their paths."""
    import torch
    sys.path.insert(0, HERE)
    from torch_cpu import model_for
    torch.manual_seed(1)
    model = model_for(spec)
    pt, onnx, st = (os.path.join(work, f"vgg.{e}") for e in ("pt", "onnx", "safetensors"))
    torch.save(model.state_dict(), pt)
    torch.onnx.export(model, torch.randn(1, 3, 224, 224), onnx, opset_version=13,
                      input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}})
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "export_weights.py"), pt, st,
                    "--classes", "ravdess", "--preprocess", "study"], check=True,
                   capture_output=True)
    return pt, onnx, st


def calibration_frames(video, frames, work):
    """`frames` frames of `video`, evenly spaced, as 224x224 PNGs in a folder; its path."""
    out = os.path.join(work, "calibration")
    os.makedirs(out)
    n = int(subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                            "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", video],
                           check=True, capture_output=True, text=True).stdout.strip())
    step = max(1, n // frames)
    subprocess.run(["ffmpeg", "-v", "error", "-i", video, "-vf",
                    f"select=not(mod(n\\,{step})),scale=224:224", "-vsync", "vfr", "-frames:v",
                    str(frames), os.path.join(out, "f%04d.png")], check=True)
    return out


def quantize_openvino(onnx, frames_dir, out_xml):
    """NNCF's int8 model of `onnx`, calibrated on the PNGs of `frames_dir` (the card's preprocess:
    RGB / 255), saved as OpenVINO IR (in this process: the virtual environment's python)."""
    import nncf
    import numpy as np
    import openvino as ov
    from PIL import Image
    frames = [np.asarray(Image.open(os.path.join(frames_dir, f)).convert("RGB"), np.float32)
              .transpose(2, 0, 1)[None] / 255.0 for f in sorted(os.listdir(frames_dir))]
    model = ov.Core().read_model(onnx)
    q = nncf.quantize(model, nncf.Dataset(frames), subset_size=len(frames))
    ov.save_model(q, out_xml)


def time_calls(run, x, iters):
    run(x)
    t0 = time.perf_counter()
    for _ in range(iters):
        run(x)
    return len(x) * iters / (time.perf_counter() - t0)


def run_engine(engine, model, spec, batch, threads, iters):
    """One engine's frames/s (in this process)."""
    import numpy as np
    x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224), dtype=np.float32)
    if engine == "torch":
        import torch
        sys.path.insert(0, HERE)
        from torch_cpu import model_for
        torch.set_num_threads(threads)
        m = model_for(spec)
        m.load_state_dict(torch.load(model))
        xt = torch.from_numpy(x)
        with torch.no_grad():
            return time_calls(m, xt, iters)
    if engine == "onnxruntime":
        import onnxruntime as ort
        o = ort.SessionOptions()
        o.intra_op_num_threads = threads
        o.inter_op_num_threads = 1
        s = ort.InferenceSession(model, o, providers=["CPUExecutionProvider"])
        return time_calls(lambda v: s.run(None, {"x": v}), x, iters)
    if engine.startswith("openvino"):
        import openvino as ov
        hint = "bf16" if engine.endswith("bf16") else "f32"  # int8: the model's own
        c = ov.Core().compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": threads,
                                                    "INFERENCE_PRECISION_HINT": hint})
        req = c.create_infer_request()
        return time_calls(lambda v: req.infer({0: v}), x, iters)
    raise SystemExit(f"unknown engine {engine}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fervid", default="build/bin/fervid")
    ap.add_argument("--spec", default="ravdess-vgg16", choices=["ravdess-vgg16", "torchvision-vgg16"])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--iters", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--fervid-runs", nargs="+",
                    default=["auto/fp32", "blas/fp32", "auto/bf16", "auto/int8"],
                    help="fervid's CONV_IMPL/PRECISION pairs to time, each a row (bf16 rows only "
                         "where the CPU has AVX512_BF16 or AMX; int8 rows where it has VNNI or "
                         "AMX-INT8)")
    ap.add_argument("--calibration", default=DEFAULT_CALIBRATION,
                    help="the video whose frames calibrate both int8 engines")
    ap.add_argument("--calibration-frames", type=int, default=32)
    ap.add_argument("--run", help=argparse.SUPPRESS)  # ENGINE MODEL: one timing, as JSON
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--quantize", nargs=3, help=argparse.SUPPRESS)  # ONNX FRAMES OUT_XML
    a = ap.parse_args()
    if a.quantize:
        quantize_openvino(*a.quantize)
        return
    if a.run:
        print(json.dumps(run_engine(a.run, a.model, a.spec, a.batch, a.threads, a.iters)))
        return

    py = venv_python()
    bf16 = bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})
    int8 = bool(cpu_flags() & {"avx512_vnni", "avx_vnni", "amx_int8"})
    with tempfile.TemporaryDirectory() as work:
        pt, onnx, st = prepare(work, a.spec)
        st8 = ov8 = None
        if int8:
            frames = calibration_frames(a.calibration, a.calibration_frames, work)
            st8 = os.path.join(work, "vgg-int8.safetensors")
            subprocess.run([a.fervid, "calibrate", frames, "--weights", st, "--out", st8,
                            "--frames", str(a.calibration_frames), "--quiet"], check=True,
                           capture_output=True)
            ov8 = os.path.join(work, "vgg-int8.xml")
            subprocess.run([py, __file__, "--quantize", onnx, frames, ov8], check=True,
                           capture_output=True)
        engines = {}
        for run in a.fervid_runs:
            conv, precision = run.split("/")
            if (precision == "bf16" and not bf16) or (precision == "int8" and not int8):
                continue
            engines[f"fervid {precision} (--conv-impl {conv})"] = ("fervid", conv, precision)
        engines.update({"PyTorch fp32": ("/usr/bin/python3", "torch", pt),
                        "ONNX Runtime fp32": (py, "onnxruntime", onnx),
                        "OpenVINO fp32": (py, "openvino", onnx)})
        if bf16:
            engines["OpenVINO bf16"] = (py, "openvino-bf16", onnx)
        if int8:
            engines["OpenVINO int8 (NNCF)"] = (py, "openvino-int8", ov8)
        fps = {name: [] for name in engines}
        devices = {}  # fervid's rows: the device name its bench reports (which kernels ran)
        for r in range(a.rounds):
            for name, e in engines.items():
                if e[0] == "fervid":
                    out = subprocess.run(
                        [a.fervid, "bench", "--device", "cpu", "--json", "--weights",
                         st8 if e[2] == "int8" else st,
                         "--conv-impl", e[1], "--precision", e[2], "--threads", str(a.threads),
                         "--batch",
                         str(a.batch), "--iters", str(a.iters), "--warmup", "1"],
                        check=True, capture_output=True, text=True).stdout
                    report = json.loads(out)
                    fps[name].append(report["results"][0]["frames_per_s"])
                    devices[name] = report["device_name"]
                else:
                    out = subprocess.run(
                        [e[0], __file__, "--run", e[1], "--model", e[2], "--spec", a.spec,
                         "--batch", str(a.batch), "--threads", str(a.threads), "--iters",
                         str(a.iters)], check=True, capture_output=True, text=True).stdout
                    fps[name].append(json.loads(out.strip().splitlines()[-1]))
            print(f"round {r + 1}: " + ", ".join(f"{n} {v[-1]:.2f}" for n, v in fps.items()),
                  file=sys.stderr)
    med = {n: statistics.median(v) for n, v in fps.items()}
    # A ratio column for the first fervid row of each precision.
    firsts = {}
    for n, e in engines.items():
        if e[0] == "fervid":
            firsts.setdefault(e[2], n)
    print(f"model {a.spec}, batch {a.batch}, {a.threads} threads, {a.iters} timed calls after "
          f"1 warm-up, {a.rounds} interleaved rounds (median)")
    for n, d in devices.items():
        print(f"{n}: {d}")
    print("| engine | frames/s (rounds) | " +
          " | ".join(f"{firsts[p]} / it" for p in firsts) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in firsts) + " |")
    for n, v in fps.items():
        rounds = ", ".join(f"{x:.2f}" for x in v)
        ratios = " | ".join(f"{med[f] / med[n]:.2f}x" for f in firsts.values())
        print(f"| {n} | {med[n]:.2f} ({rounds}) | {ratios} |")


if __name__ == "__main__":
    main()
