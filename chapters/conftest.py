"""Run the chapter notebooks longest first (``make test-notebooks``): with two workers, the longest
notebooks start at once and the short ones fill in, instead of a long one starting last. A
notebook's length is read from its committed outputs: the cell timestamps of its last run
(:func:`lmcourse.runtimes.last_run_seconds`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmcourse.runtimes import last_run_seconds


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    seconds: dict[Path, float] = {}
    for item in items:
        if item.path.suffix == ".ipynb" and item.path not in seconds:
            seconds[item.path] = last_run_seconds(item.path)
    items.sort(key=lambda item: -seconds.get(item.path, 0.0))  # stable: cells keep their order
