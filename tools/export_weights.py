#!/usr/bin/python3
"""Export a fine-tuned VGG from PyTorch, Keras or ONNX to the safetensors file fervid loads.

    tools/export_weights.py SOURCE OUT.safetensors [--classes a,b,...|ravdess] [--preprocess P]
                            [--resize N] [--dtype f32|f16|bf16] [--name NAME] [--vote V] [--crop C]

SOURCE by extension (or --format):
  .pt .pth .bin .ckpt   PyTorch: a state_dict, a checkpoint dict holding one ("state_dict",
                        "model_state_dict", "model") or a whole pickled model of torchvision's
                        VGG layout (vgg11..vgg19, with or without batch norm: BatchNorm layers
                        are folded into the convolutions), any classifier widths.
  .keras                Keras 3 (a zip of config.json and model.weights.h5).
  .h5 .hdf5             Keras legacy HDF5 (Keras 2 or 3): model_config + model_weights.
  .onnx                 ONNX, e.g. from torch.onnx.export of such a model.
The model: 3x3 same-padded ReLU convolutions and 2x2 max-pools, then either a global average
pool or a flatten (of the 7x7 map at 224x224 input), then dense layers (ReLU between them). The
layout is read from the tensors and the graph, never assumed; a layer that does not fit is named
in a one-line error, and nothing is written. Keras kernels are transposed (HWIO -> OIHW, Dense
[in,out] -> [out,in]) and after a Flatten the first Dense layer's rows are permuted from Keras's
HWC order to torchvision's CHW order.

The classes, in the order of the model's outputs, come from the source when it names them (a
PyTorch checkpoint's "classes", "class_to_idx" as torchvision's ImageFolder makes it, or
"idx_to_class") or from --classes; `--classes ravdess` takes RAVDESS's order. A source that does
not name them and no --classes is refused: guessing an order mislabels every video.

The output follows fervid's rules for outputs (fervid/output_file.h): a new or regular file is
written to OUT.part and renamed when done; a symlink is written through to its target; a pipe or
a device is streamed to; a folder, a missing folder, or the source itself is refused first.
Readers: torch (python3-torch), h5py (python3-h5py), onnx (python3-onnx); weights/README.md.
"""
import argparse
import datetime
import json
import os
import re
import struct
import sys
import zipfile

import numpy as np

EXPORTER = "fervid tools/export_weights.py 1"
PRESETS = ("study", "torchvision", "caffe")
RAVDESS = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
CLASS_KEYS = ("classes", "class_to_idx", "idx_to_class")


class ExportError(Exception):
    pass


