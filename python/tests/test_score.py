"""fervid.score(): the metrics of `fervid eval` from Python results, equal to the CLI's summary on
the same clips and weights; labels from RAVDESS names, a CSV or a dict; the confusion PNG."""

import json

import pytest

import fervid

from conftest import run_cli


def test_score_equals_the_clis_eval_summary(cli, tiny_weights, dataset, tmp_path):
    run_cli(cli, "eval", dataset, "--weights", tiny_weights, "--device", "cpu", "--max-frames", 12,
            "--summary", tmp_path / "summary.json", "--quiet")
    want = json.load(open(tmp_path / "summary.json"))
    with fervid.Engine(tiny_weights, device="cpu") as engine:
        results = engine.classify(dataset, max_frames=12)
    got = fervid.score(results, confusion_png=tmp_path / "confusion.png")
    for key in ("videos", "videos_correct", "frames", "frames_correct", "frame_accuracy",
                "video_accuracy", "macro_f1", "per_class", "confusion", "frame_confusion",
                "per_actor"):
        assert got[key] == want[key], key
    assert got["videos"] == 3 and {a["actor"] for a in got["per_actor"]} == {1, 19}
    assert (tmp_path / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The same truths as a dict and as a CSV.
    truth = {r.path: {"07": "disgust", "08": "surprised", "03": "happy"}[
        r.path.rsplit("/", 1)[1].split("-")[2]] for r in results}
    by_dict = fervid.score(results, truth)
    csv = tmp_path / "labels.csv"
    csv.write_text("path,label\n" + "".join(f"{p},{l}\n" for p, l in truth.items()))
    by_csv = fervid.score(results, csv)
    for key in ("videos_correct", "frames_correct", "confusion", "frame_confusion"):
        assert by_dict[key] == by_csv[key] == want[key], key


def test_score_refuses_labels_it_cannot_use(tiny_weights, dataset):
    with fervid.Engine(tiny_weights, device="cpu") as engine:
        results = engine.classify(dataset, max_frames=2)
    with pytest.raises(fervid.OptionError, match="label 'joy' is not a class of the model"):
        fervid.score(results, {results[0].path: "joy"})
    with pytest.raises(fervid.OptionError, match="do not label 2 of the results"):
        fervid.score(results, {results[0].path: "happy"})
