"""The checker: run a reader's function on hidden cases and explain what went wrong.

An `Exercise` holds the cases, a trusted oracle that computes the expected answers, a hint, and
the typical wrong answers that the self-tests prove it catches. `evaluate` runs a function on the
cases and returns a `Report`; `check` prints that report, which is what a chapter calls.

Student code is untrusted in the mild sense: it may raise, return the wrong type, mutate its
inputs or loop forever. Each case gets a deep copy of its inputs and a time limit (enforced with
`SIGALRM`, so only in the main thread of a Unix process, which is where notebooks run).
"""

from __future__ import annotations

import copy
import math
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np

REGISTRY: dict[str, "Exercise"] = {}


@dataclass(frozen=True)
class Case:
    """One hidden input: positional arguments, keyword arguments and a readable label."""

    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    label: str = ""

    def describe(self) -> str:
        if self.label:
            return self.label
        parts = [_short(a) for a in self.args] + [f"{k}={_short(v)}" for k, v in self.kwargs.items()]
        return f"({', '.join(parts)})"


@dataclass(frozen=True)
class Exercise:
    """A self-checking code exercise.

    `oracle` computes the expected answer for each case (a trusted implementation: the package's
    own, torch, or a formula); `wrong_answers` are typical mistakes, each of which must fail.
    """

    name: str
    cases: Sequence[Case]
    oracle: Callable[..., Any]
    hint: str
    wrong_answers: dict[str, Callable[..., Any]] = field(default_factory=dict)
    rel_tol: float = 1e-6
    abs_tol: float = 1e-9
    time_limit: float = 5.0

    def expected(self, case: Case) -> Any:
        return self.oracle(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))


def register(exercise: Exercise) -> Exercise:
    """Add an exercise to the registry under its name (names are unique)."""
    if exercise.name in REGISTRY:
        raise ValueError(f"exercise {exercise.name!r} is registered twice")
    REGISTRY[exercise.name] = exercise
    return exercise


@dataclass
class CaseResult:
    case: Case
    passed: bool
    message: str = ""


@dataclass
class Report:
    """What `evaluate` found: one result per case, and how to read them."""

    name: str
    results: list[CaseResult]
    hint: str

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    def __str__(self) -> str:
        n_ok = sum(r.passed for r in self.results)
        total = len(self.results)
        if self.passed:
            return f"✓ {self.name}: all {total} hidden cases passed."
        lines = [f"✗ {self.name}: {n_ok} of {total} hidden cases passed."]
        first = next(r for r in self.results if not r.passed)
        lines.append(f"  First failure, on input {first.case.describe()}:")
        lines.extend("    " + line for line in first.message.splitlines())
        lines.append(f"  Hint: {self.hint}")
        return "\n".join(lines)


class _TimeLimitExceeded(Exception):
    pass


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise `_TimeLimitExceeded` after `seconds` of wall time (main thread only; else no limit)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def on_alarm(signum, frame):  # noqa: ARG001 - signal handler signature
        raise _TimeLimitExceeded

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def evaluate(name: str, fn: Callable[..., Any]) -> Report:
    """Run `fn` on every hidden case of exercise `name` and compare with the oracle."""
    exercise = get_exercise(name)
    if not callable(fn):
        msg = f"check() needs your function itself, but got {_type_name(fn)}. Pass the name without ()."
        return Report(name, [CaseResult(Case(label="(no call made)"), False, msg)], exercise.hint)
    results = [_run_case(exercise, case, fn) for case in exercise.cases]
    return Report(name, results, exercise.hint)


def check(name: str, fn: Callable[..., Any]) -> None:
    """Check a reader's function against exercise `name` and print what passed or what went wrong."""
    print(evaluate(name, fn))


def get_exercise(name: str) -> Exercise:
    from lmcourse.exercises import load_all

    load_all()
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise KeyError(f"no exercise called {name!r}; the exercises are: {known}") from None


