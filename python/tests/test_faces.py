"""fervid.faces() and Engine.faces(): `fervid faces` from Python (docs/faces.md). Skipped, with
the reason, where no face detector's weights are at hand (tools/setup.sh converts them into
~/.cache/fervid/; FERVID_DETECTOR names another)."""

import numpy as np
import pytest

import fervid


def test_tracks_the_face_of_a_photo_and_keeps_a_bad_input_as_its_error(detector, data, tmp_path):
    found = fervid.faces([data / "faces/astronaut.png", tmp_path / "missing.mp4"],
                         detector=detector)
    assert len(found) == 2 and found.classes == ()
    photo, missing = found
    assert photo["error"] == "" and photo["frames"] == 1
    (row,) = photo["rows"]
    x, y, w, h = row["box"]
    # The astronaut's face: about 130-330 x 60-260 in the 512 x 512 picture.
    assert row["track"] == 1 and 100 < x < 220 and 30 < y < 150 and 80 < w < 200
    assert len(row["keypoints"]) == 12 and row["label"] == -1
    assert "missing.mp4" in missing["error"] and missing["rows"] == []
    table = found.to_pandas()
    assert list(table["track"][:1]) == [1] and table["status"].iloc[-1].startswith("error:")


def test_engine_classifies_each_face_and_votes_per_track(detector, data, tiny_weights):
    clip = data / "video/astronaut-720p.mp4"
    full = detector.with_name("blazeface-full-range.safetensors")
    if not full.is_file():
        pytest.skip(f"no full-range detector at {full} (tools/setup.sh writes it)")
    with fervid.Engine(tiny_weights, device="cpu") as engine:
        (video,) = engine.faces(clip, detector=full, max_frames=6)
        classes = engine.classes
    faces = [r for r in video["rows"] if r["track"]]
    assert faces, "the full-range model finds the 720p clip's face (docs/faces.md)"
    for r in faces:
        assert abs(sum(r["probs"]) - 1) < 1e-4 and r["label"] == int(np.argmax(r["probs"]))
    for t in video["tracks"]:
        mine = [r for r in faces if r["track"] == t["track"]]
        assert t["classified"] == len(mine) == sum(t["counts"])
        assert t["counts"] == [sum(r["label"] == k for r in mine) for k in range(len(classes))]
    main = max(video["tracks"], key=lambda t: (t["classified"], -t["track"]))
    assert video["main"]["track"] == main["track"] and video["main"]["label"] == main["label"]
    rows = fervid.Faces([video], classes).tracks_to_pandas()
    assert rows["main_track"].iloc[-1] == main["track"]
    assert rows["label"].iloc[-1] == classes[main["label"]]


def test_face_options_are_checked_in_python_words(detector, data, tiny_weights):
    with fervid.Engine(tiny_weights, device="cpu") as engine:
        with pytest.raises(fervid.OptionError, match="faces=some"):
            engine.faces(data / "faces/astronaut.png", detector=detector, faces="some")
    with pytest.raises(fervid.OptionError, match="no face detector at"):
        fervid.faces(data / "faces/astronaut.png", detector=data / "no-such-detector")


def test_classify_with_the_face_crop_names_each_frames_track(detector, data, tiny_weights):
    # A RAVDESS actor (the short-range model finds her on every frame) and the street scene (no
    # face it finds): the frames' track ids and the videos' main tracks, or none.
    clips = [data / "ravdess/modified/01-01-08-02-01-01-19.mp4", data / "video/vtest.avi"]
    if not clips[0].is_file():
        pytest.skip(f"no RAVDESS clip at {clips[0]}")
    with fervid.Engine(tiny_weights, device="cpu") as engine:
        actor, street = engine.classify(clips, crop=f"face={detector}", frames=True, max_frames=6)
        (centred,) = engine.classify(clips[:1], crop="center", frames=True, max_frames=2)
    assert actor.ok and actor.main_track == 1 and actor.face_tracks == 1
    assert list(actor.frame_rows.track) == [1] * 6
    assert street.ok and street.main_track is None and street.face_tracks == 0
    assert list(street.frame_rows.track) == [0] * 6
    # Each face crop turned by the actor's eye line (a few degrees, not all 0); the centre 0.
    angles = actor.frame_rows.crop_angle
    assert angles is not None and np.all(np.abs(angles) < 45) and np.any(angles != 0), angles
    assert list(street.frame_rows.crop_angle) == [0] * 6
    frames = fervid.Results([actor, street], engine.classes).frames_to_pandas()
    assert frames["track"].tolist()[:6] == [1] * 6 and frames["track"].isna().sum() == 6
    assert frames["crop_angle"].tolist()[:6] == list(angles)
    videos = fervid.Results([actor, street], engine.classes).to_pandas()
    assert videos["main_track"].tolist()[0] == 1 and videos["main_track"].isna().tolist()[1]
    assert centred.main_track is None and centred.frame_rows.track is None
    assert centred.frame_rows.crop_angle is None
    assert "main_track" not in fervid.Results([centred], engine.classes).to_pandas()


def test_faces_are_scored_by_each_videos_main_track(detector, data, tiny_weights, tmp_path):
    """fervid.score on Engine.faces: each video's label is its main track's vote (as `fervid
    faces --labels` scores), a video without a classified face counts as failed."""
    clip = data / "ravdess/modified/01-01-08-02-01-01-19.mp4"
    if not clip.is_file():
        pytest.skip(f"no RAVDESS clip at {clip}")
    street = data / "video/vtest.avi"
    with fervid.Engine(tiny_weights, device="cpu") as engine:
        found = engine.faces([clip, street], detector=detector, max_frames=6)
    classes = list(found.classes)
    main = found[0]["main"]
    truth = {str(clip): "surprised", str(street): "calm"}
    m = fervid.score(found, truth, confusion_png=tmp_path / "c.png")
    # The street scene has no face classified: a failed video, as eval counts one.
    assert m["videos"] == 1 and m["videos_failed"] == 1, m
    assert m["confusion"][classes.index("surprised")][main["label"]] == 1
    assert m["frames"] == sum(main["counts"])
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(fervid.OptionError, match="only tracked"):
        fervid.score(fervid.faces([clip], detector=detector, max_frames=2), truth)
