#!/usr/bin/env python3
"""Fails when an #include crosses the layers upward (docs/architecture.md).

The layers, bottom up; a file may include files of its own layer and of the layers below:

  engine/core -> kernels/{cpu,cuda} -> engine/backends -> engine/backends/{cpu,cuda}
    -> engine (include/, src/) -> bench, scoring -> app, python

Siblings (kernels/cpu and kernels/cuda; the two backends; bench and scoring; the app and the
Python module) do not include each other. scoring, the app and the Python module are clients of
the public API: from the engine they include engine/include/ and engine/core/include/ only.
tests/ and tools/ may include anything.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
# (folder, rank, group): the longest folder that holds a file gives its layer.
LAYERS = [
    ("engine/core", 0, "core"),
    ("kernels/cpu", 1, "kernels/cpu"),
    ("kernels/cuda", 1, "kernels/cuda"),
    ("engine/backends", 2, "backends"),
    ("engine/backends/cpu", 3, "backends/cpu"),
    ("engine/backends/cuda", 3, "backends/cuda"),
    ("engine", 4, "engine"),
    ("bench", 5, "bench"),
    ("scoring", 5, "scoring"),
    ("app", 6, "app"),
    ("python", 6, "python"),
]
PUBLIC = ("engine/include/", "engine/core/include/")
CLIENTS = ("scoring", "app", "python")
# Where quoted includes are looked for after the including file's own folder (the include
# directories the CMake targets give).
ROOTS = ["engine/core/include", "engine/include", "kernels", "engine", "engine/src", "bench", "scoring", "app"]
SOURCES = ("*.h", "*.cpp", "*.cu", "*.cuh")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def layer_of(rel):
    best = None
    for folder, rank, group in LAYERS:
        if rel == folder or rel.startswith(folder + "/"):
            if best is None or len(folder) > len(best[0]):
                best = (folder, rank, group)
    return best


def resolve(src, name):
    for base in [src.parent] + [ROOT / r for r in ROOTS]:
        p = (base / name).resolve()
        if p.is_file() and ROOT in p.parents:
            return p.relative_to(ROOT).as_posix()
    return None  # a system or generated header


def main():
    problems = []
    files = [p for pattern in SOURCES for p in ROOT.rglob(pattern)]
    for src in sorted(files):
        rel = src.relative_to(ROOT).as_posix()
        if rel.startswith(("build", "out/", "tests/", "tools/")) or "/build" in rel:
            continue
        mine = layer_of(rel)
        if mine is None:
            continue
        for lineno, line in enumerate(src.read_text(errors="replace").splitlines(), 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            target = resolve(src, m.group(1))
            theirs = layer_of(target) if target else None
            if theirs is None:
                continue
            why = None
            if theirs[1] > mine[1]:
                why = f"upward: {mine[2]} (layer {mine[1]}) includes {theirs[2]} (layer {theirs[1]})"
            elif theirs[1] == mine[1] and theirs[2] != mine[2]:
                why = f"sideways: {mine[2]} includes its sibling {theirs[2]}"
            elif mine[2] in CLIENTS and theirs[1] <= 4 and not target.startswith(PUBLIC):
                why = f"{mine[2]} uses the public API only, not {target}"
            if why:
                problems.append(f"{rel}:{lineno}: #include \"{m.group(1)}\" ({target}): {why}")
    for p in problems:
        print(p)
    if problems:
        print(f"check-layers: {len(problems)} include(s) cross the layers (docs/architecture.md)")
        return 1
    print("check-layers: every include points down the layers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
