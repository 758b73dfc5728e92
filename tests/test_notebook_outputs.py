"""The committed outputs of the book's notebooks are what a reader should see: no stderr (warnings name
the machine that ran them), no error, no progress-bar residue and no path of the machine that ran them.
``make execute`` (``lmcourse.runtimes.execute_notebook``) drops stderr and runs with progress bars off;
a reader's own run still shows both."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "chapters").glob("*.ipynb"))
# a home, temporary or installation directory; a carriage return or tqdm's rate and bar
RESIDUE = re.compile(r"/work/|/home/|/root/|/Users/|/tmp/|site-packages|\r|\d it/s\]|\d s/it\]|\d+%\|")


def _texts(output: dict) -> list[str]:
    if output["output_type"] == "stream":
        return ["".join(output["text"])]
    data = output.get("data", {})
    return ["".join(data[kind]) for kind in ("text/plain", "text/html", "text/markdown") if kind in data]


def problems(notebook: dict) -> list[str]:
    """What in the notebook's outputs a reader should not see, one line per finding."""
    found = []
    for index, cell in enumerate(notebook.get("cells", [])):
        for output in cell.get("outputs", []):
            if output["output_type"] == "error" or output.get("name") == "stderr":
                found.append(f"cell {index}: {output.get('ename') or 'stderr'} in the outputs")
                continue
            for text in _texts(output):
                match = RESIDUE.search(text)
                if match:
                    found.append(f"cell {index}: {text[max(0, match.start() - 60):match.end() + 20]!r}")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_outputs_are_clean(path):
    assert not problems(json.loads(path.read_text())), f"{path.name}: re-run it with `make execute`"


def test_the_check_finds_each_kind_of_residue():
    def notebook(*outputs):
        return {"cells": [{"cell_type": "code", "outputs": list(outputs)}]}

    clean = {"output_type": "stream", "name": "stdout", "text": ["loss 2.31 -> 1.87\n"]}
    assert len(NOTEBOOKS) >= 14 and problems(notebook(clean)) == []
    for bad in ({"output_type": "stream", "name": "stderr", "text": "UserWarning: ...\n"},
                {"output_type": "error", "ename": "ValueError", "evalue": "x", "traceback": []},
                {"output_type": "stream", "name": "stdout", "text": "epoch 1:  40%|####      | 4/10 [00:02<00:03, 1.9 it/s]"},
                {"output_type": "stream", "name": "stdout", "text": "step 1\rstep 2\n"},
                {"output_type": "execute_result", "data": {"text/plain": "PosixPath('/home/ann/lmcourse/data/x.csv')"}}):
        assert len(problems(notebook(bad))) == 1, bad
