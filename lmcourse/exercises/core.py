"""The checker: run a reader's function on hidden cases and explain what went wrong.

An `Exercise` holds the cases, a trusted oracle that computes the expected answers, a hint (a
short nudge shown on a failure, the full hint on request), and the typical wrong answers that the
self-tests prove it catches. `evaluate` runs a function on the cases and returns a `Report`.

Student code is untrusted in the mild sense: it may raise, return the wrong type, change its
inputs or loop forever. Each case gets a deep copy of its inputs, which are compared with the
originals after the call; each call has a time limit (a worker thread, see `runner`), and the
first case that runs out of time ends the check. `last_failure()` hands back the input of the
last failing case, and `example(name)` shows one case with its answer.
"""

from __future__ import annotations

import copy
import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from lmcourse.exercises.compare import a_type, compare, same, short
from lmcourse.exercises.runner import TimeLimitExceeded, call_with_time_limit

CHAPTER_MODULES = ("background", "ngram", "neural", "recurrent", "attention", "transformer", "bert", "gpt", "llm",
                   "adapt", "apps", "scaling", "challenges")
REGISTRY: dict[str, "Exercise"] = {}


def load_all() -> None:
    """Import every chapter's checker module, which registers its exercises."""
    for module in CHAPTER_MODULES:
        importlib.import_module(f"lmcourse.exercises.{module}")


@dataclass(frozen=True)
class Case:
    """One hidden input: positional arguments, keyword arguments and a readable label."""

    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    label: str = ""

    def describe(self) -> str:
        if self.label:
            return self.label
        parts = [short(a, 60) for a in self.args] + [f"{k}={short(v, 60)}" for k, v in self.kwargs.items()]
        return f"({', '.join(parts)})"


@dataclass(frozen=True)
class Exercise:
    """A self-checking code exercise.

    `oracle` computes the expected answer for each case (a trusted implementation: the package's
    own, torch, or a formula); `wrong_answers` are typical mistakes, each of which must fail.
    `nudge` is the one-line hint shown on a failure (default: the hint's first sentence); `example`
    the case that `example(name)` shows (default: the first case).
    """

    name: str
    cases: Sequence[Case]
    oracle: Callable[..., Any]
    hint: str
    wrong_answers: dict[str, Callable[..., Any]] = field(default_factory=dict)
    rel_tol: float = 1e-6
    abs_tol: float = 1e-9
    time_limit: float = 5.0
    nudge: str = ""
    example: Case | None = None
    _expected: dict = field(default_factory=dict, compare=False, repr=False)

    def expected(self, case: Case) -> Any:
        """The oracle's answer for `case` (computed once: the oracles are deterministic)."""
        key = id(case)
        if key not in self._expected:
            self._expected[key] = (case, self.oracle(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs)))
        return self._expected[key][1]

    @property
    def short_hint(self) -> str:
        return self.nudge or self.hint.split(". ")[0].rstrip(".") + "."


def register(exercise: Exercise) -> Exercise:
    """Add an exercise to the registry under its name (names are unique)."""
    if exercise.name in REGISTRY:
        raise ValueError(f"exercise {exercise.name!r} is registered twice")
    REGISTRY[exercise.name] = exercise
    return exercise


def get_exercise(name: str) -> Exercise:
    load_all()
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise KeyError(f"no exercise called {name!r}; the exercises are: {known}") from None


# --- running the cases -----------------------------------------------------------------------


@dataclass
class CaseResult:
    case: Case
    passed: bool
    message: str = ""
    kind: str = "ok"  # ok, wrong, error, unwritten, timeout
    got: Any = None


@dataclass
class Report:
    """What `evaluate` found: one result per case run, and how to read them.

    `hint_level` says how much help `str(report)` gives after a failure: 0 none, 1 a nudge, 2 the
    full hint. An unwritten stub gets no hint at all."""

    name: str
    results: list[CaseResult]
    exercise: Exercise
    hint_level: int = 1

    @property
    def passed(self) -> bool:
        return bool(self.results) and len(self.results) == len(self.exercise.cases) and all(
            r.passed for r in self.results)

    @property
    def score(self) -> str:
        return f"{sum(r.passed for r in self.results)} of {len(self.exercise.cases)}"

    def __str__(self) -> str:
        total = len(self.exercise.cases)
        if self.passed:
            return f"✓ {self.name}: all {total} hidden cases passed."
        first = next(r for r in self.results if not r.passed)
        if first.kind == "unwritten":
            return f"✗ {self.name}: {first.message}"
        if first.kind == "timeout":
            head = f"✗ {self.name}: stopped at hidden case {len(self.results)} of {total}, the first to run out of time."
        else:
            head = f"✗ {self.name}: {self.score} hidden cases passed."
        lines = [head, f"  First failure, on input {first.case.describe()}:"]
        lines += ["    " + line for line in first.message.splitlines()]
        lines.append("  (last_failure() returns this input, to run your function on it yourself.)")
        lines += self._hint_lines()
        return "\n".join(lines)

    def _hint_lines(self) -> list[str]:
        if self.hint_level <= 0:
            return []
        if self.hint_level == 1:
            function = self.name.split(".")[-1]
            return [f"  Hint: {self.exercise.short_hint}",
                    f"  (More help: check(\"{self.name}\", {function}, hint=2).)"]
        return [f"  Hint: {self.exercise.hint}"]


