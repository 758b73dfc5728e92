"""Progress kept across sessions (in a temporary file: LMCOURSE_PROGRESS), and the JupyterLab
extension that renders the chapters' MyST directives."""

import importlib.metadata
import json
import sys
from pathlib import Path

import pytest

from lmcourse.exercises import REGISTRY, Case, Exercise, check, progress
from lmcourse.exercises.__main__ import main
from lmcourse.exercises.progress import progress_path


@pytest.fixture
def progress_file(tmp_path, monkeypatch):
    path = tmp_path / "progress.json"
    monkeypatch.setenv("LMCOURSE_PROGRESS", str(path))
    return path


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(REGISTRY, "gpt.toy", Exercise("gpt.toy", [Case((1,)), Case((2,))], oracle=lambda x: 2 * x,
                                                      hint="Double it."))


def test_results_are_recorded_per_chapter(progress_file, toy, capsys):
    check("gpt.toy", lambda x: x)  # failed
    shown = progress()
    assert shown.chapters["6 gpt"]["failed"] == ["gpt.toy"] and "gpt.kv_cache_step" in shown.chapters["6 gpt"]["not tried"]
    check("gpt.toy", lambda x: 2 * x)  # passed
    check("gpt.toy", lambda x: x)  # failing later keeps the pass
    shown = progress()
    assert shown.chapters["6 gpt"]["passed"] == ["gpt.toy"]
    assert all(len(s["not tried"]) == len([n for n in REGISTRY if n.startswith(c.split()[1] + ".")]) - (c == "6 gpt")
               for c, s in shown.chapters.items())
    data = json.loads(progress_file.read_text())
    assert data["exercises"]["gpt.toy"]["last"] == "failed" and data["exercises"]["gpt.toy"]["passed"] is True
    assert "passed  failed  not tried" in str(shown)


def test_an_unwritten_stub_is_not_recorded(progress_file, toy):
    def stub(x):
        raise NotImplementedError
    check("gpt.toy", stub)
    assert not progress_file.exists()


def test_a_corrupt_file_gives_a_message_and_is_left_alone(progress_file, toy, capsys):
    progress_file.write_text("{not json")
    check("gpt.toy", lambda x: 2 * x)
    assert "not recorded" in capsys.readouterr().out
    assert progress_file.read_text() == "{not json"
    assert "is not valid JSON" in str(progress())
    assert main(["progress"]) == 1
    assert "fix it, or delete it" in capsys.readouterr().out


def test_the_command_line_shows_progress(progress_file, capsys):
    assert main(["progress"]) == 0
    out = capsys.readouterr().out
    assert "1 background" in out and str(progress_file) in out


def test_default_place_is_the_user_data_directory(monkeypatch):
    import platformdirs

    monkeypatch.delenv("LMCOURSE_PROGRESS", raising=False)
    assert progress_path() == Path(platformdirs.user_data_dir("lmcourse")) / "progress.json"
    monkeypatch.setenv("LMCOURSE_PROGRESS", "off")
    assert progress_path() is None


def test_jupyterlab_myst_extension_is_installed():
    importlib.metadata.distribution("jupyterlab_myst")
    extension = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "jupyterlab-myst"
    assert (extension / "package.json").is_file()
