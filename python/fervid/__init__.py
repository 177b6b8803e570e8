"""fervid: facial emotion recognition in video, from Python.

A fine-tuned VGG16 classifies every sampled frame and a vote per video gives the video's label,
in fervid's C++ engine (CPU, or CUDA when a GPU is there)::

    import fervid

    with fervid.Engine("model.safetensors") as engine:
        results = engine.classify("clips/", stride=2, frames=True)
        videos = results.to_pandas()          # one row a video
        frames = results.frames_to_pandas()   # one row a frame: video, frame, time_s, label, p_...

Load the weights once into an Engine and reuse it; iter_classify() yields each video's result as
soon as it is final; classify_frames() takes frames already in memory (numpy RGB arrays);
score() computes `fervid eval`'s metrics; faces() and Engine.faces() find, track and classify
every face (docs/faces.md). Errors raise fervid.Error subclasses with the CLI's one-line
messages; a bad input file is a result with its error, and the run goes on.
"""

from __future__ import annotations

import glob
import json
import os
import warnings
from typing import Callable, Iterable, Iterator, Optional, Union

import numpy as np

from ._errors import (DeviceError, Error, InputError, Notice, OptionError, UntrainedWeights,
                      WeightsError)
from . import _fervid
from .results import Faces, FrameRows, FrameScores, Progress, Results, VideoResult

__all__ = ["Engine", "VideoResult", "FrameRows", "Results", "FrameScores", "Progress", "score",
           "faces", "Faces", "calibrate",
           "Error", "WeightsError", "InputError", "OptionError", "DeviceError", "Notice",
           "UntrainedWeights",
           "__version__", "cuda_built"]

__version__, _cuda = _fervid.build_info()

PathLike = Union[str, "os.PathLike[str]"]
Inputs = Union[PathLike, Iterable[PathLike]]


def cuda_built() -> bool:
    """Whether this build of fervid has the CUDA backend."""
    return _cuda


def _notice(line: str) -> None:
    warnings.warn(line, Notice, stacklevel=3)


