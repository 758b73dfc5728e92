"""Prove that every exercise checker, and every student copy, is worth trusting.

For each exercise found in the chapters: the reference solution passes; the student stub fails
with the "not written yet" message and no hint; every registered typical wrong answer fails
(among them, where they apply, answers that change their input, return the wrong type, or get an
edge case of the statement wrong). Every registered exercise is used by exactly one notebook and
every checked name is registered. Finally, no student copy holds an answer (`leaks`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from lmcourse.exercises.core import REGISTRY, Report, evaluate, load_all
from lmcourse.exercises.leaks import audit_student_copies
from lmcourse.exercises.notebooks import SolutionCell, find_solutions


@dataclass
class SelfTestResult:
    exercise: str
    problems: list[str]
    reference_passes: bool = False
    stub_fails: bool = False
    wrong_answers_caught: int = 0
    wrong_answers: int = 0
    summary: str = ""  # a one-line result for checks that are not an exercise (the student copies)

    @property
    def ok(self) -> bool:
        return not self.problems


def _function_from(source: str, name: str, origin: str) -> Callable[..., Any]:
    namespace: dict[str, Any] = {"__name__": "__exercise__"}
    exec(compile(source, origin, "exec"), namespace)  # noqa: S102 - our own committed notebook cells
    if name not in namespace:
        raise NameError(f"{origin}: the cell does not define {name!r}")
    return namespace[name]


def selftest_solution(cell: SolutionCell) -> SelfTestResult:
    """Run the three proofs for one exercise."""
    origin = f"{cell.notebook.name}[cell {cell.cell_index}]"
    problems: list[str] = []
    if not cell.folded:
        problems.append("the reference solution's cell is not tagged hide-input: the book would show the answer")
    reference: Report = evaluate(cell.exercise, _function_from(cell.source, cell.function, origin))
    if not reference.passed:
        problems.append(f"the reference solution fails:\n{reference}")
    stub = str(evaluate(cell.exercise, _function_from(cell.stub_source(), cell.function, origin + " (stub)")))
    stub_fails = "Not written yet" in stub and "Hint" not in stub
    if not stub_fails:
        problems.append(f"the stub is not reported as unwritten without a hint:\n{stub}")
    wrong = REGISTRY[cell.exercise].wrong_answers
    if not wrong:
        problems.append("no typical wrong answer is registered")
    caught = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # wrong answers overflow on purpose
        for label, fn in wrong.items():
            if evaluate(cell.exercise, fn).passed:
                problems.append(f"the wrong answer {label!r} passes the checker")
            else:
                caught += 1
    return SelfTestResult(cell.exercise, problems, reference.passed, stub_fails, caught, len(wrong))


def selftest_all(chapters: Path) -> list[SelfTestResult]:
    """Self-test every exercise in `chapters`, the registry's coverage, and the student copies."""
    load_all()
    cells = find_solutions(Path(chapters))
    results = [selftest_solution(cell) for cell in cells]
    used = [cell.exercise for cell in cells]
    for name in sorted(set(REGISTRY) - set(used)):
        results.append(SelfTestResult(name, ["registered but not used in any chapter"]))
    for name in sorted({n for n in used if used.count(n) > 1}):
        results.append(SelfTestResult(name, ["has more than one reference solution in the chapters"]))
    audited, leaks = audit_student_copies(Path(chapters))
    results.append(SelfTestResult("student copies", leaks, summary=f"{audited} notebooks, "
                                  + ("no answer left in them" if not leaks else f"{len(leaks)} answers left")))
    return results
