import json
import time
from pathlib import Path

import nbformat
import pytest

from lmcourse.exercises import REGISTRY, Case, Exercise, check, evaluate, load_all
from lmcourse.exercises.__main__ import main
from lmcourse.exercises.notebooks import (STUB, find_solutions, strip_solution_prose, strip_solutions,
                                          student_notebook, write_student_copies)
from lmcourse.exercises.selftest import selftest_all, selftest_solution

CHAPTERS = Path(__file__).resolve().parent.parent / "chapters"


def _double(x):
    return 2 * x


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


def test_stub_gets_friendly_message(toy):
    def stub(x):
        raise NotImplementedError
    text = str(evaluate("toy.double", stub))
    assert "Not written yet" in text and "Traceback" not in text


def test_exception_in_student_code_is_reported(toy):
    text = str(evaluate("toy.double", lambda x: 1 / 0))
    assert "raised ZeroDivisionError: division by zero" in text


def test_wrong_type_is_reported(toy):
    assert "expected a number, got a str" in str(evaluate("toy.double", lambda x: str(2 * x)))


def test_infinite_loop_is_stopped(toy):
    def forever(x):
        while True:
            pass
    start = time.perf_counter()
    text = str(evaluate("toy.double", forever))
    assert "Took longer than 0.3 s" in text
    assert time.perf_counter() - start < 5


def test_inputs_are_copied_so_student_mutation_does_not_leak(monkeypatch):
    data = [3, 1, 2]
    exercise = Exercise("toy.sorted", [Case((data,))], oracle=sorted, hint="", wrong_answers={})
    monkeypatch.setitem(REGISTRY, "toy.sorted", exercise)

    def sorts_in_place(xs):
        xs.sort()
        return xs
    assert evaluate("toy.sorted", sorts_in_place).passed
    assert data == [3, 1, 2]


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
        nbformat.v4.new_code_cell("def double(x):\n    # BEGIN SOLUTION\n    return 2 * x\n    # END SOLUTION"),
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
