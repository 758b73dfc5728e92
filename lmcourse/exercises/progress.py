"""Remember which exercises a reader has passed, across sessions, on their own machine.

`check` records each result in a small JSON file in the user's data directory
(`platformdirs.user_data_dir("lmcourse")`, never in the repository), or in the file that the
environment variable `LMCOURSE_PROGRESS` names (`LMCOURSE_PROGRESS=off` records nothing).
`progress()` and `python -m lmcourse.exercises progress` show, per chapter, how many exercises are
passed, failed (tried, never passed) and not tried. Writes are atomic; a file that is not valid
progress JSON is reported and left as it is, never silently overwritten.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from lmcourse._io import atomic_write_text
from lmcourse.exercises.core import CHAPTER_MODULES, REGISTRY, load_all

ENV_VAR = "LMCOURSE_PROGRESS"
_VERSION = 1


class ProgressError(ValueError):
    """The progress file exists but cannot be read as progress."""


def progress_path() -> Path | None:
    """Where results are recorded: `$LMCOURSE_PROGRESS`, or progress.json in the user's data directory."""
    override = os.environ.get(ENV_VAR)
    if override is not None:
        return None if override.strip().lower() in ("", "off") else Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("lmcourse")) / "progress.json"


def load_results(path: Path | None = None) -> dict[str, dict]:
    """The recorded results, {exercise: {"passed": bool, "last": "passed"|"failed", ...}}."""
    path = progress_path() if path is None else path
    if path is None or not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ProgressError(f"the progress file {path} is not valid JSON ({error}). It was left as it is: "
                            "fix it, or delete it to start afresh.") from None
    results = data.get("exercises") if isinstance(data, dict) else None
    if not isinstance(results, dict) or not all(isinstance(v, dict) for v in results.values()):
        raise ProgressError(f"the progress file {path} does not hold lmcourse progress (no 'exercises' table). "
                            "It was left as it is: fix it, or delete it to start afresh.")
    return results


def record(name: str, passed: bool, cases: str) -> Path | None:
    """Add one result to the progress file (a pass is kept even if a later try fails)."""
    path = progress_path()
    if path is None:
        return None
    results = load_results(path)
    entry = results.get(name, {})
    results[name] = {"passed": bool(entry.get("passed")) or passed, "last": "passed" if passed else "failed",
                     "cases": cases, "when": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    text = json.dumps({"version": _VERSION, "exercises": dict(sorted(results.items()))}, indent=1)
    atomic_write_text(path, text + "\n")
    return path


@dataclass
class Progress:
    """Per chapter: the exercises passed, failed (tried, never passed) and not tried."""

    chapters: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    path: Path | None = None
    problem: str = ""

    def __str__(self) -> str:
        if self.problem:
            return f"Cannot show your progress: {self.problem}"
        width = max([len(c) for c in self.chapters] + [7])
        lines = [f"{'chapter':<{width}}  passed  failed  not tried"]
        for chapter, status in self.chapters.items():
            lines.append(f"{chapter:<{width}}  {len(status['passed']):>6}  {len(status['failed']):>6}  "
                         f"{len(status['not tried']):>9}")
        failed = [name for status in self.chapters.values() for name in status["failed"]]
        if failed:
            lines.append("failed so far: " + ", ".join(failed))
        lines.append(f"(recorded in {self.path})" if self.path else f"(not recorded: {ENV_VAR}=off)")
        return "\n".join(lines)

    __repr__ = __str__


def progress() -> Progress:
    """Your results so far, per chapter (print it, or leave it as the last line of a cell)."""
    load_all()
    path = progress_path()
    try:
        results = load_results(path)
    except ProgressError as error:
        return Progress(path=path, problem=str(error))
    chapters = {}
    for module in CHAPTER_MODULES:
        status: dict[str, list[str]] = {"passed": [], "failed": [], "not tried": []}
        for name in (n for n in REGISTRY if n.split(".")[0] == module):
            entry = results.get(name)
            key = "not tried" if entry is None else "passed" if entry.get("passed") else "failed"
            status[key].append(name)
        chapters[f"{_chapter_number(module)} {module}"] = status
    return Progress(chapters, path)


def _chapter_number(module: str) -> str:
    import importlib

    doc = importlib.import_module(f"lmcourse.exercises.{module}").__doc__ or ""
    match = re.search(r"Chapter (\w+)", doc)
    return match.group(1) if match else "?"
