"""What fervid hands back: a VideoResult per input (with its FrameRows on request), the Results of a
run, the Progress of a run, and the FrameScores of frames classified one by one."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Sequence

import numpy as np


def _pandas():
    try:
        import pandas
    except ImportError as e:  # pragma: no cover - pandas is optional
        raise ImportError("to_pandas() needs pandas (pip install pandas); "
                          "to_dicts() and to_json() do without") from e
    return pandas


@dataclass(frozen=True)
class Progress:
    """How far a run is: videos done of all, frames classified, seconds since it began."""

    videos_done: int
    videos_total: int
    frames: int
    seconds: float

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class FrameRows:
    """The frames of one video that were classified, in order, as numpy arrays.

    frame: int64 [F], the frame's index in its source (before sampling); time_s: float64 [F], its
    presentation time (the stream's time stamps; index / fps for images and frames in memory);
    label: int32 [F], the class index; probs: float32 [F, C]; logits: float32 [F, C] or None;
    track: int32 [F] with crop "face", the track id of the face each frame's crop is around (0
    where the frame has none and the centre was used), else None; crop_angle: float32 [F] with
    crop "face", the degrees the crop was turned by so that the face's eyes lie level, else None.
    """

    frame: np.ndarray
    time_s: np.ndarray
    label: np.ndarray
    probs: np.ndarray
    logits: Optional[np.ndarray]
    classes: tuple
    track: Optional[np.ndarray] = None
    crop_angle: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def label_names(self) -> list:
        return [self.classes[i] for i in self.label]

    def to_dicts(self, video: Optional[str] = None) -> list:
        """One dict a frame: video, frame, time_s, (track, crop_angle,) label, p_<class>... (and
        logit_<class>...); track None where the frame had no face."""
        rows = []
        for i in range(len(self)):
            row = {"video": video, "frame": int(self.frame[i]), "time_s": float(self.time_s[i])}
            if self.track is not None:
                row["track"] = int(self.track[i]) or None
            if self.crop_angle is not None:
                row["crop_angle"] = float(self.crop_angle[i])
            row["label"] = self.classes[self.label[i]]
            row.update({f"p_{c}": float(p) for c, p in zip(self.classes, self.probs[i])})
            if self.logits is not None:
                row.update({f"logit_{c}": float(v) for c, v in zip(self.classes, self.logits[i])})
            rows.append(row)
        return rows

    def to_pandas(self, video: Optional[str] = None):
        """A DataFrame, one row a frame: video, frame, time_s, (track: Int64, <NA> where the
        frame had no face,) label, p_<class>..."""
        pd = _pandas()
        columns = {"video": [video] * len(self), "frame": self.frame, "time_s": self.time_s}
        if self.track is not None:
            columns["track"] = pd.array([int(t) or None for t in self.track], dtype="Int64")
        if self.crop_angle is not None:
            columns["crop_angle"] = self.crop_angle
        columns["label"] = pd.Categorical(self.label_names, categories=list(self.classes))
        for k, c in enumerate(self.classes):
            columns[f"p_{c}"] = self.probs[:, k]
        if self.logits is not None:
            for k, c in enumerate(self.classes):
                columns[f"logit_{c}"] = self.logits[:, k]
        return pd.DataFrame(columns)


def _status(path: str, error: str) -> str:
    """'ok', or 'error: <reason>' without the video's own path in front (as the CLI writes it)."""
    if not error:
        return "ok"
    reason = error[len(path) + 2:] if error.startswith(path + ": ") else error
    return "error: " + reason


