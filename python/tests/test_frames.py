"""Frames already in memory: a numpy batch gives what the same frames give as PNG files, frames of
different sizes go in as a list, a batch as one video is voted like a video file, and arrays of
the wrong dtype or shape are refused with the frame and the reason."""

import numpy as np
import pytest
from PIL import Image

import fervid


def real_frames(data, n: int = 6) -> np.ndarray:
    """n crops of the shared face photo, each shifted: real pixels, one [N, H, W, 3] array."""
    photo = np.asarray(Image.open(data / "faces/astronaut.png").convert("RGB"))
    return np.stack([photo[20 * i:20 * i + 300, 10 * i:10 * i + 280] for i in range(n)])


def assert_same_scores(a_probs, a_logits, b_probs, b_logits):
    # The same pixels in other batches: equal to fp32 rounding (the GEMM's blocking follows the
    # batch size).
    np.testing.assert_allclose(a_probs, b_probs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a_logits, b_logits, rtol=1e-5, atol=1e-5)


def test_a_numpy_batch_equals_the_same_frames_as_png_files(tiny_weights, data, tmp_path):
    frames = real_frames(data)
    paths = []
    for i, f in enumerate(frames):
        paths.append(str(tmp_path / f"f{i}.png"))
        Image.fromarray(f).save(paths[-1])
    with fervid.Engine(tiny_weights, device="cpu", batch=4) as engine:
        scores = engine.classify_frames(frames, crop="center")
        files = engine.classify(paths, crop="center", frames=True, logits=True)
    assert scores.probs.shape == (6, 8) and scores.labels.dtype == np.int32
    probs = np.stack([r.frame_rows.probs[0] for r in files])
    logits = np.stack([r.frame_rows.logits[0] for r in files])
    assert_same_scores(scores.probs, scores.logits, probs, logits)
    # The same label, unless the top two are closer than that rounding.
    top2 = np.sort(probs, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-5
    file_labels = np.array([r.frame_rows.label[0] for r in files])
    np.testing.assert_array_equal(scores.labels[clear], file_labels[clear])


def test_frames_of_different_sizes_and_one_video(tiny_weights, data):
    frames = real_frames(data, 5)
    mixed = [frames[0], frames[1][:200, :150], np.ascontiguousarray(frames[2][::2, ::2]),
             frames[3][50:, 30:], frames[4]]
    with fervid.Engine(tiny_weights, device="cpu", batch=2) as engine:
        one_by_one = engine.classify_frames(mixed, crop="full")
        video = engine.classify_frames(mixed, as_video=True, name="clip", crop="full", fps=25,
                                       logits=True)
        flipped = engine.classify_frames(frames[:, ::-1], crop="full")  # negative row strides
        copied = engine.classify_frames(np.ascontiguousarray(frames[:, ::-1]), crop="full")
    assert len(one_by_one) == 5
    assert video.path == "clip" and video.ok and video.frames == 5
    rows = video.frame_rows
    np.testing.assert_array_equal(rows.frame, np.arange(5))
    np.testing.assert_allclose(rows.time_s, np.arange(5) / 25)
    assert_same_scores(one_by_one.probs, one_by_one.logits, rows.probs, rows.logits)
    counts = np.bincount(rows.label, minlength=8)
    assert [video.votes[c] for c in engine.classes] == list(counts)
    # The card's vote is majority: the most frequent label, ties to the higher summed probability.
    sums = rows.probs.astype(np.float64).sum(axis=0)
    best = max(range(8), key=lambda c: (counts[c], sums[c], -c))
    assert video.label_index == best
    np.testing.assert_allclose([video.mean_probs[c] for c in engine.classes], sums / 5, rtol=1e-6)
    # Rows stored bottom-up (a negative stride) give what the same rows stored top-down give.
    np.testing.assert_array_equal(flipped.probs, copied.probs)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((2, 16, 16, 3), np.float32), "expected uint8 RGB of shape [H, W, 3] or [N, H, W, 3], got float32 [2, 16, 16, 3]"),
    (np.zeros((16, 16), np.uint8), "expected uint8 RGB of shape [H, W, 3] or [N, H, W, 3], got uint8 [16, 16]"),
    (np.zeros((2, 16, 16, 4), np.uint8), "frame 0: expected a uint8 RGB array of shape [H, W, 3], got uint8 [16, 16, 4]"),
    ([np.zeros((8, 8, 3), np.uint8), "not an array"], "frame 1: expected a uint8 RGB array of shape [H, W, 3], got str"),
    ([], "frames: none given"),
])
def test_wrong_arrays_raise_input_error(tiny_weights, bad, message):
    with fervid.Engine(tiny_weights, device="cpu") as engine:
        with pytest.raises(fervid.InputError) as e:
            engine.classify_frames(bad)
        assert message in str(e.value)
        assert isinstance(e.value, ValueError)  # InputError is also a ValueError


def test_pil_images_the_cards_crop_and_a_face_per_frame(tiny_weights, data):
    """A PIL image (any mode) goes in as its RGB pixels; without crop= the card's crop is used,
    as classify() and the CLI do; crop="haar" crops each frame to its own face (OpenCV's
    cascade; crop="face" is the CNN detector's, tests/detector_litert.py), and a frame without
    one gets the centre crop and says so in no_face."""
    photo = Image.open(data / "faces/astronaut.png")
    frames = real_frames(data, 2)
    blank = np.full((200, 300, 3), 128, np.uint8)  # no face in it
    with fervid.Engine(tiny_weights, device="cpu") as engine:
        as_pil = engine.classify_frames([photo.convert("RGBA"), Image.fromarray(frames[0])],
                                        crop="center")
        as_array = engine.classify_frames([np.asarray(photo.convert("RGB")), frames[0]],
                                          crop="center")
        np.testing.assert_array_equal(as_pil.probs, as_array.probs)
        # The tiny card's crop is the default: the same as naming it.
        card = engine.classify_frames(frames)
        named = engine.classify_frames(frames, crop=engine.card["crop"])
        np.testing.assert_array_equal(card.crops, named.crops)
        try:
            faces = engine.classify_frames([np.asarray(photo.convert("RGB")), blank], crop="haar")
        except fervid.OptionError as e:
            if "no face detector" in str(e):
                pytest.skip(str(e))
            raise
    assert faces.crops.shape == (2, 4) and faces.crops.dtype == np.int32
    assert list(faces.no_face) == [False, True]
    x, y, w, h = faces.crops[0]
    assert w == h and 0 < w < 512  # a square around the face, inside the 512 x 512 photo
    assert list(faces.crops[1]) == [50, 0, 200, 200]  # the centre square of the blank frame
