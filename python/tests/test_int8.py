"""fervid.calibrate and Engine(precision="int8") (docs/int8.md): the scales written into a copy of
the weights, an unreadable input named and skipped, int8 close to fp32 on real frames, and the
one-line refusals."""
import json

import numpy as np
import pytest
from PIL import Image

import fervid
from conftest import run_cli


@pytest.fixture(scope="module")
def small16(cli, tmp_path_factory):
    """A small VGG whose second and third layers have 16 input channels (int8 takes them)."""
    d = tmp_path_factory.mktemp("small16")
    card = d / "small16.json"
    card.write_text(json.dumps({
        "name": "small16", "config": [16, 16, "M", 32, "M"], "input_size": 32, "head": "gap",
        "dense": [12], "classes": ["a", "b", "c"], "preprocess": "study"}))
    out = d / "small16.safetensors"
    run_cli(cli, "make-weights", "--seed", 4, "--spec", card, "--out", out)
    return out


def test_calibrate_then_classify_in_int8(small16, data, tmp_path):
    clip = data / "video" / "astronaut-720p.mp4"
    out = tmp_path / "small16-int8.safetensors"
    cal = fervid.calibrate([tmp_path / "missing.mp4", clip], small16, out, frames=12, stride=3)
    assert cal["frames"] == 12
    assert sorted(cal["scales"]) == ["conv1_1", "conv1_2", "conv2_1"]
    assert cal["scales"]["conv1_1"] == pytest.approx(1 / 255)  # the study's image: exact
    assert len(cal["skipped"]) == 1 and "missing.mp4" in cal["skipped"][0]
    photo = np.asarray(Image.open(data / "faces" / "astronaut.png").convert("RGB"))
    rgb = np.stack([photo[30 * i:30 * i + 300, 20 * i:20 * i + 280] for i in range(6)])
    with fervid.Engine(small16, device="cpu") as engine:
        want = engine.classify_frames(rgb, crop="full")
    try:
        engine = fervid.Engine(out, device="cpu", precision="int8")
    except fervid.OptionError as e:
        assert "int8 on the CPU:" in str(e)
        pytest.skip(str(e))
    with engine:
        got = engine.classify_frames(rgb, crop="full")
    np.testing.assert_allclose(got.probs, want.probs, atol=0.05)


def test_refusals_name_the_option(small16, data, tmp_path):
    clip = data / "video" / "astronaut-720p.mp4"
    with pytest.raises(fervid.OptionError, match="out="):
        fervid.calibrate(clip, small16, small16)
    with pytest.raises(fervid.OptionError, match="frames=0"):
        fervid.calibrate(clip, small16, tmp_path / "x.safetensors", frames=0)
    try:
        fervid.Engine(small16, device="cpu", precision="int8")
    except fervid.OptionError as e:
        assert "fervid calibrate" in str(e) or "int8 on the CPU:" in str(e), str(e)
    else:
        pytest.fail("int8 without scales was accepted")
