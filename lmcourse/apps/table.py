"""The applications table, ``data/applications.csv`` (Chapter 9): one row per task, dataset,
method and metric, each with its interval, the split it was measured on and the CPU seconds the
method took, so that every application in the book is a number beside a baseline.

Re-running a notebook replaces its rows (same task, dataset, method and metric) and keeps the rest;
writes are atomic and locked, as for :mod:`lmcourse.metrics`' results table. The book's page of
results renders it with :func:`applications_table`.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from lmcourse._io import DATA_DIR, atomic_write_text, exclusive_lock

__all__ = ["AppResult", "applications_path", "load_applications", "record_applications", "applications_table"]

_COLUMNS = ["task", "dataset", "method", "metric", "value", "ci_low", "ci_high", "split", "seconds", "chapter"]


@dataclass(frozen=True)
class AppResult:
    """One method's score on one task: `value` with its 95% interval (``ci_low``, ``ci_high``; nan
    when not measured), on `split` (e.g. ``"5-fold CV"``, ``"test"``), in `seconds` of CPU time."""

    task: str  # e.g. "sentiment"
    dataset: str  # e.g. "Pang & Lee polarity, 200 sentences"
    method: str  # e.g. "bag of words + logistic regression"
    metric: str  # e.g. "accuracy"
    value: float
    split: str
    seconds: float
    ci_low: float = math.nan
    ci_high: float = math.nan
    chapter: str = "9"

    def __post_init__(self) -> None:
        for name in ("task", "dataset", "method", "metric", "split", "chapter"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise ValueError(f"AppResult.{name} must be a non-empty string, got {getattr(self, name)!r}")
        if not math.isfinite(self.value):
            raise ValueError(f"value must be a finite number, got {self.value!r}")
        if not self.seconds >= 0:
            raise ValueError(f"seconds must be >= 0, got {self.seconds!r}")
        low, high = float(self.ci_low), float(self.ci_high)
        if math.isnan(low) != math.isnan(high) or (not math.isnan(low) and not low <= self.value <= high):
            raise ValueError(f"the interval ({low}, {high}) must hold value={self.value} (give both ends or neither)")

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What a new row replaces: the same task, dataset, method and metric."""
        return self.task, self.dataset, self.method, self.metric


def applications_path() -> Path:
    """``$LMCOURSE_APPLICATIONS`` if set, else ``data/applications.csv`` in the repository."""
    override = os.environ.get("LMCOURSE_APPLICATIONS")
    return Path(override) if override else DATA_DIR / "applications.csv"


def _float(text: str) -> float:
    return float(text) if text else math.nan


def load_applications(path: str | Path | None = None) -> list[AppResult]:
    """The rows of the table (empty if the file does not exist yet)."""
    path = Path(path) if path else applications_path()
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames != _COLUMNS:
            raise ValueError(f"{path} has columns {reader.fieldnames}, expected {_COLUMNS}; move it aside and "
                             "re-run the notebooks to rebuild it")
        return [AppResult(row["task"], row["dataset"], row["method"], row["metric"], float(row["value"]),
                          row["split"], float(row["seconds"]), _float(row["ci_low"]), _float(row["ci_high"]),
                          row["chapter"]) for row in reader]


def record_applications(results: Sequence[AppResult], path: str | Path | None = None,
                        replace_chapter: str | None = None) -> list[AppResult]:
    """Add `results` to the table, each replacing an earlier row with the same key; return the table.

    With `replace_chapter`, every earlier row of that chapter goes first: a notebook that renamed
    or dropped a method leaves no stale row behind. Its `results` must all belong to that chapter.
    """
    if isinstance(results, AppResult) or not all(isinstance(r, AppResult) for r in results):
        raise TypeError("results must be a list of AppResult rows (for one row, give [row])")
    if replace_chapter is not None and any(r.chapter != replace_chapter for r in results):
        raise ValueError(f"replace_chapter={replace_chapter!r} would replace that chapter's rows, but some results "
                         f"belong to chapter {sorted({r.chapter for r in results} - {replace_chapter})}")
    path = Path(path) if path else applications_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(path):
        rows = {row.key: row for row in load_applications(path) if row.chapter != replace_chapter}
        rows.update({row.key: row for row in results})
        handle = io.StringIO()
        writer = csv.DictWriter(handle, fieldnames=_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows.values():
            values = asdict(row)
            for name in ("value", "ci_low", "ci_high"):
                values[name] = "" if math.isnan(values[name]) else f"{values[name]:.6g}"
            values["seconds"] = f"{values['seconds']:.2f}"
            writer.writerow(values)
        atomic_write_text(path, handle.getvalue())
    return load_applications(path)


def applications_table(path: str | Path | None = None, task: str | None = None):
    """The table as a pandas DataFrame (one task's rows if `task` is given), ready to display."""
    import pandas as pd

    rows = [asdict(r) for r in load_applications(path) if task is None or r.task == task]
    return pd.DataFrame(rows, columns=_COLUMNS)
