"""Fixtures of the Python module's tests: the fervid CLI (to compare with and to make weights), the
shared real test data, a tiny model (16x16 input: runs take milliseconds) and the study's."""

import json
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _cli() -> str:
    path = os.environ.get("FERVID_BIN", str(ROOT / "build" / "bin" / "fervid"))
    if not os.access(path, os.X_OK):
        pytest.skip(f"no fervid CLI at {path} (set FERVID_BIN)", allow_module_level=True)
    return path


@pytest.fixture(scope="session")
def cli() -> str:
    return _cli()


@pytest.fixture(scope="session")
def data() -> pathlib.Path:
    # ../shared/data, else what tools/make-test-data.sh made from Debian's packages.
    default = ROOT.parent / "shared" / "data"
    if not default.is_dir():
        default = ROOT / "out" / "test-data"
    d = pathlib.Path(os.environ.get("FERVID_DATA_DIR", default))
    if not d.is_dir():
        pytest.skip(f"no test data at {d} (tools/make-test-data.sh makes it)")
    return d


def run_cli(cli: str, *args, check=True) -> subprocess.CompletedProcess:
    r = subprocess.run([cli, *map(str, args)], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"fervid {' '.join(map(str, args))}: exit {r.returncode}\n{r.stderr}")
    return r


@pytest.fixture(scope="session")
def detector() -> pathlib.Path:
    """The face detector's weights; skipped, saying why, without them (tools/setup.sh converts
    them into ~/.cache/fervid/; FERVID_DETECTOR names another)."""
    cache = pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache"))
    path = pathlib.Path(os.environ.get("FERVID_DETECTOR",
                                       cache / "fervid" / "blazeface-short-range.safetensors"))
    if not path.is_file():
        pytest.skip(f"no face detector at {path} (tools/setup.sh writes it)")
    return path


@pytest.fixture(scope="session")
def tiny_weights(cli, tmp_path_factory) -> pathlib.Path:
    """A tiny model with the RAVDESS classes: a VGG of two conv layers on 16x16 inputs."""
    d = tmp_path_factory.mktemp("tiny")
    card = d / "tiny.json"
    card.write_text(json.dumps({
        "name": "tiny", "config": [8, "M", 8, "M"], "input_size": 16, "head": "gap",
        "dense": [12], "classes": ["neutral", "calm", "happy", "sad", "angry", "fearful",
                                   "disgust", "surprised"],
        "preprocess": "study", "crop": "center", "vote": "majority"}))
    out = d / "tiny.safetensors"
    run_cli(cli, "make-weights", "--seed", 7, "--spec", card, "--out", out)
    return out


@pytest.fixture(scope="session")
def study_weights(cli, tmp_path_factory) -> pathlib.Path:
    """Untrained weights for the study's card (ravdess-vgg16): the real network."""
    out = tmp_path_factory.mktemp("study") / "ravdess.safetensors"
    run_cli(cli, "make-weights", "--seed", 11, "--out", out)
    return out


@pytest.fixture(scope="session")
def dataset(data, tmp_path_factory) -> pathlib.Path:
    """The real RAVDESS-format clips under RAVDESS names (Actor folders), and the face video."""
    if not (data / "ravdess" / "modified").is_dir():
        pytest.skip(f"no RAVDESS clips in {data} (they come with ../shared/data only)")
    d = tmp_path_factory.mktemp("ravdess")
    clips = {
        "Actor_01/02-01-07-02-02-01-01.mp4": data / "ravdess/modified/01-01-07-02-02-01-01_1.mp4",
        "Actor_19/02-01-08-02-01-01-19.mp4": data / "ravdess/modified/01-01-08-02-01-01-19.mp4",
        "Actor_19/02-01-03-01-01-01-19.mp4": data / "video/astronaut-720p.mp4",
    }
    for name, src in clips.items():
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(src, d / name)
    return d


def pytest_configure(config):
    # Every test runs on make-weights' untrained weights: their warning is expected (one test
    # checks it), not news.
    config.addinivalue_line("filterwarnings", "ignore:.*holds untrained weights:UserWarning")
