"""fervid.study (docs/study.md): the folds over actors and the two protocols' validation sets, the
network inputs fervid gives for training, and a whole run on a small dataset made here from the
shared RAVDESS clips under RAVDESS names (1 epoch, 32x32 inputs, on the CPU), killed and
resumed."""
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import fervid
from fervid import study

from conftest import ROOT


def test_folds_hold_each_actor_once_and_keep_validation_where_the_protocol_says():
    seed = random.randrange(1 << 30)
    for folds, n in ((5, 24), (2, 4), (3, 7), (4, 9)):
        actors = random.Random(seed).sample(range(1, 60), n)
        for protocol in study.PROTOCOLS:
            plan = study.plan_folds(actors, folds, seed, protocol)
            assert plan == study.plan_folds(actors, folds, seed, protocol), "a seed's plan is fixed"
            assert sorted(a for f in plan for a in f["test"]) == sorted(actors), f"seed {seed}"
            sizes = [len(f["test"]) for f in plan]
            assert max(sizes) - min(sizes) <= 1, f"seed {seed}: folds of {sizes} actors"
            for f in plan:
                test, val, train = set(f["test"]), set(f["val"]), set(f["train"])
                assert train and test and not (train & test) and not (train & val), f"seed {seed}"
                if protocol == "study":
                    assert val == test, "the study validates on its test fold"
                    assert train | test == set(actors)
                else:
                    assert val and not (val & test), f"seed {seed}: validation from training actors"
                    assert train | val | test == set(actors)
    with pytest.raises(study.StudyError, match="3 actors cannot make 5 folds"):
        study.plan_folds([1, 2, 3], 5, 0, "actor-disjoint")
    with pytest.raises(study.StudyError, match="none for validation"):
        study.plan_folds([1, 2], 2, 0, "actor-disjoint")


def test_class_weights_balance_frames():
    w = study.class_weights(np.array([0, 0, 0, 1, 2, 2]), 4)
    assert np.allclose(w, [6 / 9, 6 / 3, 6 / 6, 0])


def test_augmentation_flips_and_moves_the_pixels_within_their_range():
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    mean, std = (np.array(v, dtype=np.float32) for v in study.NORMALISATION["torchvision"])
    pixels = np.random.default_rng(rng.randrange(1 << 30)).uniform(0.05, 0.95, (6, 8, 8, 3))
    x = ((pixels - mean) / std).astype(np.float32)
    y = study.augment(x, rng, "torchvision")
    assert y.shape == x.shape and y.dtype == np.float32
    back = y * std + mean
    assert back.min() >= -1e-5 and back.max() <= 1 + 1e-5, f"seed {seed}: pixels leave [0, 1]"
    for a, b in zip(pixels, back):
        # Each input is its pixels (or their mirror) under one contrast and brightness change:
        # a line fitted per channel explains it wherever nothing was clipped.
        fits = []
        for src in (a, a[:, ::-1]):
            kept = (b > 1e-4) & (b < 1 - 1e-4)
            err, slopes = 0.0, []
            for c in range(3):
                k = kept[..., c]
                slope, icpt = np.polyfit(src[..., c][k], b[..., c][k], 1)
                err = max(err, float(np.abs(slope * src[..., c][k] + icpt - b[..., c][k]).max()))
                slopes.append(slope)
            fits.append((err, slopes))
        err, slopes = min(fits)
        assert err < 1e-4 and all(0.79 <= k <= 1.21 for k in slopes), (seed, err, slopes)
    assert np.array_equal(study.augment(x[:0], rng, "torchvision"), x[:0])


@pytest.fixture(scope="module")
def study_set(data, tmp_path_factory):
    """Four actors, two emotions each, under RAVDESS names (video-only speech): links to the two
    shared RAVDESS clips (disgust, surprised)."""
    clips = data / "ravdess" / "modified"
    if not clips.is_dir():
        pytest.skip(f"no RAVDESS clips in {clips}")
    d = tmp_path_factory.mktemp("ravdess")
    for actor in (1, 2, 3, 4):
        folder = d / f"Actor_{actor:02d}"
        folder.mkdir()
        os.symlink(clips / "01-01-07-02-02-01-01_1.mp4", folder / f"02-01-07-02-02-01-{actor:02d}.mp4")
        os.symlink(clips / "01-01-08-02-01-01-19.mp4", folder / f"02-01-08-02-01-01-{actor:02d}.mp4")
    return d