def evaluate(name: str, fn: Callable[..., Any]) -> Report:
    """Run `fn` on the hidden cases of exercise `name` and compare with the oracle.

    Stops at the first case that runs out of time (so a loop costs one time limit, not one per
    case) and at a stub's NotImplementedError."""
    exercise = get_exercise(name)
    if not callable(fn):
        msg = f"check() needs your function itself, but got {a_type(fn)}. Pass the name without ()."
        return Report(name, [CaseResult(Case(label="(no call made)"), False, msg, "error")], exercise)
    results: list[CaseResult] = []
    for case in exercise.cases:
        results.append(_run_case(exercise, case, fn))
        if results[-1].kind in ("unwritten", "timeout"):
            break
    report = Report(name, results, exercise)
    failed = next((r for r in results if not r.passed), None)
    if failed is not None:
        _remember(exercise, failed)
    return report


_UNWRITTEN = ("Not written yet: your function raised NotImplementedError.\n"
              "  Replace the `raise NotImplementedError` line with your code, run the cell, then run this check "
              "again.\n  To see one input and its answer first: from lmcourse.exercises import example; "
              "example(\"{name}\")")


def _run_case(exercise: Exercise, case: Case, fn: Callable[..., Any]) -> CaseResult:
    expected = exercise.expected(case)
    args, kwargs = copy.deepcopy(case.args), copy.deepcopy(case.kwargs)
    try:
        got = call_with_time_limit(fn, args, kwargs, exercise.time_limit)
    except NotImplementedError:
        return CaseResult(case, False, _UNWRITTEN.format(name=exercise.name), "unwritten")
    except TimeLimitExceeded as error:
        still = "" if error.stopped else (" It could not be stopped at once (it is inside a long library call) "
                                          "and may keep a CPU busy until that call returns.")
        return CaseResult(case, False, f"Your function took longer than {exercise.time_limit:g} s and was stopped, "
                          f"so the other cases were not run. Look for a loop that never ends.{still}", "timeout")
    except Exception as error:  # noqa: BLE001 - any error in student code becomes feedback
        return CaseResult(case, False, f"Your function raised {type(error).__name__}: {error}", "error")
    problem = compare(expected, got, exercise.rel_tol, exercise.abs_tol)
    changed = _changed_inputs(fn, case, args, kwargs)
    if not problem and not changed:
        return CaseResult(case, True, got=got)
    lines = [f"expected: {short(expected)}", f"got:      {short(got)}", problem] if problem else []
    if changed:
        names = ", ".join(f"`{n}`" for n in changed)
        lines.append(f"your function changed its input {names}: the caller's data must stay as it was. "
                     "Work on a copy (for example x = x.copy(), or build a new list or dict).")
    return CaseResult(case, False, "\n".join(lines), "wrong", got)


def _changed_inputs(fn: Callable[..., Any], case: Case, args: tuple, kwargs: dict) -> list[str]:
    """Names of the arguments that the call changed (compared with the case's untouched originals)."""
    try:
        names = list(inspect.signature(fn).bind(*args, **kwargs).arguments)[: len(args)]
    except (TypeError, ValueError):
        names = []
    names += [f"argument {i + 1}" for i in range(len(names), len(args))]
    changed = [names[i] for i, (before, after) in enumerate(zip(case.args, args)) if not same(before, after)]
    return changed + [k for k in case.kwargs if not same(case.kwargs[k], kwargs[k])]


# --- for the reader: the last failing input, and one visible example -------------------------


def _call_text(args: tuple, kwargs: dict) -> str:
    """The arguments of a call as the reader would type them, each shortened to 300 characters."""
    return ", ".join([short(a, 300) for a in args] + [f"{k}={short(v, 300)}" for k, v in kwargs.items()])


@dataclass
class Failure:
    """The input of the last failing case: call `fn(*failure.args, **failure.kwargs)` to debug."""

    exercise: str
    label: str
    args: tuple
    kwargs: dict
    expected: Any
    got: Any
    message: str

    def __repr__(self) -> str:
        call = _call_text(self.args, self.kwargs)
        return (f"Failure of {self.exercise} on {self.label}\n  args: ({call})\n  expected: {short(self.expected, 300)}"
                f"\n  got:      {short(self.got, 300)}")


_LAST: list[Failure] = []


def _remember(exercise: Exercise, result: CaseResult) -> None:
    case = result.case
    if case.label == "(no call made)":
        return
    _LAST[:] = [Failure(exercise.name, case.describe(), copy.deepcopy(case.args), copy.deepcopy(case.kwargs),
                        exercise.expected(case), result.got, result.message)]


def last_failure() -> Failure | None:
    """The input (and expected answer) of the case that failed last, or None if nothing failed yet."""
    return _LAST[0] if _LAST else None


@dataclass
class Example:
    """One visible case of an exercise: call `fn(*ex.args, **ex.kwargs)` and compare with `ex.expected`."""

    exercise: str
    label: str
    args: tuple
    kwargs: dict
    expected: Any

    def __repr__(self) -> str:
        call = _call_text(self.args, self.kwargs)
        return (f"Example for {self.exercise} ({self.label}):\n  {self.exercise.split('.')[-1]}({call})"
                f"\n  returns {short(self.expected, 300)}")


def example(name: str) -> Example:
    """One case of exercise `name` with its answer, to try your function on before `check`."""
    exercise = get_exercise(name)
    case = exercise.example or exercise.cases[0]
    return Example(name, case.describe(), copy.deepcopy(case.args), copy.deepcopy(case.kwargs),
                   copy.deepcopy(exercise.expected(case)))
