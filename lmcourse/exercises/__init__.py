"""Self-checking exercises: `check("chapter.name", your_function)` runs hidden cases.

Each chapter's checkers live in a module named after the chapter (`background`, ...). Besides
`check`: `example(name)` shows one case with its answer, `last_failure()` returns the input of the
last failing case, and `progress()` shows which exercises you have passed. The command line
`python -m lmcourse.exercises` writes student copies, runs the self-tests and shows progress.
"""

from __future__ import annotations

from lmcourse.exercises.checker import check
from lmcourse.exercises.core import (CHAPTER_MODULES, REGISTRY, Case, Example, Exercise, Failure, Report, evaluate,
                                     example, last_failure, load_all, register)
from lmcourse.exercises.progress import progress

__all__ = ["CHAPTER_MODULES", "REGISTRY", "Case", "Example", "Exercise", "Failure", "Report", "check", "evaluate",
           "example", "last_failure", "load_all", "progress", "register"]