class Model:
    """A VGG in fervid's terms: convs (OIHW, bias) with a pool flag each, a head, dense layers."""

    def __init__(self, framework):
        self.framework = framework
        self.convs = []  # [weight OIHW, bias, pool_after]
        self.head = None  # "gap" | "flatten"
        self.dense = []  # [weight [out,in], bias]
        self.flatten_hwc = False  # the first dense layer's columns are in HWC order (Keras)
        self.final_activation = None
        self.input_size = 224
        self.classes = None  # the names the source gives its outputs, in order, if any

    def add_conv(self, w, b, where):
        w = np.asarray(w, np.float32)
        if w.ndim != 4 or w.shape[2:] != (3, 3):
            raise ExportError(f"{where}: a {tuple(w.shape)} convolution; fervid runs 3x3 only")
        if self.convs and self.convs[-1][0].shape[0] != w.shape[1]:
            raise ExportError(f"{where}: takes {w.shape[1]} channels, the layer before gives "
                              f"{self.convs[-1][0].shape[0]}")
        if not self.convs and w.shape[1] != 3:
            raise ExportError(f"{where}: the first convolution must take 3 (RGB) channels, "
                              f"not {w.shape[1]}")
        b = np.zeros(w.shape[0], np.float32) if b is None else np.asarray(b, np.float32)
        self.convs.append([w, b.reshape(-1), False])

    def add_pool(self, where):
        if not self.convs or self.convs[-1][2]:
            raise ExportError(f"{where}: a max-pool that does not follow a convolution")
        self.convs[-1][2] = True

    def add_dense(self, w, b, where):
        w = np.asarray(w, np.float32)
        if w.ndim != 2:
            raise ExportError(f"{where}: a dense weight of shape {tuple(w.shape)}")
        if self.dense and self.dense[-1][0].shape[0] != w.shape[1]:
            raise ExportError(f"{where}: takes {w.shape[1]} inputs, the layer before gives "
                              f"{self.dense[-1][0].shape[0]}")
        b = np.zeros(w.shape[0], np.float32) if b is None else np.asarray(b, np.float32)
        self.dense.append([w, b.reshape(-1)])

    def fold_batchnorm(self, gamma, beta, mean, var, eps, where):
        if not self.convs:
            raise ExportError(f"{where}: batch norm before any convolution")
        w, b, pool = self.convs[-1]
        if pool:
            raise ExportError(f"{where}: batch norm after a pool")
        scale = np.asarray(gamma, np.float64) / np.sqrt(np.asarray(var, np.float64) + eps)
        self.convs[-1][0] = (w * scale[:, None, None, None]).astype(np.float32)
        self.convs[-1][1] = ((b - np.asarray(mean, np.float64)) * scale +
                             np.asarray(beta, np.float64)).astype(np.float32)

    def finish(self):
        """Checks the whole shape and decides the head from the first dense layer's width."""
        if not self.convs:
            raise ExportError("no convolutions found")
        if not self.dense:
            raise ExportError("no dense (fully connected) layers found")
        pools = sum(p for _, _, p in self.convs)
        channels = self.convs[-1][0].shape[0]
        size = self.input_size >> pools
        first_in = self.dense[0][0].shape[1]
        if self.head is None:
            self.head = "gap" if first_in == channels else "flatten"
        expect = channels if self.head == "gap" else channels * size * size
        if first_in != expect:
            raise ExportError(f"the first dense layer takes {first_in} inputs; after the "
                              f"{'global average pool' if self.head == 'gap' else 'flatten'} of "
                              f"{channels} channels at {size}x{size} it would get {expect}")
        if self.head == "flatten" and self.flatten_hwc:
            # Keras flattens (h, w, c); torchvision (c, h, w).
            w = self.dense[0][0]
            w = w.reshape(w.shape[0], size, size, channels).transpose(0, 3, 1, 2)
            self.dense[0][0] = np.ascontiguousarray(w.reshape(w.shape[0], -1))

    def config(self):
        out = []
        for w, _, pool in self.convs:
            out.append(int(w.shape[0]))
            if pool:
                out.append("M")
        return out

    def tensors(self):
        """torchvision's names: features.<i> (conv, ReLU, [pool]), classifier.<3j>."""
        t, index = {}, 0
        for w, b, pool in self.convs:
            t[f"features.{index}.weight"], t[f"features.{index}.bias"] = w, b
            index += 2 + (1 if pool else 0)
        for j, (w, b) in enumerate(self.dense):
            t[f"classifier.{3 * j}.weight"], t[f"classifier.{3 * j}.bias"] = w, b
        return t


# ---------------------------------------------------------------- PyTorch

def torch_load(path):
    """A state_dict or checkpoint loads with weights_only (no code runs, torch >= 2.6's default);
    a whole pickled model needs its classes, so it is loaded as a pickle: a file you trust."""
    import pickle
    import torch
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        pass  # a whole model: its classes are not tensors
    except Exception as e:  # corrupt files
        raise ExportError(f"cannot load as a PyTorch checkpoint: {e}".splitlines()[0])
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # pickles of unknown classes
        raise ExportError(f"cannot load as a PyTorch checkpoint: {e}".splitlines()[0])


def class_names(obj):
    """The class names a checkpoint carries, in output order, or None."""
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("classes"), (list, tuple)):
        return [str(c) for c in obj["classes"]]
    for key, by_name in (("class_to_idx", True), ("idx_to_class", False)):
        mapping = obj.get(key)
        if isinstance(mapping, dict) and mapping:
            pairs = [(int(v), str(k)) if by_name else (int(k), str(v)) for k, v in mapping.items()]
            pairs.sort()
            if [i for i, _ in pairs] != list(range(len(pairs))):
                raise ExportError(f"its {key} does not number the classes 0..{len(pairs) - 1}")
            return [name for _, name in pairs]
    return None


def load_torch(path):
    import torch
    obj = torch_load(path)
    if isinstance(obj, torch.nn.Module):
        return torch_module(obj)
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if key in obj and isinstance(obj[key], (dict, torch.nn.Module)):
                inner = obj[key]
                m = torch_module(inner) if isinstance(inner, torch.nn.Module) else torch_state(inner)
                m.classes = class_names(obj)
                return m
        m = torch_state({k: v for k, v in obj.items() if k not in CLASS_KEYS})
        m.classes = class_names(obj)
        return m
    raise ExportError(f"a {type(obj).__name__}, not a state_dict or a model")


