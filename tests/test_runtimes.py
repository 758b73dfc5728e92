"""lmcourse.runtimes reads a notebook's last run from its cell time stamps and its FULL_RUN comment."""

import json

import pytest

from lmcourse.runtimes import chapter_costs, full_run_switch, last_run_seconds, notebook_cost


def _cell(kind, source, start=None, end=None):
    cell = {"cell_type": kind, "metadata": {}, "source": source}
    if start:
        cell["metadata"]["execution"] = {"iopub.execute_input": f"2026-01-01T00:{start}Z",
                                         "shell.execute_reply": f"2026-01-01T00:{end}Z"}
    if kind == "code":
        cell.update(outputs=[], execution_count=None)
    return cell


def _write(path, cells):
    cells = [dict(cell, id=f"cell-{i}") for i, cell in enumerate(cells)]
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


@pytest.fixture
def notebook(tmp_path):
    return _write(tmp_path / "03_demo.ipynb", [
        _cell("markdown", "(demo)=\n# 3. A demo chapter\n\nText."),
        _cell("code", ["import time\n", "FULL_RUN = False  # True: train longer (about 5 minutes)\n"], "00:00.5", "00:02.5"),
        _cell("code", "train()\nmore()", "00:03", "01:13"),
        _cell("code", "never run"),
    ])


def test_last_run_spans_the_first_start_to_the_last_end(notebook):
    assert last_run_seconds(notebook) == pytest.approx(72.5)


def test_a_notebook_that_never_ran_costs_nothing(tmp_path):
    assert last_run_seconds(_write(tmp_path / "x.ipynb", [_cell("code", "x = 1")])) == 0.0


def test_the_full_run_comment_is_read(notebook, tmp_path):
    assert full_run_switch(notebook) == "True: train longer (about 5 minutes)"
    assert full_run_switch(_write(tmp_path / "y.ipynb", [_cell("code", "FULL = 1")])) is None


def test_notebook_cost_names_the_title_and_times_the_slowest_cell(notebook):
    cost = notebook_cost(notebook)
    assert (cost.notebook, cost.title) == ("03_demo.ipynb", "3. A demo chapter")
    assert cost.slowest_seconds == pytest.approx(70.0)


def test_chapter_costs_in_file_order_and_clear_errors(notebook, tmp_path):
    _write(tmp_path / "01_first.ipynb", [_cell("markdown", "# 1. First")])
    _write(tmp_path / "results.ipynb", [_cell("markdown", "# Not a chapter")])
    assert [c.notebook for c in chapter_costs(tmp_path)] == ["01_first.ipynb", "03_demo.ipynb"]
    with pytest.raises(FileNotFoundError, match="no notebook matching"):
        chapter_costs(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no notebook at"):
        last_run_seconds(tmp_path / "missing.ipynb")


def test_the_run_time_is_stamped_under_the_title_and_restamped_in_place(notebook, tmp_path):
    from lmcourse.runtimes import run_time_line, stamp_run_time, stated_run_time

    assert stated_run_time(notebook) is None
    assert stamp_run_time(notebook) is True
    assert stated_run_time(notebook) == run_time_line(72.5) == (
        "*Run time: about 1 minute on one CPU thread, as last executed (every chapter: {doc}`costs`).*")
    first = json.loads(notebook.read_text())["cells"][0]
    assert "".join(first["source"]).startswith("(demo)=\n# 3. A demo chapter\n\n*Run time: about 1 minute")
    assert "".join(first["source"]).endswith("\n\nText.")
    assert stamp_run_time(notebook) is False  # nothing to change
    data = json.loads(notebook.read_text())
    data["cells"][2]["metadata"]["execution"]["shell.execute_reply"] = "2026-01-01T00:05:13Z"  # a slower run
    notebook.write_text(json.dumps(data))
    assert stamp_run_time(notebook) is True and "about 5 minutes" in stated_run_time(notebook)
    assert "".join(json.loads(notebook.read_text())["cells"][0]["source"]).count("*Run time:") == 1
    assert run_time_line(12).startswith("*Run time: under a minute")
    with pytest.raises(ValueError, match="records no run"):
        stamp_run_time(_write(tmp_path / "x.ipynb", [_cell("markdown", "# X"), _cell("code", "x = 1")]))


def test_every_chapter_states_the_run_time_of_its_committed_outputs():
    """Re-executing a chapter changes its time stamps: run `python -m lmcourse.runtimes stamp chapters/[0-9]*.ipynb`."""
    from pathlib import Path

    from lmcourse.runtimes import run_time_line, stated_run_time

    chapters = sorted(Path(__file__).resolve().parents[1].glob("chapters/[0-9]*.ipynb"))
    assert len(chapters) >= 11
    stale = {p.name: stated_run_time(p) for p in chapters if stated_run_time(p) != run_time_line(last_run_seconds(p))}
    assert not stale, f"run-time lines out of date (restamp them): {stale}"


def test_execute_records_the_peak_memory_drops_stderr_and_stamps(tmp_path):
    """A real kernel: a notebook that holds ~400 MB must record a peak above it."""
    from lmcourse.runtimes import execute_notebook, executed_on, machine_name, peak_memory_mib, stated_run_time

    path = _write(tmp_path / "01_big.ipynb", [
        _cell("markdown", "# 1. Big"),
        _cell("code", "import sys\nimport numpy as np\nx = np.ones(50_000_000)  # 400 MB\nprint('kept')\n"
                      "print('a warning with a path', file=sys.stderr)"),
    ])
    assert peak_memory_mib(path) is None and executed_on(path) is None
    execute_notebook(path, timeout=120)
    assert 400 < peak_memory_mib(path) < 4000
    assert executed_on(path) == machine_name() and machine_name().endswith(" cores")
    cost = notebook_cost(path)
    assert (cost.peak_memory_mib, cost.machine) == (peak_memory_mib(path), executed_on(path))
    outputs = json.loads(path.read_text())["cells"][1]["outputs"]
    assert ["".join(o["text"]) for o in outputs] == ["kept\n"]  # stdout kept, stderr dropped
    assert stated_run_time(path).startswith("*Run time: under a minute")


def test_a_failing_notebook_is_left_as_it_was(tmp_path):
    from lmcourse.runtimes import execute_notebook

    path = _write(tmp_path / "02_broken.ipynb", [_cell("markdown", "# 2. Broken"), _cell("code", "1 / 0")])
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="failed to execute.*not changed"):
        execute_notebook(path, timeout=60)
    assert path.read_bytes() == before
    with pytest.raises(FileNotFoundError, match="no notebook at"):
        execute_notebook(tmp_path / "missing.ipynb")
