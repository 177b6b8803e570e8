"""docs/python.md's walk-through runs as written: its python blocks, in order, in one namespace, from a
folder where ../shared/data is the shared test data and demo.safetensors the study's demo weights."""

import os
import pathlib
import re
import shutil

from conftest import ROOT, run_cli


def test_the_walk_through_runs_as_written(cli, data, tmp_path, monkeypatch):
    doc = (ROOT / "docs" / "python.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", doc, flags=re.S)
    assert len(blocks) >= 5
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "shared").symlink_to(data.parent)
    run_cli(cli, "make-weights", "--seed", 1, "--out", work / "demo.safetensors")
    monkeypatch.chdir(work)
    namespace = {}
    for i, code in enumerate(blocks):
        exec(compile(code, f"docs/python.md block {i + 1}", "exec"), namespace)
    for picture in ("probabilities.png", "confusion.png"):
        assert (work / picture).read_bytes()[:4] == b"\x89PNG", picture
        keep = os.environ.get("FERVID_DOCS_OUT")  # to look at what the walk-through draws
        if keep:
            shutil.copy(work / picture, pathlib.Path(keep) / picture)
    assert len(namespace["done"]) == 5
    assert namespace["video"].frames == len(namespace["rgb"])
