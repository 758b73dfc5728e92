"""Find exercises in chapter notebooks and write student copies without their solutions.

A code exercise in a chapter is a cell whose reference solution sits between `# BEGIN SOLUTION`
and `# END SOLUTION` lines, followed (in the same cell or a later one) by a call
`check("chapter.name", function)`. A student copy replaces each marked block with
`raise NotImplementedError(...)`, drops `{solution}` blocks from the prose, drops every cell tagged
`remove-student` (the cells that compute or assert an answer: "the measured answer to exercise N",
"the check of exercise 1", by-hand answers), and clears outputs.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path

BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
REMOVE_TAG = "remove-student"
STUB = 'raise NotImplementedError("Exercise: write your solution here")'
_CHECK_CALL = re.compile(r"""check\(\s*["']([\w.\-]+)["']\s*,\s*([A-Za-z_]\w*)\s*\)""")
_FENCE_OPEN = re.compile(r"^(?P<fence>:{3,}|`{3,})\{solution")


@dataclass(frozen=True)
class SolutionCell:
    """A reference solution found in a notebook: where it is, its source, and what it checks."""

    notebook: Path
    cell_index: int
    source: str
    exercise: str
    function: str
    folded: bool = True  # tagged hide-input, so the book folds the answer away

    def stub_source(self) -> str:
        return strip_solutions(self.source)


def read_notebook(path: Path) -> dict:
    """Load a notebook as JSON, with a clear error for a missing or broken file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no notebook at {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not a valid notebook (JSON error: {error})") from None


def cell_source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def strip_solutions(source: str) -> str:
    """Replace every BEGIN/END SOLUTION block with a `raise NotImplementedError` stub.

    >>> print(strip_solutions("def f(x):\\n    # BEGIN SOLUTION\\n    return 2 * x\\n    # END SOLUTION"))
    def f(x):
        raise NotImplementedError("Exercise: write your solution here")
    """
    out: list[str] = []
    inside = False
    for number, line in enumerate(source.splitlines(), start=1):
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise ValueError(f"line {number}: {BEGIN} inside another solution block")
            inside = True
            out.append(line[: len(line) - len(line.lstrip())] + STUB)
        elif marker == END:
            if not inside:
                raise ValueError(f"line {number}: {END} without a {BEGIN}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{BEGIN} without a matching {END}")
    return "\n".join(out)


def strip_solution_prose(markdown: str) -> str:
    """Remove `{solution}` directive blocks (``` or ::: fenced) from a markdown cell."""
    out: list[str] = []
    closing: str | None = None
    for line in markdown.splitlines():
        if closing is None:
            match = _FENCE_OPEN.match(line.strip())
            if match:
                closing = match.group("fence")
                continue
            out.append(line)
        elif line.strip() == closing:
            closing = None
    return "\n".join(out).rstrip() + ("\n" if markdown.endswith("\n") else "")


def find_solutions(chapters: Path) -> list[SolutionCell]:
    """Every reference solution in the notebooks under `chapters`, with the exercise it answers."""
    found: list[SolutionCell] = []
    for path in sorted(Path(chapters).rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        cells = read_notebook(path)["cells"]
        for index, cell in enumerate(cells):
            source = cell_source(cell)
            if cell.get("cell_type") != "code" or BEGIN not in source:
                continue
            later = [cell_source(c) for c in cells[index:] if c.get("cell_type") == "code"][:2]
            match = next((m for text in later for m in _CHECK_CALL.finditer(text)), None)
            if match is None:
                raise ValueError(f"{path}, cell {index}: a solution cell with no check(...) call after it")
            folded = "hide-input" in cell.get("metadata", {}).get("tags", [])
            found.append(SolutionCell(path, index, source, match.group(1), match.group(2), folded))
    return found


def student_notebook(notebook: dict) -> dict:
    """A copy of `notebook` with solutions replaced by stubs, solution prose and answer cells removed,
    outputs cleared."""
    result = copy.deepcopy(notebook)
    result["cells"] = [c for c in result["cells"] if REMOVE_TAG not in c.get("metadata", {}).get("tags", [])]
    for cell in result["cells"]:
        source = cell_source(cell)
        if cell.get("cell_type") == "code":
            cell["source"] = strip_solutions(source) if BEGIN in source else source
            cell["outputs"] = []
            cell["execution_count"] = None
        elif cell.get("cell_type") == "markdown" and "{solution" in source:
            cell["source"] = strip_solution_prose(source)
    return result


def write_student_copies(chapters: Path, out: Path) -> list[Path]:
    """Write a student copy of every notebook under `chapters` into `out`, keeping the folder layout.

    Refuses to write into `chapters` itself, so the reference notebooks are never overwritten.
    """
    chapters, out = Path(chapters).resolve(), Path(out).resolve()
    if not chapters.is_dir():
        raise FileNotFoundError(f"no chapters folder at {chapters}")
    if out == chapters or chapters in out.parents:
        raise ValueError(f"the output folder {out} must be outside {chapters}, or the reference notebooks would be overwritten")
    written = []
    for path in sorted(chapters.rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        target = out / path.relative_to(chapters)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(student_notebook(read_notebook(path)), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(target)
    return written