def test_network_inputs_come_per_sampled_frame_and_refuse_what_they_cannot_cut(
        study_set, tiny_weights, detector):
    """The arrays fervid gives for training (the exported model's logits on them are held to
    fervid's in the run below): one per sampled frame, the card's normalisation."""
    video = sorted(study_set.rglob("*.mp4"))[0]
    with fervid.Engine(tiny_weights, device="cpu", precision="fp32") as engine:
        for crop in ("center", "face"):
            d = engine.network_inputs(video, stride=7, max_frames=4, crop=crop)
            assert d["inputs"].shape == (4, 16, 16, 3) and d["inputs"].dtype == np.float32
            assert list(d["index"]) == [0, 7, 14, 21]
            # The tiny card's study preset: value / 255 of the resized crop's RGB.
            assert 0 <= d["inputs"].min() and d["inputs"].max() <= 1 and d["inputs"].std() > 0
            assert d["crops"].shape == (4, 4) and not d["no_face"].any()
        with pytest.raises(fervid.OptionError, match="crop"):
            engine.network_inputs(video, crop="haar")
        with pytest.raises(fervid.InputError):
            engine.network_inputs(study_set / "missing.mp4")


def _run(cli, study_set, out, *extra):
    env = dict(os.environ, FERVID_BIN=cli, FERVID_EXPORTER=str(ROOT / "tools" / "export_weights.py"))
    return subprocess.Popen(
        [sys.executable, "-m", "fervid.study", str(study_set), "--out", str(out), "--folds", "2",
         "--epochs", "1", "--input-size", "32", "--max-frames", "3", "--stride", "20", "--batch",
         "4", "--crop", "face", "--device", "cpu", "--seed", "3", *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_run_trains_exports_evaluates_and_resumes_after_a_kill(cli, study_set, tmp_path, detector):
    out = tmp_path / "run"
    # Killed once the first fold has written its epoch: the second run picks up from there.
    p = _run(cli, study_set, out)
    deadline = time.time() + 300
    while not (out / "fold-1" / "state.pt").exists() and p.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    if p.poll() is None:
        p.send_signal(signal.SIGKILL)
    p.wait()
    p = _run(cli, study_set, out)
    stdout, stderr = p.communicate(timeout=600)
    assert p.returncode == 0, stderr
    summary = json.loads((out / "summary.json").read_text())
    s = summary["settings"]
    assert (s["protocol"], s["folds"], s["seed"], s["actors"]) == ("actor-disjoint", 2, 3,
                                                                    [1, 2, 3, 4])
    assert len(summary["folds"]) == 2
    for f in summary["folds"]:
        assert not set(f["test"]) & (set(f["train"]) | set(f["val"]))
        m = f["metrics"]
        assert m["videos"] == 4 and m["frames"] == 12, m  # 2 actors x 2 clips, 3 frames each
        assert 0 <= m["video_accuracy"] <= 1
        # The exported model in fervid against PyTorch on the same inputs: fp32 sums in
        # another order.
        fid = f["fidelity"]
        assert fid["max_abs_logit_diff"] <= 1e-4 * max(1.0, fid["max_abs_logit"]), fid
    assert (out / "confusion.png").stat().st_size > 1000
    assert "mean +- sd" in stdout and "actor-disjoint" in stdout
    # Done folds are not redone; other settings are refused in one line.
    p = _run(cli, study_set, out)
    _, stderr = p.communicate(timeout=300)
    assert p.returncode == 0 and stderr.count("done earlier") == 2, stderr
    p = _run(cli, study_set, out, "--protocol", "study")
    _, stderr = p.communicate(timeout=300)
    assert p.returncode == 2 and "other settings (protocol)" in stderr, stderr
