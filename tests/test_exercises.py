import json
import threading
import time
from pathlib import Path

import nbformat
import pytest

import numpy as np

from lmcourse.exercises import REGISTRY, Case, Exercise, check, evaluate, example, last_failure, load_all
from lmcourse.exercises.__main__ import main
from lmcourse.exercises.leaks import audit_notebook
from lmcourse.exercises.notebooks import (STUB, find_solutions, strip_solution_prose, strip_solutions,
                                          student_notebook, write_student_copies)
from lmcourse.exercises.selftest import selftest_all, selftest_solution

CHAPTERS = Path(__file__).resolve().parent.parent / "chapters"


def _double(x):
    return 2 * x


@pytest.fixture(autouse=True)
def private_progress(tmp_path, monkeypatch):
    """check() records progress: keep it in a temporary file, never in the real home."""
    monkeypatch.setenv("LMCOURSE_PROGRESS", str(tmp_path / "progress.json"))
    return tmp_path / "progress.json"


@pytest.fixture
def toy(monkeypatch):
    """A throwaway exercise 'toy.double', removed from the registry after the test."""
    load_all()
    exercise = Exercise("toy.double", [Case((1,)), Case((2.5,)), Case((-3,), label="a negative number")],
                        oracle=_double, hint="Multiply by two.", wrong_answers={"adds two": lambda x: x + 2},
                        time_limit=0.3)
    monkeypatch.setitem(REGISTRY, "toy.double", exercise)
    return exercise


def test_reference_passes_and_report_says_so(toy, capsys):
    report = evaluate("toy.double", _double)
    assert report.passed and "all 3 hidden cases passed" in str(report)
    check("toy.double", _double)
    assert "✓ toy.double" in capsys.readouterr().out


def test_wrong_answer_names_input_expected_got_and_hint(toy):
    report = evaluate("toy.double", lambda x: x + 2)
    text = str(report)
    assert not report.passed
    assert "0 of 3 hidden cases passed" in text
    assert "(1)" in text and "expected: 2" in text and "got:      3" in text and "Hint: Multiply by two." in text


def test_stub_gets_friendly_message_and_no_hint(toy, capsys):
    def stub(x):
        raise NotImplementedError
    text = str(evaluate("toy.double", stub))
    assert "Not written yet" in text and "Traceback" not in text
    assert "Hint" not in text and "Multiply" not in text and 'example("toy.double")' in text
    check("toy.double", stub, hint=2)
    assert "Multiply" not in capsys.readouterr().out


def test_hint_levels(monkeypatch, capsys):
    exercise = Exercise("toy.hinted", [Case((1,))], oracle=_double, hint="Full hint: return 2 * x.",
                        nudge="Think of doubling.")
    monkeypatch.setitem(REGISTRY, "toy.hinted", exercise)
    check("toy.hinted", lambda x: x)
    out = capsys.readouterr().out
    assert "Think of doubling." in out and "return 2 * x" not in out and 'hint=2' in out
    check("toy.hinted", lambda x: x, hint=2)
    assert "Full hint: return 2 * x." in capsys.readouterr().out
    check("toy.hinted", lambda x: x, hint=0)
    assert "Hint" not in capsys.readouterr().out


def test_exception_in_student_code_is_reported(toy):
    text = str(evaluate("toy.double", lambda x: 1 / 0))
    assert "raised ZeroDivisionError: division by zero" in text


def test_wrong_type_is_reported(toy):
    assert "expected an int, got a str ('2')" in str(evaluate("toy.double", lambda x: str(2 * x)))


def test_a_count_must_be_an_int_and_a_mask_boolean(monkeypatch):
    monkeypatch.setitem(REGISTRY, "toy.count", Exercise("toy.count", [Case((3,))], oracle=lambda n: n * 2, hint=""))
    assert "expected an int (a whole number), got a float (6.0)" in str(evaluate("toy.count", lambda n: n * 2.0))
    monkeypatch.setitem(REGISTRY, "toy.mask", Exercise("toy.mask", [Case((3,))], oracle=lambda n: np.eye(n, dtype=bool),
                                                       hint=""))
    assert "expected a boolean array" in str(evaluate("toy.mask", lambda n: np.eye(n)))
    assert evaluate("toy.mask", lambda n: np.eye(n) > 0).passed


def _forever(x):
    while True:
        pass


def test_infinite_loop_is_stopped_after_one_limit(toy):
    start = time.perf_counter()
    report = evaluate("toy.double", _forever)
    elapsed = time.perf_counter() - start
    text = str(report)
    assert "took longer than 0.3 s" in text and "stopped at hidden case 1 of 3" in text
    assert len(report.results) == 1  # the other cases were not run
    assert elapsed < 0.3 + 0.5 + 1.0  # one limit, the grace to stop the worker, and slack for a busy machine


def test_time_limit_works_outside_the_main_thread(toy):
    found: list = []
    worker = threading.Thread(target=lambda: found.append(evaluate("toy.double", _forever)))
    start = time.perf_counter()
    worker.start()
    worker.join(10)
    assert not worker.is_alive() and time.perf_counter() - start < 3
    assert "took longer than 0.3 s" in str(found[0])