@dataclass(frozen=True)
class VideoResult:
    """The result of one input: its label by the vote, the frames' votes and mean probabilities,
    or the reason it failed (status 'error: ...'), and its frames on request. With crop "face":
    face_tracks, how many face tracks its crops were cut around, and main_track, the one cut
    around on most frames (None where no face was found); both None with other crops."""

    index: int
    path: str
    frames: int
    label: Optional[str]
    label_index: Optional[int]
    vote: str
    votes: dict
    mean_probs: dict
    status: str
    error: Optional[str]
    warning: Optional[str]
    crop: Optional[tuple]
    frame_rows: Optional[FrameRows] = field(default=None, repr=False)
    main_track: Optional[int] = None
    face_tracks: Optional[int] = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def __repr__(self) -> str:
        """One line: the input, its label and share of the votes, or its error."""
        if not self.ok:
            return f"<VideoResult {self.path!r}: {self.status}>"
        share = self.mean_probs.get(self.label, 0.0)
        return (f"<VideoResult {self.path!r}: {self.label} (p {share:.3f}, "
                f"{self.votes.get(self.label, 0)}/{self.frames} frames)>")

    @staticmethod
    def _from_engine(index: int, d: dict, classes: Sequence[str]) -> "VideoResult":
        ok = not d["error"]
        rows = d["rows"]
        frame_rows = None
        if rows is not None:
            frame_rows = FrameRows(rows["frame"], rows["time_s"], rows["label"], rows["probs"],
                                   rows["logits"], tuple(classes), rows.get("track"),
                                   rows.get("crop_angle"))
        return VideoResult(
            index=index,
            path=d["path"],
            frames=d["frames"],
            label=classes[d["label"]] if ok else None,
            label_index=d["label"] if ok else None,
            vote=d["vote"],
            votes=dict(zip(classes, d["counts"])) if ok else {},
            mean_probs=dict(zip(classes, d["mean_probs"])) if ok else {},
            status=_status(d["path"], d["error"]),
            error=d["error"] or None,
            warning=d["warning"] or None,
            crop=tuple(d["crop"]) if ok else None,
            frame_rows=frame_rows,
            main_track=d.get("main_track"),
            face_tracks=d.get("face_tracks"))

    def to_dict(self) -> dict:
        """A JSON-ready dict (the frame rows, when kept, as a list of dicts under 'frame_rows')."""
        d = {"index": self.index, "video": self.path, "frames": self.frames, "label": self.label,
             "vote": self.vote, "votes": self.votes, "mean_probs": self.mean_probs,
             "status": self.status, "warning": self.warning,
             "crop": list(self.crop) if self.crop else None}
        if self.face_tracks is not None:
            d["main_track"] = self.main_track
            d["face_tracks"] = self.face_tracks
        if self.frame_rows is not None:
            d["frame_rows"] = self.frame_rows.to_dicts(self.path)
        return d


class Results(list):
    """The VideoResults of a run, in input order, with conversions to tables and JSON."""

    def __init__(self, results: Iterable[VideoResult] = (), classes: Sequence[str] = ()):
        super().__init__(results)
        self.classes = tuple(classes)

    def to_dicts(self) -> list:
        return [r.to_dict() for r in self]

    def __repr__(self) -> str:
        """A summary and the first few results, one line each (print(results) of a dataset)."""
        failed = sum(not r.ok for r in self)
        head = f"<Results: {len(self)} videos, {failed} failed"
        if not self:
            return head + ">"
        shown = [f"  {r!r}" for r in self[:8]]
        more = [f"  ... {len(self) - 8} more (.to_pandas() has them all)"] if len(self) > 8 else []
        return "\n".join([head] + shown + more) + ">"

    def _repr_html_(self) -> str:
        """Jupyter: the table of to_pandas() when pandas is there, else the text."""
        try:
            return self.to_pandas()._repr_html_()
        except Exception:  # no pandas: the plain text
            import html
            return "<pre>" + html.escape(repr(self)) + "</pre>"

    def to_json(self, lines: bool = True) -> str:
        """JSON Lines (one video a line), or one JSON array with lines=False."""
        if lines:
            return "".join(json.dumps(d) + "\n" for d in self.to_dicts())
        return json.dumps(self.to_dicts())

    def to_pandas(self):
        """A DataFrame, one row a video: video, frames, label, vote, count_<class>...,
        p_<class>..., (main_track, face_tracks with crop "face",) status, warning (the columns
        of the CLI's CSV)."""
        pd = _pandas()
        tracks = any(r.face_tracks is not None for r in self)
        records = []
        for r in self:
            row: dict[str, Any] = {"video": r.path, "frames": r.frames, "label": r.label,
                                   "vote": r.vote}
            for c in self.classes:
                row[f"count_{c}"] = r.votes.get(c)
            for c in self.classes:
                row[f"p_{c}"] = r.mean_probs.get(c)
            if tracks:
                row["main_track"] = r.main_track
                row["face_tracks"] = r.face_tracks
            row["status"] = r.status
            row["warning"] = r.warning
            records.append(row)
        columns = (["video", "frames", "label", "vote"] + [f"count_{c}" for c in self.classes] +
                   [f"p_{c}" for c in self.classes] +
                   (["main_track", "face_tracks"] if tracks else []) + ["status", "warning"])
        frame = pd.DataFrame.from_records(records, columns=columns)
        if tracks:
            frame["main_track"] = frame["main_track"].astype("Int64")
            frame["face_tracks"] = frame["face_tracks"].astype("Int64")
        return frame

    def frames_to_pandas(self):
        """A DataFrame, one row a frame of every video whose frames were kept (frames=True):
        video, frame, time_s, label, p_<class>... (and logit_<class>...)."""
        pd = _pandas()
        parts = [r.frame_rows.to_pandas(r.path) for r in self if r.frame_rows is not None]
        if not parts:
            raise ValueError("no frame rows: classify with frames=True")
        return pd.concat(parts, ignore_index=True)