def _run_case(exercise: Exercise, case: Case, fn: Callable[..., Any]) -> CaseResult:
    expected = exercise.expected(case)
    args, kwargs = copy.deepcopy(case.args), copy.deepcopy(case.kwargs)
    try:
        with _time_limit(exercise.time_limit):
            got = fn(*args, **kwargs)
    except NotImplementedError:
        return CaseResult(case, False, "Not written yet: your function raised NotImplementedError.\n"
                          "Replace the `raise NotImplementedError` line with your code, run the cell, "
                          "then run this check again.")
    except _TimeLimitExceeded:
        return CaseResult(case, False, f"Took longer than {exercise.time_limit:g} s and was stopped. "
                          "Look for a loop that never ends.")
    except Exception as error:  # noqa: BLE001 - any error in student code becomes feedback
        return CaseResult(case, False, f"Your function raised {type(error).__name__}: {error}")
    problem = _compare(expected, got, exercise.rel_tol, exercise.abs_tol)
    if problem:
        return CaseResult(case, False, f"expected: {_short(expected)}\ngot:      {_short(got)}\n({problem})")
    return CaseResult(case, True)


def _compare(expected: Any, got: Any, rel_tol: float, abs_tol: float) -> str:
    """Return '' if `got` matches `expected`, else a short reason. Numbers compare with tolerance."""
    if hasattr(got, "detach") and hasattr(got, "numpy"):  # a torch tensor
        got = got.detach().cpu().numpy()
    if isinstance(expected, bool) or expected is None or isinstance(expected, str):
        if type(got) is not type(expected):
            return f"expected a {_type_name(expected)}, got a {_type_name(got)}"
        return "" if got == expected else "the values differ"
    if isinstance(expected, (int, float, np.integer, np.floating)):
        if isinstance(got, np.ndarray) and got.shape == ():
            got = got.item()
        if not isinstance(got, (int, float, np.integer, np.floating)) or isinstance(got, bool):
            return f"expected a number, got a {_type_name(got)}"
        if math.isnan(expected) or math.isinf(expected):
            same = (math.isnan(expected) and math.isnan(got)) or expected == got
            return "" if same else "the values differ"
        return "" if math.isclose(got, expected, rel_tol=rel_tol, abs_tol=abs_tol) else "the values differ"
    if isinstance(expected, np.ndarray):
        try:
            got_arr = np.asarray(got, dtype=float)
        except (TypeError, ValueError):
            return f"expected an array, got a {_type_name(got)}"
        if got_arr.shape != expected.shape:
            return f"expected shape {expected.shape}, got shape {got_arr.shape}"
        ok = np.allclose(got_arr, expected, rtol=rel_tol, atol=abs_tol, equal_nan=True)
        return "" if ok else "some entries differ"
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return f"expected a dict, got a {_type_name(got)}"
        if set(got) != set(expected):
            missing, extra = set(expected) - set(got), set(got) - set(expected)
            return f"keys differ: missing {_short(sorted(missing, key=repr))}, unexpected {_short(sorted(extra, key=repr))}"
        for key in expected:
            problem = _compare(expected[key], got[key], rel_tol, abs_tol)
            if problem:
                return f"at key {key!r}: {problem}"
        return ""
    if isinstance(expected, (list, tuple)):
        if not isinstance(got, (list, tuple)):
            return f"expected a {_type_name(expected)}, got a {_type_name(got)}"
        if len(got) != len(expected):
            return f"expected {len(expected)} items, got {len(got)}"
        for i, (e, g) in enumerate(zip(expected, got)):
            problem = _compare(e, g, rel_tol, abs_tol)
            if problem:
                return f"at position {i}: {problem}"
        return ""
    return "" if got == expected else "the values differ"


def _type_name(value: Any) -> str:
    return type(value).__name__


def _short(value: Any, limit: int = 120) -> str:
    if isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, np.ndarray):
        text = np.array2string(value, precision=4, threshold=12)
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
