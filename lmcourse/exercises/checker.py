"""`check(name, fn)`: what a chapter's exercise cell calls. It evaluates, prints the report and
records the result in the reader's progress file (see `progress`)."""

from __future__ import annotations

from typing import Any, Callable

from lmcourse.exercises.core import evaluate
from lmcourse.exercises.progress import ProgressError, record


def check(name: str, fn: Callable[..., Any], hint: int = 1) -> None:
    """Check a reader's function against exercise `name` and print what passed or what went wrong.

    `hint` says how much help a failure prints: 0 none, 1 a short nudge (the default), 2 the full
    hint. An unwritten function (still `raise NotImplementedError`) gets no hint and is not recorded.
    """
    report = evaluate(name, fn)
    report.hint_level = hint
    print(report)
    first = next((r for r in report.results if not r.passed), None)
    if first is not None and first.kind == "unwritten" or first is not None and first.case.label == "(no call made)":
        return
    try:
        record(name, report.passed, report.score)
    except (ProgressError, OSError) as error:
        print(f"(Your result was not recorded: {error})")