def torch_module(module):
    """A whole model: the pools are read from the modules themselves."""
    import torch
    m = Model("pytorch")
    names = dict(module.named_modules())
    features = names.get("features")
    classifier = names.get("classifier")
    if features is None or classifier is None:
        raise ExportError("the model has no 'features' and 'classifier' (torchvision's VGG layout)")
    for i, layer in enumerate(features):
        where = f"features.{i} ({type(layer).__name__})"
        if isinstance(layer, torch.nn.Conv2d):
            if layer.stride != (1, 1) or layer.padding != (1, 1) or layer.groups != 1:
                raise ExportError(f"{where}: stride {layer.stride}, padding {layer.padding}; "
                                  "fervid runs stride 1, padding 1")
            m.add_conv(layer.weight.detach().numpy(),
                       None if layer.bias is None else layer.bias.detach().numpy(), where)
        elif isinstance(layer, torch.nn.BatchNorm2d):
            m.fold_batchnorm(layer.weight.detach().numpy(), layer.bias.detach().numpy(),
                             layer.running_mean.numpy(), layer.running_var.numpy(), layer.eps, where)
        elif isinstance(layer, torch.nn.MaxPool2d):
            if layer.kernel_size not in (2, (2, 2)) or layer.stride not in (2, (2, 2)):
                raise ExportError(f"{where}: kernel {layer.kernel_size}, stride {layer.stride}; "
                                  "fervid pools 2x2 with stride 2")
            m.add_pool(where)
        elif not isinstance(layer, (torch.nn.ReLU, torch.nn.Dropout, torch.nn.Identity)):
            raise ExportError(f"{where}: not a layer of a VGG feature stack")
    avgpool = names.get("avgpool")
    if isinstance(avgpool, torch.nn.AdaptiveAvgPool2d):
        out = avgpool.output_size
        m.head = "gap" if out in (1, (1, 1)) else None
    for i, layer in enumerate(classifier):
        where = f"classifier.{i} ({type(layer).__name__})"
        if isinstance(layer, torch.nn.Linear):
            m.add_dense(layer.weight.detach().numpy(),
                        None if layer.bias is None else layer.bias.detach().numpy(), where)
        elif isinstance(layer, torch.nn.Softmax):
            m.final_activation = "softmax"
        elif not isinstance(layer, (torch.nn.ReLU, torch.nn.Dropout, torch.nn.Identity)):
            raise ExportError(f"{where}: not a layer of a VGG classifier")
    return m


def torch_state(sd):
    """A state_dict: layers from the tensors; a pool sits where the features index skips one
    (conv, ReLU = 2 indices; + BatchNorm = 3), and after the last convolution (VGG's layout)."""
    m = Model("pytorch")
    feats, dense = {}, []
    for name, t in sd.items():
        if not hasattr(t, "numpy"):
            continue
        g = re.fullmatch(r"(?:module\.)?features\.(\d+)\.(\w+)", name)
        if g:
            feats.setdefault(int(g.group(1)), {})[g.group(2)] = t.detach().numpy()
            continue
        g = re.fullmatch(r"(?:module\.)?(.+)\.(weight|bias)", name)
        if g and not name.endswith("num_batches_tracked"):
            if g.group(2) == "weight" and t.dim() != 2:
                raise ExportError(f"tensor '{name}' of shape {tuple(t.shape)} is neither a "
                                  "convolution under features.* nor a dense weight")
            if g.group(2) == "weight":
                dense.append([g.group(1), t.detach().numpy(), None])
            elif dense and dense[-1][0] == g.group(1):
                dense[-1][2] = t.detach().numpy()
    if not feats:
        raise ExportError("no features.<i>.weight tensors: not torchvision's VGG layout")
    indices = sorted(feats)
    for i in indices:
        p = feats[i]
        where = f"features.{i}"
        if "running_mean" in p:
            m.fold_batchnorm(p["weight"], p["bias"], p["running_mean"], p["running_var"], 1e-5,
                             where + " (BatchNorm2d)")
            continue
        if "weight" not in p:
            raise ExportError(f"{where}: tensors {sorted(p)} are not a convolution")
        m.add_conv(p["weight"], p.get("bias"), where)
    # Pools, from the index gaps between consecutive convolutions.
    convs = [i for i in indices if "running_mean" not in feats[i]]
    for k, i in enumerate(convs):
        bn = i + 1 in feats and "running_mean" in feats[i + 1]
        step = 3 if bn else 2
        nxt = convs[k + 1] if k + 1 < len(convs) else None
        if nxt is None or nxt - i == step + 1:
            m.convs[k][2] = True
        elif nxt - i != step:
            raise ExportError(f"features.{i} -> features.{nxt}: a gap that is neither ReLU nor "
                              "ReLU + max-pool")
    for name, w, b in dense:
        m.add_dense(w, b, name)
    return m