def test_changed_input_is_reported_and_the_case_stays_intact(monkeypatch):
    data = [3, 1, 2]
    exercise = Exercise("toy.sorted", [Case((data,))], oracle=sorted, hint="", wrong_answers={})
    monkeypatch.setitem(REGISTRY, "toy.sorted", exercise)

    def sorts_in_place(xs):
        xs.sort()
        return xs
    text = str(evaluate("toy.sorted", sorts_in_place))
    assert "your function changed its input `xs`" in text
    assert data == [3, 1, 2]
    assert evaluate("toy.sorted", lambda xs: sorted(xs)).passed


def test_messages_say_what_happened(monkeypatch):
    def missing_return(x):
        2 * x
    monkeypatch.setitem(REGISTRY, "toy.double", Exercise("toy.double", [Case((1,))], oracle=_double, hint=""))
    assert "returned None — is a `return` missing?" in str(evaluate("toy.double", missing_return))
    pairs = Exercise("toy.pairs", [Case(())], oracle=lambda: ([np.array([0.6, 0.2])], 0.6), hint="")
    monkeypatch.setitem(REGISTRY, "toy.pairs", pairs)
    text = str(evaluate("toy.pairs", lambda: ([np.array([np.float32(0.6), 0.25])], 0.6)))
    assert "in result[0][0]: entry [1] differs: expected 0.2, got 0.25 (off by 0.05); 1 of 2 entries differ" in text
    text = str(evaluate("toy.pairs", lambda: ([np.array([0.6, 0.2])], 0.5)))
    assert "in result[1]: expected 0.6, got 0.5" in text and "0.5999" not in text
    assert "expected a tuple of 2 items (a list, a float), got a list" in str(
        evaluate("toy.pairs", lambda: [np.array([0.6, 0.2])]))


def test_last_failure_and_example(toy):
    evaluate("toy.double", lambda x: x + 2)
    failure = last_failure()
    assert (failure.exercise, failure.args, failure.expected, failure.got) == ("toy.double", (1,), 2, 3)
    shown = example("toy.double")
    assert (shown.args, shown.expected) == ((1,), 2) and "double(1)" in repr(shown) and "returns 2" in repr(shown)


def test_not_a_function(toy):
    text = str(evaluate("toy.double", 4))
    assert "needs your function itself" in text


def test_unknown_exercise_lists_known_ones():
    with pytest.raises(KeyError, match="no exercise called 'nope.x'.*background.perplexity"):
        evaluate("nope.x", _double)


def test_strip_solutions_keeps_signature_and_indentation():
    source = "import math\n\ndef f(x):\n    \"\"\"Doc.\"\"\"\n    # BEGIN SOLUTION\n    y = x\n    return y\n    # END SOLUTION\n\nprint(1)"
    assert strip_solutions(source) == f"import math\n\ndef f(x):\n    \"\"\"Doc.\"\"\"\n    {STUB}\n\nprint(1)"


@pytest.mark.parametrize("source, match", [
    ("# BEGIN SOLUTION\nx = 1", "without a matching"),
    ("x = 1\n# END SOLUTION", "without a # BEGIN"),
    ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION", "inside another"),
])
def test_strip_solutions_rejects_broken_markers(source, match):
    with pytest.raises(ValueError, match=match):
        strip_solutions(source)


def test_strip_solution_prose_removes_both_fence_styles():
    md = ("Before.\n\n:::{exercise}\n:label: ex\nDo it.\n:::\n\n:::{solution} ex\n:class: dropdown\nSecret.\n:::\n\n"
          "```{solution} ex2\nAlso secret.\n```\nAfter.\n")
    out = strip_solution_prose(md)
    assert "Secret" not in out and "Also secret" not in out
    assert "Do it." in out and "Before." in out and "After." in out


def _toy_notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(":::{exercise}\n:label: toy-ex-1\nDouble it.\n:::\n\n:::{solution} toy-ex-1\n:class: dropdown\nUse 2 * x.\n:::"),
        nbformat.v4.new_code_cell("def double(x):\n    # BEGIN SOLUTION\n    return 2 * x\n    # END SOLUTION",
                                  metadata={"tags": ["hide-input"]}),
        nbformat.v4.new_code_cell('check("toy.double", double)', outputs=[nbformat.v4.new_output("stream", text="✓")],
                                  execution_count=3),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def test_find_solutions_and_selftest_on_a_toy_notebook(tmp_path, toy):
    _toy_notebook(tmp_path / "ch" / "toy.ipynb")
    [cell] = find_solutions(tmp_path / "ch")
    assert (cell.exercise, cell.function) == ("toy.double", "double")
    result = selftest_solution(cell)
    assert result.ok and result.reference_passes and result.stub_fails and result.wrong_answers_caught == 1


def test_selftest_asks_for_the_solution_to_be_folded(tmp_path, toy):
    """A reference solution the book would print unfolded is a problem, as Chapters 8 and 9a once had."""
    path = _toy_notebook(tmp_path / "ch" / "toy.ipynb")
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].metadata["tags"] = []
    nbformat.write(nb, path)
    [cell] = find_solutions(tmp_path / "ch")
    assert not cell.folded
    assert selftest_solution(cell).problems == [
        "the reference solution's cell is not tagged hide-input: the book would show the answer"]


