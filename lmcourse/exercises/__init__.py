"""Self-checking exercises: `check("chapter.name", your_function)` runs hidden cases.

Each chapter's checkers live in a module named after the chapter (`background`, ...). The
command line `python -m lmcourse.exercises` writes student copies and runs the self-tests.
"""

from __future__ import annotations

import importlib

from lmcourse.exercises.core import REGISTRY, Case, Exercise, Report, check, evaluate, register

CHAPTER_MODULES = ("background", "ngram", "neural", "recurrent", "attention", "transformer", "bert", "gpt")


def load_all() -> None:
    """Import every chapter's checker module, which registers its exercises."""
    for module in CHAPTER_MODULES:
        importlib.import_module(f"lmcourse.exercises.{module}")


__all__ = ["REGISTRY", "Case", "Exercise", "Report", "check", "evaluate", "load_all", "register"]
