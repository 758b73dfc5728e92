"""Prove that the student copies give no answer away.

For every chapter notebook, its student copy (`notebooks.student_notebook`) must not contain:

- any distinctive line of a reference solution (a line between the solution markers, at least 12
  characters long and not a comment, that occurs nowhere else in the chapter);
- any distinctive line of a `{solution}` dropdown's prose, or of a cell tagged `remove-student`;
- in an exercises section (from a `## Exercises` heading to the next `##` heading), any code cell
  other than a stub or a line of `check(...)`/`example(...)` calls: a cell that computes or asserts
  an answer must be tagged `remove-student`.
"""

from __future__ import annotations

import re
from pathlib import Path

from lmcourse.exercises.notebooks import BEGIN, END, REMOVE_TAG, STUB, cell_source, read_notebook, student_notebook

_MIN_CODE, _MIN_PROSE = 12, 24
_CALL_LINE = re.compile(r"^(check|example|print\(example)\(.*\)\s*$")
_SOLUTION_PROSE = re.compile(r"^(:{3,}|`{3,})\{solution\}.*?^\1\s*$", re.S | re.M)


def _solution_lines(source: str) -> tuple[list[str], list[str]]:
    """(lines inside the solution blocks, lines outside them), stripped."""
    inside, outside, within = [], [], False
    for line in source.splitlines():
        marker = line.strip()
        if marker in (BEGIN, END):
            within = marker == BEGIN
        else:
            (inside if within else outside).append(marker)
    return inside, outside


def _secrets(notebook: dict) -> list[tuple[str, str]]:
    """(where, line) for every line that only an answer holds."""
    secret: list[tuple[str, str]] = []
    public: list[str] = []
    for index, cell in enumerate(notebook["cells"]):
        source = cell_source(cell)
        if REMOVE_TAG in cell.get("metadata", {}).get("tags", []):
            secret += [(f"cell {index} (tagged {REMOVE_TAG})", line.strip()) for line in source.splitlines()
                       if len(line.strip()) >= _MIN_CODE and not line.strip().startswith("#")]
        elif cell.get("cell_type") == "code":
            inside, outside = _solution_lines(source)
            secret += [(f"the solution in cell {index}", line) for line in inside
                       if len(line) >= _MIN_CODE and not line.startswith("#")]
            public += outside
        else:
            prose = "\n".join(m.group(0) for m in _SOLUTION_PROSE.finditer(source))
            secret += [(f"the {{solution}} prose in cell {index}", line.strip()) for line in prose.splitlines()[1:-1]
                       if len(line.strip()) >= _MIN_PROSE and not line.strip().startswith(":")]
            public += _SOLUTION_PROSE.sub("", source).splitlines()
    public_set = {line.strip() for line in public}
    return [(where, line) for where, line in secret if line not in public_set]


def _exercise_code_cells(notebook: dict) -> list[tuple[int, str]]:
    """(index, source) of the code cells inside `## Exercises` sections."""
    found, inside = [], False
    for index, cell in enumerate(notebook["cells"]):
        source = cell_source(cell)
        if cell.get("cell_type") == "markdown":
            for line in source.splitlines():
                if line.startswith("## "):
                    inside = line[3:].strip().lower().startswith("exercises")
        elif inside:
            found.append((index, source))
    return found


def audit_notebook(path: Path) -> list[str]:
    """What the student copy of the notebook at `path` would reveal (empty if nothing)."""
    original = read_notebook(path)
    student = student_notebook(original)
    lines = {line.strip() for cell in student["cells"] for line in cell_source(cell).splitlines()}
    problems = [f"{path.name}: the student copy still holds a line of {where}: {line!r}"
                for where, line in _secrets(original) if line in lines]
    for index, source in _exercise_code_cells(student):
        body = [line.strip() for line in source.splitlines() if line.strip() and not line.strip().startswith("#")]
        if STUB not in source and not all(_CALL_LINE.match(line) for line in body):
            problems.append(f"{path.name}: the student copy's cell {index} is in the exercises section but is neither "
                            f"a stub nor a check(...) call; if it computes or asserts an answer, tag it {REMOVE_TAG!r}: "
                            f"{body[0][:80] if body else ''!r}")
    return problems


def audit_student_copies(chapters: Path) -> tuple[int, list[str]]:
    """(number of notebooks audited, problems found) over every notebook under `chapters`."""
    paths = [p for p in sorted(Path(chapters).rglob("*.ipynb")) if ".ipynb_checkpoints" not in p.parts]
    return len(paths), [problem for path in paths for problem in audit_notebook(path)]