def test_selftest_catches_a_checker_that_accepts_a_wrong_answer(tmp_path, toy, monkeypatch):
    _toy_notebook(tmp_path / "ch" / "toy.ipynb")
    lenient = Exercise("toy.double", toy.cases, oracle=_double, hint="", wrong_answers={"same as reference": _double})
    monkeypatch.setitem(REGISTRY, "toy.double", lenient)
    [cell] = find_solutions(tmp_path / "ch")
    result = selftest_solution(cell)
    assert not result.ok and any("'same as reference' passes" in p for p in result.problems)


def test_solution_without_check_call_is_an_error(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("def f():\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION")]
    (tmp_path / "x").mkdir()
    nbformat.write(nb, tmp_path / "x" / "a.ipynb")
    with pytest.raises(ValueError, match="no check"):
        find_solutions(tmp_path / "x")


def test_student_copy_has_stubs_no_solutions_no_outputs(tmp_path, toy):
    _toy_notebook(tmp_path / "ch" / "sub" / "toy.ipynb")
    [written] = write_student_copies(tmp_path / "ch", tmp_path / "out")
    assert written == (tmp_path / "out" / "sub" / "toy.ipynb").resolve()
    nb = json.loads(written.read_text())
    text = json.dumps(nb)
    assert "return 2 * x" not in text and "Use 2 * x" not in text and "NotImplementedError" in text
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in nb["cells"] if c["cell_type"] == "code")
    namespace: dict = {}
    exec(nb["cells"][1]["source"], namespace)
    assert "Not written yet" in str(evaluate("toy.double", namespace["double"]))


def test_student_copy_drops_answer_cells_and_the_audit_proves_it(tmp_path, toy):
    path = _toy_notebook(tmp_path / "toy.ipynb")
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_markdown_cell("## Exercises"))
    nb.cells.append(nbformat.v4.new_code_cell("assert double(21) == 42  # the by-hand answer"))
    nbformat.write(nb, path)
    assert any("neither a stub nor a check" in p for p in audit_notebook(path))
    nb.cells[-1].metadata["tags"] = ["remove-student"]
    nbformat.write(nb, path)
    assert audit_notebook(path) == []
    assert "double(21)" not in json.dumps(student_notebook(json.loads(path.read_text())))


def test_audit_finds_a_solution_line_left_in_a_student_copy(tmp_path, toy, monkeypatch):
    path = _toy_notebook(tmp_path / "toy.ipynb")
    monkeypatch.setattr("lmcourse.exercises.leaks.student_notebook", lambda nb: nb)  # a broken stripper
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].source = "def double(x):\n    # BEGIN SOLUTION\n    return x + x  # twice x\n    # END SOLUTION"
    nbformat.write(nb, path)
    assert any("a line of the solution in cell 1" in p for p in audit_notebook(path))


def test_student_copies_refuse_to_overwrite_the_chapters(tmp_path):
    _toy_notebook(tmp_path / "ch" / "toy.ipynb")
    before = (tmp_path / "ch" / "toy.ipynb").read_text()
    with pytest.raises(ValueError, match="must be outside"):
        write_student_copies(tmp_path / "ch", tmp_path / "ch" / "student")
    assert (tmp_path / "ch" / "toy.ipynb").read_text() == before


def test_student_copies_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no chapters folder"):
        write_student_copies(tmp_path / "nope", tmp_path / "out")


def test_student_notebook_leaves_the_original_untouched(tmp_path, toy):
    nb = nbformat.read(_toy_notebook(tmp_path / "toy.ipynb"), as_version=4)
    student_notebook(nb)
    assert "return 2 * x" in nb.cells[1].source


# --- the book's own exercises ----------------------------------------------------------------

BOOK_SOLUTIONS = find_solutions(CHAPTERS)


def test_every_registered_exercise_is_in_a_chapter_once():
    load_all()
    assert sorted(c.exercise for c in BOOK_SOLUTIONS) == sorted(REGISTRY)
    assert all(r.ok for r in selftest_all(CHAPTERS))


@pytest.mark.parametrize("cell", BOOK_SOLUTIONS, ids=[c.exercise for c in BOOK_SOLUTIONS])
def test_book_exercise_checker(cell):
    """Reference passes, the student stub fails as unwritten, every typical wrong answer fails."""
    result = selftest_solution(cell)
    assert result.ok, "\n".join(result.problems)
    assert result.wrong_answers_caught >= 1


def test_command_line(tmp_path, capsys):
    assert main(["list"]) == 0
    assert "background.perplexity" in capsys.readouterr().out
    assert main(["selftest", str(CHAPTERS)]) == 0
    assert main(["student", str(CHAPTERS), str(tmp_path / "student")]) == 0
    assert (tmp_path / "student" / "01_background.ipynb").exists()
    assert "# The measured answer" not in (tmp_path / "student" / "01_background.ipynb").read_text()
