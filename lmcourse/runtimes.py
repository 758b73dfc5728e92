"""What each chapter notebook costs to run, read from the notebook itself: the time stamps Jupyter
records in every executed cell (``metadata.execution``), the peak memory :func:`execute_notebook`
records in its metadata, and the comment on its ``FULL_RUN`` switch.

The book's cost page (``chapters/costs.ipynb``) tabulates them, ``chapters/conftest.py`` runs the
longest notebooks first with :func:`last_run_seconds`, and each chapter states its own run time under
its title, a line that :func:`stamp_run_time` writes from the same time stamps. ``python -m
lmcourse.runtimes execute chapters/*.ipynb`` (``make execute``) runs each notebook in place and does
both; ``python -m lmcourse.runtimes stamp ...`` only restamps; a test checks that every line agrees
with its notebook. The numbers are those of the run whose outputs are committed: one CPU thread on the
machine that executed the notebook last.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from lmcourse.exercises.notebooks import cell_source, read_notebook

__all__ = ["last_run_seconds", "full_run_switch", "peak_memory_mib", "executed_on", "machine_name", "NotebookCost",
           "notebook_cost", "chapter_costs", "run_time_line", "stated_run_time", "stamp_run_time", "execute_notebook"]

_SWITCH = re.compile(r"^FULL_RUN\s*=\s*False\s*#\s*(.+)$", re.MULTILINE)


def _cells(path: str | Path) -> list[dict]:
    return read_notebook(Path(path)).get("cells", [])


def _recorded(notebook: dict) -> dict:
    """What :func:`execute_notebook` wrote into the notebook's metadata (empty if it did not run it)."""
    return notebook.get("metadata", {}).get("lmcourse", {})


def peak_memory_mib(path: str | Path) -> float | None:
    """The largest resident memory (MiB) of the kernel, or of any process it started, in the notebook's
    last run by :func:`execute_notebook`; None if that run was not recorded so."""
    return _recorded(read_notebook(Path(path))).get("peak_memory_mib")


def executed_on(path: str | Path) -> str | None:
    """The :func:`machine_name` of the notebook's last run by :func:`execute_notebook`, or None."""
    return _recorded(read_notebook(Path(path))).get("machine")


def machine_name() -> str:
    """This machine's processor and its number of cores, e.g. ``"AMD EPYC, 2 cores"``: timings (and, on
    some operations, the last digits of results) depend on it."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        name = next(line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        name = platform.processor() or platform.machine() or "unknown processor"
    return f"{name}, {os.cpu_count()} cores"


def _cell_span(cell: dict) -> tuple[datetime, datetime] | None:
    """When a cell started and finished in the last run, or None if it records no run."""
    execution = cell.get("metadata", {}).get("execution", {})
    if "iopub.execute_input" not in execution or "shell.execute_reply" not in execution:
        return None
    start, end = (datetime.fromisoformat(execution[key].replace("Z", "+00:00"))
                  for key in ("iopub.execute_input", "shell.execute_reply"))
    return start, end


def _run_seconds(cells: list[dict]) -> float:
    spans = [span for span in map(_cell_span, cells) if span]
    return (max(end for _, end in spans) - min(start for start, _ in spans)).total_seconds() if spans else 0.0


def _switch(cells: list[dict]) -> str | None:
    for cell in cells:
        match = _SWITCH.search(cell_source(cell)) if cell.get("cell_type") == "code" else None
        if match:
            return match.group(1).strip()
    return None


def last_run_seconds(path: str | Path) -> float:
    """Seconds from the first cell's start to the last cell's end in the notebook's last recorded
    run (0 when it records none)."""
    return _run_seconds(_cells(path))


def full_run_switch(path: str | Path) -> str | None:
    """What the notebook's ``FULL_RUN = True`` does and costs, as its comment says (None: no switch)."""
    return _switch(_cells(path))


@dataclass(frozen=True)
class NotebookCost:
    """One notebook's last recorded run."""

    notebook: str  # file name, e.g. "06_gpt.ipynb"
    title: str  # its first heading, e.g. "6. GPT"
    seconds: float  # first cell's start to last cell's end
    slowest_seconds: float  # the slowest cell
    full_run: str | None  # the FULL_RUN switch's comment, or None
    peak_memory_mib: float | None = None  # see peak_memory_mib(); None: not recorded
    machine: str | None = None  # see executed_on(); None: not recorded


def notebook_cost(path: str | Path) -> NotebookCost:
    """The :class:`NotebookCost` of one executed notebook."""
    notebook = read_notebook(Path(path))
    cells, recorded = notebook.get("cells", []), _recorded(notebook)
    heading = next((line.lstrip("# ").strip() for cell in cells if cell.get("cell_type") == "markdown"
                    for line in cell_source(cell).splitlines() if line.startswith("# ")), Path(path).stem)
    slowest = max(((end - start).total_seconds() for start, end in filter(None, map(_cell_span, cells))), default=0.0)
    return NotebookCost(Path(path).name, heading, _run_seconds(cells), slowest, _switch(cells),
                        recorded.get("peak_memory_mib"), recorded.get("machine"))


