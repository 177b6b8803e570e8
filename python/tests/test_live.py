"""Engine.watch(): `fervid live` from Python (docs/live.md), on a FIFO the ffmpeg CLI fills with a
real clip at its real pace."""
import os
import shutil
import subprocess

import numpy as np
import pytest

import fervid

if not shutil.which("ffmpeg"):
    pytest.skip("no ffmpeg CLI to serve a stream", allow_module_level=True)


def feed(clip, fifo):
    os.mkfifo(fifo)
    return subprocess.Popen(["ffmpeg", "-nostdin", "-v", "error", "-re", "-i", str(clip), "-c",
                             "copy", "-f", "mpegts", "-y", str(fifo)])


def test_watch_yields_frames_and_windows_as_they_come_and_ends_with_the_stream(
        data, tiny_weights, tmp_path):
    fifo = tmp_path / "live.ts"
    server = feed(data / "video/astronaut-720p.mp4", fifo)
    with fervid.Engine(tiny_weights, device="cpu") as engine:
        events = []
        for e in engine.watch(fifo, window="10f", hop=0.5, frames=True):
            if e["event"] == "window" and not any(x["event"] == "window" for x in events):
                assert server.poll() is None, "the first window came after the stream's end"
            events.append(e)
    server.wait(timeout=60)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds[-2] == "window", kinds
    end = events[-1]
    assert end["reason"] == "the stream ended" and end["source"] == str(fifo)
    frames = [e for e in events if e["event"] == "frame"]
    assert len(frames) == end["classified"] and 0 < len(frames) <= end["arrived"] <= 105
    for f in frames:
        assert f["label"] in engine.classes and abs(sum(f["probs"].values()) - 1) < 1e-4
    # Each window is the vote of its last 10 classified frames (majority: the tiny card's).
    for i, w in enumerate(events):
        if w["event"] != "window":
            continue
        before = [e for e in events[:i] if e["event"] == "frame"][-10:]
        assert w["frames"] == len(before)
        assert w["votes"] == {c: sum(f["label"] == c for f in before) for c in engine.classes}
        top = max(w["votes"].values())
        assert w["votes"][w["label"]] == top


def test_leaving_the_loop_stops_the_source_and_frees_the_engine(data, tiny_weights, tmp_path):
    fifo = tmp_path / "live.ts"
    server = feed(data / "video/astronaut-720p.mp4", fifo)
    with fervid.Engine(tiny_weights, device="cpu") as engine:
        for e in engine.watch(str(fifo), window=1.0, hop=0.25):
            if e["event"] == "window":
                break
        # The watch is over: the engine classifies again at once.
        rgb = np.random.default_rng().integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
        assert engine.classify_frames(rgb).labels.shape == (1,)
    server.kill()
    server.wait()
    with pytest.raises(fervid.OptionError, match="window="):
        next(fervid.Engine(tiny_weights, device="cpu").watch("-", window="soon"))