# ---------------------------------------------------------------- Keras

def snake(name):
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()  # as Keras names its layers


def keras_layers(config):
    """(class_name, config) of a model config's layers, in order."""
    c = config.get("config", config)
    layers = c.get("layers", c if isinstance(c, list) else [])
    return [(l["class_name"], l.get("config", {}), l) for l in layers]


def keras_walk(config, model, weights_of, where=""):
    """Adds the layers of a (possibly nested) Keras model config; weights_of(path, layer) gives
    (kernel, bias) for a layer, `path` the keys leading to it."""
    counters = {}
    for cls, cfg, raw in keras_layers(config):
        key = snake(cls)
        n = counters.get(key, 0)
        counters[key] = n + 1
        h5key = key if n == 0 else f"{key}_{n}"
        name = cfg.get("name", h5key)
        here = f"{where}{name}"
        if cls in ("Functional", "Model", "Sequential"):
            keras_walk(raw, model, lambda p, l, h=h5key, nm=name: weights_of([(h, nm)] + p, l),
                       here + "/")
        elif cls == "Conv2D":
            if tuple(cfg.get("kernel_size", ())) != (3, 3) or tuple(cfg.get("strides", (1, 1))) != (1, 1) \
                    or cfg.get("padding") != "same" or cfg.get("activation") != "relu":
                raise ExportError(f"Keras layer {here} (Conv2D): kernel {cfg.get('kernel_size')}, "
                                  f"strides {cfg.get('strides')}, padding {cfg.get('padding')}, "
                                  f"activation {cfg.get('activation')}; fervid runs 3x3, stride 1, "
                                  "same padding, ReLU")
            k, b = weights_of([(h5key, name)], cfg)
            model.add_conv(np.transpose(k, (3, 2, 0, 1)), b, f"Keras layer {here}")
        elif cls == "MaxPooling2D":
            if tuple(cfg.get("pool_size", (2, 2))) != (2, 2) or tuple(cfg.get("strides") or (2, 2)) != (2, 2):
                raise ExportError(f"Keras layer {here} (MaxPooling2D): pool {cfg.get('pool_size')}, "
                                  f"strides {cfg.get('strides')}; fervid pools 2x2, stride 2")
            model.add_pool(f"Keras layer {here}")
        elif cls == "GlobalAveragePooling2D":
            model.head = "gap"
        elif cls == "Flatten":
            model.head = "flatten"
            model.flatten_hwc = True
        elif cls == "Dense":
            act = cfg.get("activation")
            k, b = weights_of([(h5key, name)], cfg)
            if model.dense and model.dense_acts[-1] != "relu":
                raise ExportError(f"Keras layer {here}: follows a Dense layer with activation "
                                  f"{model.dense_acts[-1]}; fervid puts ReLU between dense layers")
            model.add_dense(np.transpose(k), b, f"Keras layer {here}")
            model.dense_acts.append(act)
        elif cls in ("InputLayer", "Dropout", "ReLU") or (cls == "Activation" and cfg.get("activation") == "relu"):
            pass
        else:
            raise ExportError(f"Keras layer {here} ({cls}): not part of a VGG (Conv2D, "
                              "MaxPooling2D, GlobalAveragePooling2D or Flatten, Dense, Dropout)")


