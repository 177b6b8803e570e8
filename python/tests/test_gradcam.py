"""Grad-CAM from Python (Engine.gradcam): maps over each crop in [0, 1], each frame's top class by
default and the same class as classify_frames' label, a named class, and the refusals (an engine
made without explain=True, a class the model does not have). Its agreement with PyTorch autograd
is tests/gradcam_torch.py's (ctest gradcam_torch)."""

import numpy as np
import pytest
from PIL import Image

import fervid


def faces(data, n=3):
    photo = np.asarray(Image.open(data / "faces/astronaut.png").convert("RGB"))
    return np.stack([photo[25 * i:25 * i + 260, 15 * i:15 * i + 240] for i in range(n)])


def test_gradcam_maps_and_classes(tiny_weights, data):
    frames = faces(data)
    with fervid.Engine(tiny_weights, device="cpu", batch=2, explain=True) as engine:
        scores = engine.classify_frames(frames, crop="center")
        top = engine.gradcam(frames, crop="center")
        named = engine.gradcam(frames, crop="center", classes="sad")
        mixed = engine.gradcam(frames, crop="center", classes=[0, "happy", None])
    assert top["maps"].shape == (3, 16, 16) and top["maps"].dtype == np.float32
    assert float(top["maps"].min()) >= 0 and float(top["maps"].max()) <= 1
    np.testing.assert_array_equal(top["classes"], scores.labels)
    np.testing.assert_allclose(top["probs"], scores.probs, rtol=1e-4, atol=1e-6)
    assert list(named["classes"]) == [3, 3, 3]
    assert list(mixed["classes"][:2]) == [0, 2] and mixed["classes"][2] == scores.labels[2]
    np.testing.assert_array_equal(mixed["maps"][2], top["maps"][2])
    # A map is 1 at its largest value, unless the class's evidence is nowhere (all zero).
    for m in top["maps"]:
        assert m.max() == pytest.approx(1.0) or m.max() == 0


def test_gradcam_refusals(tiny_weights, data):
    frames = faces(data, 1)
    with fervid.Engine(tiny_weights, device="cpu") as engine:
        with pytest.raises(fervid.OptionError) as e:
            engine.gradcam(frames)
        assert "Engine(..., explain=True)" in str(e.value)  # Python's words, not C++'s
    with fervid.Engine(tiny_weights, device="cpu", explain=True) as engine:
        with pytest.raises(fervid.OptionError, match="not a class"):
            engine.gradcam(frames, classes="bored")
        with pytest.raises(fervid.OptionError, match="outside"):
            engine.gradcam(frames, classes=8)