@dataclass(frozen=True)
class FrameScores:
    """Frames classified one by one: labels int32 [N], probs float32 [N, C], logits float32
    [N, C], in the order the frames were given. A label is -1 (its name None) where the
    network's output is not a finite number (NaN or Inf): the weights or the card's
    preprocessing overflow float32 on that frame. crops int32 [N, 4]: the x, y, width, height
    classified in each frame; no_face bool [N]: crop="face" found no face there (the centre
    crop was used)."""

    labels: np.ndarray
    probs: np.ndarray
    logits: np.ndarray
    classes: tuple
    crops: Optional[np.ndarray] = None
    no_face: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def label_names(self) -> list:
        return [self.classes[i] if i >= 0 else None for i in self.labels]

    def to_pandas(self):
        """A DataFrame, one row a frame: frame, label, p_<class>..., logit_<class>..."""
        pd = _pandas()
        columns = {"frame": np.arange(len(self)),
                   "label": pd.Categorical(self.label_names, categories=list(self.classes))}
        for k, c in enumerate(self.classes):
            columns[f"p_{c}"] = self.probs[:, k]
        for k, c in enumerate(self.classes):
            columns[f"logit_{c}"] = self.logits[:, k]
        return pd.DataFrame(columns)


class Faces(list):
    """What fervid faces finds (docs/faces.md), one dict per input in input order: video, error
    ("" when read to its end), width, height, frames (sampled), rows (a dict per face per frame:
    frame, time_s, track (0: the frame has no face), box (x, y, w, h), score, keypoints (x, y
    pairs of the eyes, nose, mouth and ears; empty where the track coasted), label (-1: not
    classified), probs), tracks (a dict per track: track, first_frame, last_frame, first_s,
    last_s, frames, classified, label, counts, mean_probs) and main (the video's vote: the main
    track's, or over each frame's largest face with faces="largest"). classes: the classifier's
    classes (empty when the faces were only tracked)."""

    def __init__(self, videos: Iterable[dict] = (), classes: Sequence[str] = ()):
        super().__init__(videos)
        self.classes = tuple(classes)

    def _name(self, label: int):
        return self.classes[label] if 0 <= label < len(self.classes) else None

    def to_pandas(self):
        """A DataFrame, one row a face of a frame (and one a frame without a face, track 0):
        video, frame, time_s, track, x, y, w, h, score, label, p_<class>..., status (ok,
        predicted, no face, or the input's error)."""
        pd = _pandas()
        records = []
        for v in self:
            if v["error"]:
                records.append({"video": v["video"], "status": "error: " + v["error"]})
            for r in v["rows"]:
                row: dict[str, Any] = {"video": v["video"], "frame": r["frame"],
                                       "time_s": r["time_s"], "track": r["track"]}
                if r["track"]:
                    row.update(zip("xywh", r["box"]))
                    row["score"] = r["score"]
                    row["label"] = self._name(r["label"])
                    for c, p in zip(self.classes, r["probs"]):
                        row[f"p_{c}"] = p
                row["status"] = ("no face" if not r["track"] else
                                 "ok" if r["keypoints"] else "predicted")
                records.append(row)
        columns = (["video", "frame", "time_s", "track", "x", "y", "w", "h", "score", "label"] +
                   [f"p_{c}" for c in self.classes] + ["status"])
        table = pd.DataFrame.from_records(records, columns=columns)
        return table.astype({"frame": "Int64", "track": "Int64"})  # empty on an error row

    def tracks_to_pandas(self):
        """A DataFrame, one row a track, then each video's own row (track None, main_track set):
        video, track, main_track, first_frame, last_frame, first_s, last_s, frames, classified,
        label, count_<class>..., p_<class>... (the columns of fervid faces --tracks)."""
        pd = _pandas()
        records = []
        for v in self:
            votes = [(t, False) for t in v["tracks"]] + ([(v["main"], True)] if v["tracks"] else [])
            for t, video in votes:
                row: dict[str, Any] = {"video": v["video"],
                                       "track": None if video else t["track"],
                                       "main_track": t["track"] if video else None}
                for k in ("first_frame", "last_frame", "first_s", "last_s", "frames",
                          "classified"):
                    row[k] = t[k]
                row["label"] = self._name(t["label"])
                for c, n in zip(self.classes, t["counts"]):
                    row[f"count_{c}"] = n
                for c, p in zip(self.classes, t["mean_probs"]):
                    row[f"p_{c}"] = p
                records.append(row)
        columns = (["video", "track", "main_track", "first_frame", "last_frame", "first_s",
                    "last_s", "frames", "classified", "label"] +
                   [f"count_{c}" for c in self.classes] + [f"p_{c}" for c in self.classes])
        table = pd.DataFrame.from_records(records, columns=columns)
        return table.astype({"track": "Int64", "main_track": "Int64"})  # one of them empty