def load_keras(path):
    import h5py
    m = Model("keras")
    m.dense_acts = []
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            if "config.json" not in names or "model.weights.h5" not in names:
                raise ExportError("a zip without config.json and model.weights.h5: not a .keras file")
            config = json.loads(z.read("config.json"))
            meta = json.loads(z.read("metadata.json")) if "metadata.json" in names else {}
            with z.open("model.weights.h5") as wf, h5py.File(wf, "r") as f:
                def weights(p, cfg):
                    g = f["layers"] if "layers" in f else f
                    for h5key, _ in p:
                        if h5key not in g:
                            raise ExportError(f"model.weights.h5 has no layers/{h5key}")
                        g = g[h5key]
                        if h5key != p[-1][0]:
                            g = g["layers"]
                    v = g["vars"]
                    k = np.asarray(v["0"])
                    b = np.asarray(v["1"]) if "1" in v else None
                    return k, b
                keras_walk(config, m, weights)
        m.source_version = "Keras " + meta.get("keras_version", "3")
    else:
        with h5py.File(path, "r") as f:
            if "model_config" not in f.attrs or "model_weights" not in f:
                raise ExportError("an HDF5 file without model_config and model_weights "
                                  "(save the whole model, not only its weights)")
            raw = f.attrs["model_config"]
            config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
            root = f["model_weights"]

            def weights(p, cfg):
                g = root
                for _, name in p:
                    if name not in g:
                        raise ExportError(f"model_weights has no group '{name}'")
                    g = g[name]
                found = {}

                def visit(n, obj):
                    if isinstance(obj, h5py.Dataset):
                        base = n.split("/")[-1].split(":")[0]
                        found.setdefault(base, np.asarray(obj))
                g.visititems(visit)
                if "kernel" not in found:
                    raise ExportError(f"model_weights/{'/'.join(n for _, n in p)}: no kernel")
                return found["kernel"], found.get("bias")
            keras_walk(config, m, weights)
            ver = f.attrs.get("keras_version", b"")
            m.source_version = "Keras " + (ver.decode() if isinstance(ver, bytes) else str(ver))
    acts = m.dense_acts
    if acts:
        if any(a != "relu" for a in acts[:-1]):
            raise ExportError(f"dense activations {acts}: fervid puts ReLU between dense layers")
        if acts[-1] not in ("softmax", "linear", None):
            raise ExportError(f"the last Dense layer's activation is {acts[-1]}; fervid ends "
                              "with the logits (linear) and a softmax")
        m.final_activation = acts[-1]
    return m


# ---------------------------------------------------------------- ONNX

def load_onnx(path):
    import onnx
    from onnx import numpy_helper
    try:
        g = onnx.load(path).graph
    except Exception as e:
        raise ExportError(f"cannot read as ONNX: {e}".splitlines()[0])
    init = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    for n in g.node:  # Constant nodes hold weights too
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    init[n.output[0]] = numpy_helper.to_array(a.t)
    m = Model("onnx")
    passthrough = {"Relu", "Dropout", "Identity", "Constant", "Shape", "Gather", "Unsqueeze",
                   "Concat", "Cast", "Squeeze"}
    for n in g.node:
        where = f"ONNX node {n.name or n.output[0]} ({n.op_type})"
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        if n.op_type == "Conv":
            w = init.get(n.input[1])
            if w is None:
                raise ExportError(f"{where}: its weight {n.input[1]} is not an initializer")
            if list(attrs.get("strides", [1, 1])) != [1, 1] or list(attrs.get("pads", [1, 1, 1, 1])) != [1, 1, 1, 1] \
                    or attrs.get("group", 1) != 1:
                raise ExportError(f"{where}: strides {attrs.get('strides')}, pads {attrs.get('pads')}; "
                                  "fervid runs stride 1, padding 1")
            m.add_conv(w, init.get(n.input[2]) if len(n.input) > 2 else None, where)
        elif n.op_type == "BatchNormalization":
            s, b, mean, var = (init[i] for i in n.input[1:5])
            m.fold_batchnorm(s, b, mean, var, attrs.get("epsilon", 1e-5), where)
        elif n.op_type == "MaxPool":
            if list(attrs.get("kernel_shape", [])) != [2, 2] or list(attrs.get("strides", [])) != [2, 2]:
                raise ExportError(f"{where}: kernel {attrs.get('kernel_shape')}, strides "
                                  f"{attrs.get('strides')}; fervid pools 2x2, stride 2")
            m.add_pool(where)
        elif n.op_type in ("GlobalAveragePool", "ReduceMean"):
            m.head = "gap"
        elif n.op_type == "AveragePool":
            if list(attrs.get("kernel_shape", [1, 1])) != [1, 1]:
                raise ExportError(f"{where}: an average pool other than torchvision's identity "
                                  "AdaptiveAvgPool2d(7) at 224x224")
        elif n.op_type in ("Flatten", "Reshape"):
            if m.head is None:
                m.head = "flatten"
        elif n.op_type == "Gemm":
            w = init.get(n.input[1])
            if w is None:
                raise ExportError(f"{where}: its weight {n.input[1]} is not an initializer")
            if attrs.get("transA", 0):
                raise ExportError(f"{where}: transA")
            w = w if attrs.get("transB", 0) else w.T
            b = init.get(n.input[2]) if len(n.input) > 2 else None
            if attrs.get("alpha", 1.0) != 1.0 or (b is not None and attrs.get("beta", 1.0) != 1.0):
                raise ExportError(f"{where}: alpha/beta other than 1")
            m.add_dense(w, b, where)
        elif n.op_type == "MatMul":
            w = init.get(n.input[1])
            if w is None:
                raise ExportError(f"{where}: its weight {n.input[1]} is not an initializer")
            m.add_dense(w.T, None, where)
        elif n.op_type == "Add" and m.dense and n.input[1] in init:
            m.dense[-1][1] = m.dense[-1][1] + init[n.input[1]].reshape(-1).astype(np.float32)
        elif n.op_type == "Softmax":
            m.final_activation = "softmax"
        elif n.op_type not in passthrough:
            raise ExportError(f"{where}: an op fervid's VGG does not have")
    m.source_version = "ONNX"
    return m


