"""Classifying paths from Python: the same answers as the CLI, every video once and in order, per-frame
rows with the stream's time stamps, bounded memory, results as DataFrames and JSON."""

import csv
import json
import math
import os
import subprocess

import numpy as np
import pytest

import fervid

from conftest import run_cli

FP32_RTOL = 1e-5  # docs/design.md's fp32 bound, per element with an absolute floor
FP32_ATOL = 1e-6


def close(a: float, b: float) -> bool:
    return abs(a - b) <= FP32_ATOL + FP32_RTOL * abs(b)


def make_clip(path, frames: int, source: str = "testsrc=size=48x32:rate=10") -> str:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", source,
                    "-frames:v", str(frames), "-pix_fmt", "yuv420p", str(path)], check=True)
    return str(path)


def test_videos_and_frames_equal_the_clis_rows(cli, tiny_weights, dataset, data, tmp_path):
    inputs = [str(dataset), str(data / "faces/astronaut.png"), str(tmp_path / "missing.mp4")]
    run_cli(cli, "classify", *inputs, "--weights", tiny_weights, "--device", "cpu", "--stride", 2,
            "--max-frames", 20, "--batch", 6, "--format", "jsonl", "--output", tmp_path / "v.jsonl",
            "--frames", tmp_path / "f.csv", "--logits", "--quiet", check=False)
    want = [json.loads(line) for line in open(tmp_path / "v.jsonl")]
    with open(tmp_path / "f.csv") as f:
        want_frames = list(csv.DictReader(f))
    with fervid.Engine(tiny_weights, device="cpu", batch=6) as engine:
        got = engine.classify(inputs, stride=2, max_frames=20, frames=True, logits=True)
    assert [r.path for r in got] == [w["video"] for w in want]
    assert [r.index for r in got] == list(range(len(want)))
    for r, w in zip(got, want):
        assert r.status == w["status"]
        assert r.frames == w["frames"]
        assert r.label == w["label"]
        if not r.ok:
            assert r.path.endswith("missing.mp4")
            assert r.status == "error: no such file or directory"
            continue
        assert r.votes == w["counts"]
        for c, p in w["mean_probs"].items():
            assert close(r.mean_probs[c], p), (r.path, c)
    rows = got.frames_to_pandas()
    assert len(rows) == len(want_frames) > 20
    for (_, g), w in zip(rows.iterrows(), want_frames):
        assert g["video"] == w["video"] and g["frame"] == int(w["frame"])
        assert g["label"] == w["label"]
        assert abs(g["time_s"] - float(w["time_s"])) <= 1e-6
        for c in got.classes:
            assert close(g[f"p_{c}"], float(w[f"p_{c}"]))
            assert close(g[f"logit_{c}"], float(w[f"logit_{c}"]))


def test_per_frame_time_is_ffprobes_pts_time(tiny_weights, data):
    clip = data / "video/astronaut-720p.mp4"
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "frame=pts_time", "-of", "csv=p=0", str(clip)],
                           capture_output=True, text=True, check=True).stdout
    pts = [float(line.rstrip(",")) for line in probe.splitlines() if line.strip()]
    with fervid.Engine(tiny_weights, device="cpu") as engine:
        (r,) = engine.classify(clip, stride=4, frames=True)
    rows = r.frame_rows
    assert len(rows) == math.ceil(len(pts) / 4)
    np.testing.assert_array_equal(rows.frame, np.arange(0, len(pts), 4))
    np.testing.assert_allclose(rows.time_s, [pts[i] for i in rows.frame], atol=1e-6, rtol=0)


def test_iterator_yields_every_video_once_in_order(tiny_weights, tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    lengths = [5, 1, 13, 2, 9, 3, 7]
    for i, n in enumerate(lengths):
        make_clip(folder / f"c{i}.mp4", n)
    seen, progress = [], []
    with fervid.Engine(tiny_weights, device="cpu", batch=4) as engine:  # videos span batches
        for r in engine.iter_classify(folder, progress=progress.append, decode_threads=3):
            seen.append(r)
    assert [os.path.basename(r.path) for r in seen] == [f"c{i}.mp4" for i in range(len(lengths))]
    assert [r.frames for r in seen] == lengths
    assert [r.index for r in seen] == list(range(len(lengths)))
    assert [p.videos_done for p in progress] == list(range(1, len(lengths) + 1))
    assert progress[-1].videos_total == len(lengths) and progress[-1].frames == sum(lengths)


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_memory_stays_flat_over_hundreds_of_videos(tiny_weights, tmp_path):
    clip = make_clip(tmp_path / "short.mp4", 3)
    inputs = [clip] * 400
    marks = {}
    with fervid.Engine(tiny_weights, device="cpu", batch=8) as engine:
        for r in engine.iter_classify(inputs, frames=True):
            assert r.ok, r.error
            if r.index in (79, 399):
                marks[r.index] = rss_kib()
    # 320 more videos (with their frame rows, dropped as they come) after the first 80: the
    # process holds no more than a few MiB more (allocator noise), not a share per video.
    assert marks[399] - marks[79] < 16 * 1024, marks


def test_leaving_the_loop_early_frees_the_engine(tiny_weights, tmp_path):
    clip = make_clip(tmp_path / "c.mp4", 4)
    with fervid.Engine(tiny_weights, device="cpu", batch=2) as engine:
        for r in engine.iter_classify([clip] * 50):
            break
        again = engine.classify([clip])  # the first run was stopped and let go of the engine
        assert again[0].ok and again[0].frames == 4


def test_results_as_tables_and_json(tiny_weights, dataset):
    with fervid.Engine(tiny_weights, device="cpu") as engine:
        assert "model=tiny device=cpu" in repr(engine) and "precision=fp32" in repr(engine)
        results = engine.classify(dataset, max_frames=4, frames=True)
    videos = results.to_pandas()
    assert list(videos.columns[:4]) == ["video", "frames", "label", "vote"]
    assert list(videos["frames"]) == [4, 4, 4]
    assert [c for c in videos.columns if c.startswith("count_")] == [
        f"count_{c}" for c in results.classes]
    frames = results.frames_to_pandas()
    assert list(frames.columns[:4]) == ["video", "frame", "time_s", "label"]
    assert len(frames) == 12
    lines = results.to_json().splitlines()
    assert len(lines) == 3
    first = json.loads(lines[0])
    assert first["status"] == "ok" and len(first["frame_rows"]) == 4
    assert first["frame_rows"][1]["frame"] == 1


def test_results_print_short_in_a_notebook(tiny_weights, tmp_path):
    """print(results) of many videos: a summary line and the first few, one line each; a
    notebook shows the pandas table."""
    clip = make_clip(tmp_path / "c.mp4", 3)
    with fervid.Engine(tiny_weights, device="cpu") as engine:
        results = engine.classify([clip] * 12 + [tmp_path / "gone.mp4"], max_frames=3)
    text = repr(results)
    assert text.startswith("<Results: 13 videos, 1 failed")
    assert len(text.splitlines()) == 1 + 8 + 1, text
    assert "... 5 more" in text
    first = repr(results[0])
    assert first.startswith(f"<VideoResult '{clip}': {results[0].label} (p ") and "/3 frames" in first
    assert repr(results[12]) == f"<VideoResult '{tmp_path / 'gone.mp4'}': error: no such file or directory>"
    assert "<table" in results._repr_html_()
