"""The book's corpus as a collection of passages (Chapter 9): one passage per paragraph of a
Wikipedia article, with an id that names the article and the paragraph, so that questions and
search results can point at the text they come from.

Left out: cutting long paragraphs into windows (the longest test paragraph has about 600 words,
which the retrievers read whole or truncated) and passages that span paragraphs.
"""

from __future__ import annotations

from dataclasses import dataclass

from lmcourse.data import load_documents

__all__ = ["Passage", "load_passages", "passage_index"]


@dataclass(frozen=True)
class Passage:
    """One paragraph of an article: ``id`` is ``"<title>#<index of the paragraph in the article>"``."""

    id: str
    title: str
    text: str


def load_passages(split: str | None = "test") -> list[Passage]:
    """The paragraphs of the wiki corpus's articles in `split` (None: every article) as passages,
    in corpus order.

    >>> passages = load_passages("test")
    >>> len(passages), passages[0].id
    (457, 'Alabama#0')
    """
    return [Passage(f"{title}#{i}", title, text) for title, lines in load_documents("wiki", split)
            for i, text in enumerate(lines)]


def passage_index(passages: list[Passage]) -> dict[str, Passage]:
    """The passages by id; a repeated id is an error (it would make a relevance judgement ambiguous)."""
    index = {p.id: p for p in passages}
    if len(index) != len(passages):
        raise ValueError("passage ids must be unique: two passages share an id")
    return index