# ---------------------------------------------------------------- output

def to_bytes(a, dtype):
    if dtype == "f32":
        return a.astype("<f4").tobytes(), "F32"
    if dtype == "f16":
        return a.astype("<f2").tobytes(), "F16"
    bits = np.ascontiguousarray(a, np.float32).view(np.uint32)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u2")  # round to nearest even
    return rounded.tobytes(), "BF16"


def output_target(path, source):
    """Where the output goes, by fervid's rules (fervid/output_file.h): ("file", the file to
    write, its symlinks followed) or ("stream", path); refused in one line otherwise."""
    import stat
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise ExportError(f"{path}: a folder, not a file")
        if stat.S_ISFIFO(st.st_mode) or stat.S_ISCHR(st.st_mode):
            return "stream", path
        if not stat.S_ISREG(st.st_mode):
            raise ExportError(f"{path}: not a regular file, a pipe or a character device")
        if os.path.samefile(path, source):
            raise ExportError(f"{path}: that is the source; name another file")
    real = os.path.realpath(path)  # a symlink: its target (created if it does not exist)
    folder = os.path.dirname(real) or "."
    if not os.path.isdir(folder):
        raise ExportError(f"{path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ExportError(f"{path}: cannot write in the folder {folder}")
    return "file", real


def write_safetensors(target, tensors, metadata, dtype):
    kind, path = target
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, a in tensors.items():
        data, tag = to_bytes(np.ascontiguousarray(a), dtype)
        header[name] = {"dtype": tag, "shape": list(a.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    part = path + ".part" if kind == "file" else path
    try:
        with open(part, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for b in blobs:
                f.write(b)
        if kind == "file":
            os.replace(part, path)
    except BaseException:
        if kind == "file" and os.path.exists(part):
            os.remove(part)
        raise


def detect_format(path):
    ext = os.path.splitext(path)[1].lower()
    if ext in (".pt", ".pth", ".bin", ".ckpt", ".tar"):
        return "torch"
    if ext in (".keras", ".h5", ".hdf5"):
        return "keras"
    if ext == ".onnx":
        return "onnx"
    raise ExportError(f"cannot tell the format from '{ext}': give --format torch|keras|onnx")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source")
    ap.add_argument("output", help="the .safetensors file to write")
    ap.add_argument("--format", choices=("auto", "torch", "keras", "onnx"), default="auto")
    ap.add_argument("--classes", help="class names, comma-separated, in the order of the model's "
                    "outputs, or 'ravdess' for RAVDESS's eight (neutral,calm,...); needed when "
                    "the source does not name them")
    ap.add_argument("--preprocess", choices=PRESETS,
                    help="default: study (value/255) for Keras, torchvision otherwise")
    ap.add_argument("--resize", type=int, default=0,
                    help="torchvision's Resize(N) + CenterCrop(input size): the crop's shorter "
                         "side resized to N, the centred square kept (0: resized to the input "
                         "size directly)")
    ap.add_argument("--dtype", choices=("f32", "f16", "bf16"), default="f32")
    ap.add_argument("--name", help="the model card's name (default: from the source file)")
    ap.add_argument("--vote", choices=("majority", "confidence"), default="confidence")
    ap.add_argument("--crop", default="full", help="the card's default crop (full, center, face)")
    ap.add_argument("--face-margin", type=float, default=None,
                    help="the face crops' margin the model was trained with, a share of the face's "
                         "size on each side, 0..2 (card key face_margin; default 0.25)")
    ap.add_argument("--input-size", type=int, default=224)
    args = ap.parse_args(argv)
    try:
        if not os.path.exists(args.source):
            raise ExportError("no such file")
        target = output_target(args.output, args.source)
        if args.resize and args.resize < args.input_size:
            raise ExportError(f"--resize {args.resize}: at least the input size ({args.input_size})")
        fmt = detect_format(args.source) if args.format == "auto" else args.format
        model = {"torch": load_torch, "keras": load_keras, "onnx": load_onnx}[fmt](args.source)
        model.input_size = args.input_size
        model.finish()
        outputs = model.dense[-1][0].shape[0]
        named = getattr(model, "classes", None)
        if args.classes and args.classes.strip().lower() == "ravdess":
            classes = RAVDESS
        elif args.classes:
            classes = [c.strip() for c in args.classes.split(",")]
        elif named:
            classes = named
        else:
            raise ExportError(
                f"it does not name its {outputs} classes: give --classes in the order of the "
                f"model's outputs (torchvision's ImageFolder sorts them by name: "
                f"{','.join(sorted(RAVDESS))}), or --classes ravdess for RAVDESS's order "
                f"({','.join(RAVDESS)})")
        if named and classes != named:
            raise ExportError(f"--classes {','.join(classes)} differs from the classes the source "
                              f"names ({','.join(named)})")
        if len(classes) != outputs or len(set(classes)) != len(classes) or not all(classes):
            raise ExportError(f"--classes names {len(classes)} distinct classes, the model has "
                              f"{outputs} outputs")
        preprocess = args.preprocess or ("study" if fmt == "keras" else "torchvision")
        card_preprocess = preprocess
        if args.resize:
            presets = {"study": ([0, 0, 0], [1, 1, 1], 1 / 255, "rgb"),
                       "torchvision": ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225], 1 / 255, "rgb"),
                       "caffe": ([103.939, 116.779, 123.68], [1, 1, 1], 1.0, "bgr")}
            mean, std, scale, order = presets[preprocess]
            card_preprocess = {"channel_order": order, "scale": scale, "mean": mean, "std": std,
                               "resize": args.resize}
        card = {
            "name": args.name or os.path.splitext(os.path.basename(args.source))[0],
            "description": f"exported from {model.framework} ({os.path.basename(args.source)}) by {EXPORTER}",
            "config": model.config(), "input_size": model.input_size, "head": model.head,
            "dense": [int(w.shape[0]) for w, _ in model.dense[:-1]], "classes": classes,
            "preprocess": card_preprocess, "crop": args.crop, "vote": args.vote}
        if args.face_margin is not None:
            if not 0 <= args.face_margin <= 2:
                sys.exit(f"export_weights: --face-margin {args.face_margin}: must lie in 0..2")
            card["face_margin"] = args.face_margin
        metadata = {
            "fervid.model_card": json.dumps(card),
            "source_framework": getattr(model, "source_version", model.framework),
            "source_file": os.path.basename(args.source),
            "source_final_activation": str(model.final_activation or "none"),
            "exporter": EXPORTER,
            "exported_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        write_safetensors(target, model.tensors(), metadata, args.dtype)
    except ExportError as e:
        print(f"export_weights: error: {args.source}: {e}", file=sys.stderr)
        return 2
    params = sum(int(a.size) for a in model.tensors().values())
    resize = f", resize {args.resize} + centre {model.input_size}" if args.resize else ""
    print(f"wrote {args.output}: {card['name']}, {model.framework}, config "
          f"{','.join(str(c) for c in card['config'])}, head {model.head}, dense "
          f"{card['dense'] + [outputs]}, {params} parameters, {args.dtype}\n"
          f"  classes ({outputs}, output order): {','.join(classes)}\n"
          f"  preprocess {preprocess}{resize}, crop {args.crop}, vote {args.vote}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