def chapter_costs(directory: str | Path, pattern: str = "[0-9]*.ipynb") -> list[NotebookCost]:
    """The cost of every chapter notebook in `directory` (those matching `pattern`), in file order."""
    paths = sorted(Path(directory).glob(pattern))
    if not paths:
        raise FileNotFoundError(f"no notebook matching {pattern!r} in {directory}")
    return [notebook_cost(p) for p in paths]


_RUN_TIME = re.compile(r"^\*Run time: .*\*$", re.MULTILINE)


def run_time_line(seconds: float) -> str:
    """The sentence a chapter states under its title, e.g. ``*Run time: about 7 minutes ...*``.

    >>> run_time_line(400)
    '*Run time: about 7 minutes on one CPU thread, as last executed (every chapter: {doc}`costs`).*'
    """
    minutes = round(seconds / 60)
    amount = "under a minute" if seconds < 60 else f"about {minutes} minute{'s' if minutes != 1 else ''}"
    return f"*Run time: {amount} on one CPU thread, as last executed (every chapter: {{doc}}`costs`).*"


def _title_cell(cells: list[dict], path: str | Path) -> dict:
    for cell in cells:
        if cell.get("cell_type") == "markdown" and any(line.startswith("# ") for line in cell_source(cell).splitlines()):
            return cell
    raise ValueError(f"{path} has no markdown cell with a '# ' title to put its run time under")


def stated_run_time(path: str | Path) -> str | None:
    """The run-time line under the notebook's title, or None if it states none."""
    match = _RUN_TIME.search(cell_source(_title_cell(_cells(path), path)))
    return match.group(0) if match else None


def stamp_run_time(path: str | Path) -> bool:
    """Write (or rewrite) the run-time line under the notebook's title from its last recorded run;
    True if the file changed. A notebook that records no run is refused."""
    import nbformat

    notebook = nbformat.read(Path(path), as_version=4)
    seconds = _run_seconds(notebook.cells)
    if not seconds:
        raise ValueError(f"{path} records no run (no cell time stamps): execute it before stamping its run time")
    cell = _title_cell(notebook.cells, path)
    line, text = run_time_line(seconds), cell.source
    if _RUN_TIME.search(text):
        new = _RUN_TIME.sub(lambda _: line, text, count=1)
    else:
        lines = text.split("\n")
        title = next(i for i, row in enumerate(lines) if row.startswith("# "))
        new = "\n".join(lines[:title + 1] + ["", line] + lines[title + 1:])
    if new == text:
        return False
    cell.source = new
    nbformat.write(notebook, Path(path))
    return True


def _execute_here(path: Path, timeout: int) -> None:
    """Execute the notebook in this process's kernel and write it back with its peak memory; on a
    failing cell nothing is written, so the committed outputs stay as they were."""
    import resource  # Unix only: imported here so that reading costs works everywhere

    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    # The kernel has exited and been waited for: RUSAGE_CHILDREN's maxrss is the largest resident set of
    # any process below this one, i.e. the kernel's (or a process it started). Linux counts KiB, macOS bytes.
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / (2**20 if sys.platform == "darwin" else 2**10)
    notebook.metadata["lmcourse"] = {"peak_memory_mib": round(peak), "machine": machine_name()}
    for cell in notebook.cells:  # warnings name this machine's paths; a reader's own run still shows them
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not (o.output_type == "stream" and o.name == "stderr")]
    nbformat.write(notebook, path)


def execute_notebook(path: str | Path, timeout: int = 1800, stamp: bool = True) -> None:
    """Run the notebook in place, record its peak memory in its metadata, drop stderr from its outputs
    and (with `stamp`, for chapters) stamp its run time under its title. Each notebook runs below a fresh
    Python process, so the peak is its own and not an earlier notebook's. Raises ``RuntimeError`` if a
    cell fails (the file is then left as it was)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no notebook at {path}")
    command = [sys.executable, "-m", "lmcourse.runtimes", "_execute_here", str(path), "--timeout", str(timeout)]
    if subprocess.run(command).returncode != 0:
        raise RuntimeError(f"{path} failed to execute (the error is above); the file was not changed")
    if stamp:
        stamp_run_time(path)


def main(argv: list[str] | None = None) -> int:
    """``python -m lmcourse.runtimes execute NOTEBOOK...``: run each notebook in place, recording its peak
    memory and stamping its run time (``--no-stamp`` for pages that are not chapters); ``... stamp
    NOTEBOOK...``: only restamp the run-time lines."""
    parser = argparse.ArgumentParser(prog="python -m lmcourse.runtimes", description=main.__doc__)
    parser.add_argument("command", choices=["execute", "stamp", "_execute_here"])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--timeout", type=int, default=1800, help="seconds a cell may run")
    parser.add_argument("--no-stamp", action="store_true", help="execute without writing a run-time line")
    args = parser.parse_args(argv)
    for path in args.notebooks:
        if args.command == "_execute_here":  # execute_notebook's child process
            _execute_here(path, args.timeout)
        elif args.command == "execute":
            execute_notebook(path, args.timeout, stamp=not args.no_stamp)
            print(f"{path}: ran in {last_run_seconds(path):.0f} s, peak memory {peak_memory_mib(path)} MiB", flush=True)
        elif stamp_run_time(path):
            print(f"{path}: {stated_run_time(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
