"""Run the chapter notebooks longest first (``make test-notebooks``): with two workers, the longest
notebooks start at once and the short ones fill in, instead of a long one starting last. A
notebook's length is read from its committed outputs: the cell timestamps of its last run."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest


def last_run_seconds(path: Path) -> float:
    """Seconds from the first cell's start to the last cell's end in the notebook's last recorded
    run (0 when it records none)."""
    stamps = []
    for cell in json.loads(path.read_text(encoding="utf-8")).get("cells", []):
        execution = cell.get("metadata", {}).get("execution", {})
        for key in ("iopub.execute_input", "shell.execute_reply"):
            if key in execution:
                stamps.append(datetime.fromisoformat(execution[key].replace("Z", "+00:00")))
    return (max(stamps) - min(stamps)).total_seconds() if stamps else 0.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    seconds: dict[Path, float] = {}
    for item in items:
        if item.path.suffix == ".ipynb" and item.path not in seconds:
            seconds[item.path] = last_run_seconds(item.path)
    items.sort(key=lambda item: -seconds.get(item.path, 0.0))  # stable: cells keep their order
