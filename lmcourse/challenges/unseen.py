"""Text a pretrained model cannot have seen: paragraphs of this book's own prose. Chapter 11
(Challenges) compares SmolLM2's bits per character on them with its score on Wikipedia.

The book was written after SmolLM2 (and MiniLM) were trained, so its prose was not in their training
data. :func:`book_prose` reads the markdown cells of the chapter notebooks and keeps the paragraphs
that are plain prose: no code, mathematics, citations, glued numbers, links, lists, headings or
directives (any paragraph holding one of their marks is dropped whole rather than edited, so every
kept paragraph is a sentence sequence exactly as written).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from lmcourse._checks import check_positive_int
from lmcourse.exercises.notebooks import cell_source, read_notebook

__all__ = ["book_prose"]

_MARKUP = re.compile(r"[`${}\[\]|*#_<>\\]")  # code, maths, roles, links, tables, emphasis, headings, html
_STARTS = (":", "-", "(", ">", "!")  # directives, list items, labels, quotes, images


def _plain_paragraphs(markdown: str, min_words: int) -> list[str]:
    paragraphs = []
    for block in re.split(r"\n\s*\n", markdown):
        text = " ".join(block.split())
        if (len(text.split()) >= min_words and not _MARKUP.search(text) and not text.startswith(_STARTS)
                and not re.match(r"\d+\.\s", text)):
            paragraphs.append(text)
    return paragraphs


def book_prose(notebooks: Iterable[str | Path], min_words: int = 40) -> list[str]:
    """The plain-prose paragraphs of at least `min_words` words in the markdown cells of `notebooks`
    (``.ipynb`` files), in order, each on one line.

    Raises ``FileNotFoundError`` for a missing notebook and ``ValueError`` when none is given or no
    paragraph qualifies.
    """
    check_positive_int("min_words", min_words)
    paths = [Path(p) for p in notebooks]
    if not paths:
        raise ValueError("book_prose needs at least one notebook path (e.g. sorted(Path('chapters').glob('*.ipynb')))")
    paragraphs = []
    for path in paths:
        for cell in read_notebook(path).get("cells", []):
            if cell.get("cell_type") == "markdown":
                paragraphs += _plain_paragraphs(cell_source(cell), min_words)
    if not paragraphs:
        raise ValueError(f"no plain-prose paragraph of {min_words} words or more in {len(paths)} notebook(s)")
    return paragraphs