def _paths(inputs: Inputs) -> list:
    """Paths as strings, glob patterns expanded (a pattern that matches nothing stays as it is,
    so that its result says so)."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    out = []
    for p in inputs:
        p = os.fspath(p)
        if glob.has_magic(p):
            matches = sorted(glob.glob(p, recursive=True))
            out.extend(matches if matches else [p])
        else:
            out.append(p)
    return out


def _as_rgb(frame):
    """A PIL image (any mode) as a uint8 RGB array; anything else as it is."""
    if hasattr(frame, "convert") and hasattr(frame, "mode") and hasattr(frame, "size"):
        return np.asarray(frame.convert("RGB"))
    return frame


def _frames(frames) -> list:
    """A list of [H, W, 3] uint8 arrays from one frame (an array or a PIL image), an
    [N, H, W, 3] array or a list of them."""
    frames = _as_rgb(frames)
    if isinstance(frames, np.ndarray):
        arrays = [frames] if frames.ndim == 3 else list(frames) if frames.ndim == 4 else None
        if arrays is None or frames.dtype != np.uint8:
            raise InputError(f"frames: expected uint8 RGB of shape [H, W, 3] or [N, H, W, 3], "
                             f"got {frames.dtype} {list(frames.shape)}")
    else:
        arrays = [_as_rgb(f) for f in frames]
    if not arrays:
        raise InputError("frames: none given")
    out = []
    for i, a in enumerate(arrays):
        if not isinstance(a, np.ndarray) or a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
            what = f"{a.dtype} {list(a.shape)}" if isinstance(a, np.ndarray) else type(a).__name__
            raise InputError(f"frame {i}: expected a uint8 RGB array of shape [H, W, 3], got {what}")
        if a.strides[2] != 1 or a.strides[1] != 3 or a.strides[0] < 3 * a.shape[1]:
            a = np.ascontiguousarray(a)  # packed pixels, rows top-down
        out.append(a)
    return out


class Engine:
    """The engine: weights loaded once onto a backend, then as many runs as you like.

    weights: a safetensors file (tools/export_weights.py makes one from PyTorch, Keras or ONNX);
    card: a built-in card (ravdess-vgg16, torchvision-vgg16) or a JSON card file that overrides
    the one in the file's metadata; device: auto | cpu | cuda; precision: fp32 | tf32 | fp16 |
    bf16 | int8 (the CPU, with weights `fervid calibrate` wrote; None: the backend's default); batch: the most frames per batch; threads: CPU threads
    (0: all cores); conv_impl: auto | cudnn | fervid (CUDA) | onednn | winograd | blas (CPU); cuda_graphs:
    replay the frame stage as CUDA graphs; explain: keep the head's weights on the host so that
    gradcam() can run (the flatten head's are ~480 MiB). Notices (the CPU when there is no GPU, and why) are
    warnings of category fervid.Notice.
    """

    def __init__(self, weights: PathLike, *, card: Optional[str] = None, device: str = "auto",
                 precision: Optional[str] = None, batch: int = 8, threads: int = 0,
                 conv_impl: str = "auto", cuda_graphs: bool = True, explain: bool = False):
        self._engine = _fervid.Engine(os.fspath(weights), card or "", device, precision or "",
                                      threads, conv_impl, cuda_graphs, batch, _notice, explain)
        self._info = self._engine.info()
        if self._info["untrained"]:
            warnings.warn(f"{os.fspath(weights)} holds untrained weights (fervid make-weights): "
                          "its labels mean nothing", UntrainedWeights, stacklevel=2)

    # -- what it is
    @property
    def model(self) -> str:
        return self._info["model"]

    @property
    def classes(self) -> tuple:
        return tuple(self._info["classes"])

    @property
    def untrained(self) -> bool:
        """Whether the weights are untrained ones from `fervid make-weights`."""
        return self._info["untrained"]

    @property
    def device(self) -> str:
        """The backend: 'cpu' or 'cuda'."""
        return self._info["backend"]

    @property
    def device_name(self) -> str:
        return self._info["device_name"]

    @property
    def precision(self) -> str:
        return self._info["precision"]

    @property
    def batch(self) -> int:
        return self._info["batch"]

    @property
    def card(self) -> dict:
        """The model card's essentials: model, classes, input_size, head, crop and vote."""
        return {k: self._info[k] for k in ("model", "classes", "input_size", "head", "crop", "vote")}

    def __repr__(self) -> str:
        return (f"<fervid.Engine model={self.model} device={self.device} ({self.device_name}) "
                f"precision={self.precision} batch={self.batch}>")

    # -- runs
    def iter_classify(self, inputs: Inputs, *, stride: int = 1, max_frames: int = 0,
                      crop: Optional[str] = None, vote: Optional[str] = None,
                      frames: bool = False, logits: bool = False, fps: float = 1.0,
                      batch: Optional[int] = None, decoder: str = "auto",
                      decode_threads: int = 0, stage_streams: bool = True,
                      progress: Optional[Callable[[Progress], None]] = None
                      ) -> Iterator[VideoResult]:
        """Yields each input's VideoResult as soon as it is final, in input order.

        inputs: video files, image folders (one video), images, folders to walk, glob patterns.
        stride: keep every Nth frame; max_frames: at most this many per video (0: all); crop:
        full | center | box=x,y,w,h | face[=DETECTOR] (each frame's largest tracked face, turned so
        that its eyes lie level) | haar (OpenCV's cascade, one box per video) | boxes=FILE (None:
        the card's); vote:
        majority | confidence (None: the card's); frames: keep each video's per-frame rows (FrameRows),
        logits too with logits=True; fps: the frame rate of image folders (their time_s);
        progress: called with a Progress after each result. Memory stays bounded: results wait
        in a short queue until taken. Stop early by leaving the loop (or close()).
        """
        options = {"batch": batch or self.batch, "stride": stride, "max_frames": max_frames,
                   "fps": fps, "crop": crop, "vote": vote, "frames": frames, "logits": logits,
                   "decoder": decoder, "decode_threads": decode_threads,
                   "stage_streams": stage_streams}
        yield from self._stream(_paths(inputs), options, progress)

    def watch(self, sources: Union[str, Iterable[str]], *, window: Union[float, str] = 2.0,
              hop: float = 1.0, frames: bool = False, crop: Optional[str] = None,
              vote: Optional[str] = None, stall: float = 10.0, give_up: float = 60.0,
              source_options: Optional[dict] = None,
              source_format: Optional[str] = None) -> Iterator[dict]:
        """Live sources (`fervid live`, docs/live.md), classified as their frames arrive: yields
        each event as the dict of its JSON line ("event": start | frame | window | lost | back |
        end, "source", "wall_s", ...), until every source has ended.

        sources: stream URLs (rtsp://, udp://, http://, srt://...), "-" (standard input), FIFOs;
        window: the vote's window, seconds (2.0, "2s", "1500ms") or frames ("50f"); hop:
        seconds between window events; frames: a "frame" event per classified frame too; crop:
        full | center | box=x,y,w,h | face (None: the card's); vote: majority | confidence
        (None: the card's); stall: seconds without data before a source is lost; give_up:
        seconds a lost network source is retried (0: forever); source_options: FFmpeg's options
        for opening the sources ({"rtsp_transport": "tcp"}); source_format: FFmpeg's input
        format (its -f: "v4l2" for a camera, the default for /dev/video*). Leaving the loop (or Ctrl-C) stops
        the sources.
        """
        seconds, count = _window(window)
        options = {"window_s": seconds, "window_frames": count, "hop": float(hop),
                   "frames": bool(frames), "crop": crop, "vote": vote, "stall": float(stall),
                   "give_up": float(give_up), "source_options": dict(source_options or {}),
                   "source_format": source_format}
        names = [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)
        stream = self._engine.watch([os.fspath(s) for s in names], options)
        try:
            while True:
                try:
                    line = stream.__next__()
                except StopIteration:
                    return
                yield json.loads(line)
        finally:
            stream.close()

    def classify(self, inputs: Inputs, **options) -> Results:
        """Every input's VideoResult, in input order (iter_classify's options)."""
        return Results(self.iter_classify(inputs, **options), self.classes)

    def classify_frames(self, frames, *, as_video: bool = False, name: str = "frames",
                        crop: Optional[str] = None, fps: float = 1.0, vote: Optional[str] = None,
                        logits: bool = False) -> Union[FrameScores, VideoResult]:
        """Frames already in memory: a uint8 RGB array [N, H, W, 3] (or [H, W, 3]), a PIL image,
        or a list of [H, W, 3] arrays or PIL images of any sizes (e.g. decoded by OpenCV,
        converted BGR -> RGB, or PyAV).

        Each frame on its own (as_video=False): FrameScores (labels, probs, logits arrays). As
        one video (as_video=True): its VideoResult, voted like a video file's, with its frame rows
        (time_s = index / fps). crop: full | center | box=x,y,w,h | face | haar (None: the card's,
        as classify() and the CLI); each frame on its own with face or haar: that frame's face.
        """
        arrays = _frames(frames)
        if not as_video:
            d = self._engine.classify_frames(arrays, crop or "")
            return FrameScores(d["labels"], d["probs"], d["logits"], self.classes, d["crops"],
                               d["no_face"])
        options = {"batch": self.batch, "stride": 1, "max_frames": 0, "fps": fps, "crop": crop,
                   "vote": vote, "frames": True, "logits": logits, "decoder": "cpu",
                   "decode_threads": 1, "stage_streams": True}
        return list(self._stream([(name, arrays)], options, None))[0]

    def network_inputs(self, path: PathLike, *, stride: int = 1, max_frames: int = 0,
                       crop: Optional[str] = None) -> dict:
        """What the network reads for one video's (or image's) sampled frames, as a classify or
        eval run on the CPU gives it: decoded by fervid, cut by crop (full | center |
        box=x,y,w,h | face: the largest face tracked as --crop face tracks it; None: the
        card's), resized and normalised by the card. A dict of numpy arrays: "inputs" float32
        [N, S, S, 3] (NHWC; torch wants .permute(0, 3, 1, 2)), "index" and "time_s" of each
        frame, "crops" [N, 4] (x, y, w, h) and "no_face". For training on exactly the pixels
        fervid classifies (docs/study.md); the engine must compute in fp32."""
        return self._engine.network_inputs(os.fspath(path), stride, max_frames, crop or "")

    def faces(self, inputs: Inputs, *, detector: Optional[PathLike] = None, stride: int = 1,
              max_frames: int = 0, faces: str = "all", margin: Optional[float] = None,
              vote: Optional[str] = None) -> Faces:
        """Every face of every sampled frame of the inputs, tracked (`fervid faces`), each face
        classified by this engine on its own crop (turned so that the eyes lie level) and a
        vote per track and per video (docs/faces.md). faces: "all", or "largest" (only each
        frame's largest face is classified; the video's vote is over those); margin: of the
        crop on each side, a share of the face's size (None: the card's face_margin); vote:
        majority | confidence (None: the card's); detector: the face detector's weights (None: FERVID_DETECTOR, else the one
        tools/setup.sh writes to ~/.cache/fervid/)."""
        videos = self._engine.faces(_paths(inputs),
                                    _face_options(detector, stride, max_frames, faces, margin,
                                                  vote))
        return Faces(videos, self.classes)

    def gradcam(self, frames, *, crop: str = "full", classes=None) -> dict:
        """Grad-CAM at the last conv layer (docs/explain.md) of frames in memory (classify_frames'
        forms), for an engine made with explain=True. classes: one class (name or index) for
        every frame, one per frame, or None (each frame's top class). Returns a dict: maps
        (float32 [N, S, S] over each crop, in [0, 1]), classes (int32 [N], the classes
        explained) and probs (float32 [N, classes]).
        """
        arrays = _frames(frames)
        if classes is None or isinstance(classes, (str, int)):
            classes = [classes] * len(arrays)
        idx = []
        for c in classes:
            if c is None:
                idx.append(-1)
            elif isinstance(c, str):
                if c not in self.classes:
                    raise OptionError(f"gradcam: '{c}' is not a class of the model {self.classes}")
                idx.append(self.classes.index(c))
            else:
                idx.append(int(c))
        return self._engine.gradcam(arrays, crop, idx)

    def _stream(self, inputs: list, options: dict, progress) -> Iterator[VideoResult]:
        stream = self._engine.run(inputs, options, 16)
        classes = self.classes
        index = 0
        try:
            while True:
                try:
                    item = stream.__next__()
                except StopIteration:
                    return
                if item[0] == "notice":
                    _notice(item[1])
                    continue
                result = VideoResult._from_engine(index, item[1], classes)
                index += 1
                if progress is not None:
                    progress(Progress(*item[2]))
                yield result
        finally:
            stream.close()

    # -- lifetime
    def close(self) -> None:
        """Frees the engine (its weights and device memory); it cannot be used after."""
        self._engine.close()

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _face_options(detector, stride, max_frames, faces, margin, vote) -> dict:
    return {"detector": os.fspath(detector) if detector is not None else "", "stride": stride,
            "max_frames": max_frames, "faces": faces, "margin": margin, "vote": vote or ""}


def _window(window) -> tuple:
    """watch()'s window as (seconds, frames): a number or "2s" / "1500ms" is seconds, "50f"
    frames."""
    if isinstance(window, (int, float)) and not isinstance(window, bool):
        return float(window), 0
    text = str(window).strip()
    try:
        if text.endswith("ms"):
            return float(text[:-2]) / 1000, 0
        if text.endswith("f"):
            return 0.0, int(text[:-1])
        return float(text[:-1] if text.endswith("s") else text), 0
    except ValueError:
        raise OptionError(f"window={window!r}: expected seconds (2.0, '2s', '1500ms') or frames "
                          "('50f')") from None


def faces(inputs: Inputs, *, detector: Optional[PathLike] = None, stride: int = 1,
          max_frames: int = 0) -> Faces:
    """Every face of every sampled frame of the inputs, with its track id (`fervid faces`
    without --weights; Engine.faces also classifies them). detector: as in Engine.faces."""
    return Faces(_fervid.faces(_paths(inputs),
                               _face_options(detector, stride, max_frames, "all", None, None)))


def calibrate(inputs: Inputs, weights: PathLike, out: PathLike, *, frames: int = 256,
              stride: int = 1, crop: Optional[str] = None, card: Optional[str] = None,
              threads: int = 0) -> dict:
    """`fervid calibrate` (docs/int8.md): the network of `weights` run in fp32 on the CPU over at
    most `frames` sampled frames of the inputs (each input in turn takes its share of what is
    left), cut by crop (None: the card's); each conv layer's input scale written into the card of
    a copy of the weights at `out` (the tensors byte for byte), for Engine(out,
    precision="int8"). Returns {"scales": {layer: scale}, "frames": n, "skipped": ["path:
    reason", ...]}: an input that cannot be read is skipped and named there."""
    return _fervid.calibrate(_paths(inputs), os.fspath(weights), os.fspath(out),
                             {"frames": frames, "stride": stride, "crop": crop or "",
                              "card": card or "", "threads": threads})


def score(results: Iterable[VideoResult], labels=None, *, classes: Optional[Iterable[str]] = None,
          confusion_png: Optional[PathLike] = None, title: Optional[str] = None) -> dict:
    """`fervid eval`'s metrics (docs/metrics.md) of results against their true labels.

    results: VideoResults (classify), or the Faces of Engine.faces (each video's label is its
    main track's vote, as `fervid faces --labels` scores; a video without a classified face
    counts as failed). labels: None (RAVDESS file names, as `fervid eval`), a labels CSV path
    (path,label rows), or a dict {path: class}. Returns the --summary dict: frame and video
    accuracy, per-class precision/recall/F1, macro-F1, per-actor accuracy, 'confusion'
    [true][predicted] and 'frame_confusion'. confusion_png: also draw the confusion matrix as a
    PNG heat map.
    """
    if isinstance(results, Faces):
        if not results.classes:
            raise OptionError("these faces were only tracked (no engine classified them): "
                              "nothing to score")
        results = [_face_result(v, results.classes) for v in results]
        classes = classes or None
    if classes is None:
        classes = getattr(results, "classes", None) or None
    results = list(results)
    if not classes:
        classes = _classes_of(results)
    classes = list(classes)
    paths = [r.path for r in results]
    if isinstance(labels, dict):
        truth = {}
        for path, label in labels.items():
            if label not in classes:
                raise OptionError(f"{path}: label '{label}' is not a class of the model "
                                  f"({', '.join(classes)})")
            truth[os.fspath(path)] = (classes.index(label), 0)
        missing = [p for p in paths if p not in truth]
        if missing:
            raise OptionError(f"labels do not label {len(missing)} of the results: "
                              f"{', '.join(missing[:5])}")
    else:
        labelled = _fervid.label_paths(paths, classes, os.fspath(labels) if labels else "")
        truth = {p: (t, a) for p, t, a in labelled}
    rows = []
    for r in results:
        if r.path not in truth:  # an audio-only RAVDESS clip, as eval leaves out
            continue
        t, actor = truth[r.path]
        counts = [r.votes.get(c, 0) for c in classes] if r.ok else []
        rows.append((r.path, t, r.label_index if r.ok else -1, actor, counts, r.error or ""))
    summary = _fervid.score(rows, classes, os.fspath(confusion_png) if confusion_png else "",
                            title or "")
    return json.loads(summary)


def _face_result(video: dict, classes) -> VideoResult:
    """A faces video as the VideoResult its score reads: the main track's vote and counts."""
    main = video.get("main") or {}
    label = main.get("label", -1)
    error = video["error"] or (None if label >= 0 else "no face classified")
    return VideoResult(index=0, path=video["video"], frames=video["frames"],
                       label=None if error else classes[label],
                       label_index=None if error else label, vote="",
                       votes=dict(zip(classes, main.get("counts") or [])),
                       mean_probs=dict(zip(classes, main.get("mean_probs") or [])),
                       status="ok" if not error else "error: " + error, error=error,
                       warning=None, crop=None)


def _classes_of(results: list) -> list:
    for r in results:
        if r.frame_rows is not None:
            return list(r.frame_rows.classes)
        if r.votes:
            return list(r.votes)
    raise OptionError("score: give classes= (no result says which classes the model has)")
