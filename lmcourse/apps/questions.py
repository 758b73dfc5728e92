"""Questions written for this book about the corpus's test articles (Chapter 9), with their answers
and the passage that answers each: the yardstick for search (is the gold passage among the top `k`?)
and for retrieval-augmented answering (does the reply contain an acceptable answer?).

Each record of ``data/qa/questions.jsonl`` (described in ``data/README.md``) names one passage of
:func:`lmcourse.apps.passages.load_passages` ``("test")`` by id. The first answer is copied verbatim
from that passage, so :func:`check_questions` can verify every record against the text; further
answers are other acceptable forms of the same answer. A fact that another passage also states is
listed in ``also_in``, so that finding that passage counts as a hit too (:attr:`Question.relevant`).
The ``dev`` split (10 questions) is for designing prompts and few-shot examples; ``test`` is for
measuring.

Left out: questions that need several passages, questions with no answer in the corpus, and a
judgement of how relevant a passage is (a passage either answers the question or does not).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from lmcourse.apps.passages import Passage, passage_index
from lmcourse.data import data_file

__all__ = ["SPLITS", "TYPES", "Question", "load_questions", "check_questions"]

SPLITS = ("dev", "test")
TYPES = ("who", "when", "where", "what", "how many")


@dataclass(frozen=True)
class Question:
    """One question: ``answers[0]`` is a verbatim span of passage ``passage_id``; ``also_in`` lists
    other passages that state the same fact."""

    id: str
    split: str
    question: str
    answers: tuple[str, ...]
    passage_id: str
    type: str
    also_in: tuple[str, ...] = ()

    @property
    def relevant(self) -> frozenset[str]:
        """The passage ids that count as relevant in a ranking: the gold passage and ``also_in``."""
        return frozenset((self.passage_id, *self.also_in))


def load_questions(split: str | None = None) -> list[Question]:
    """The questions of `split` (``"dev"`` or ``"test"``; None: all), in file order.

    >>> dev = load_questions("dev")
    >>> len(dev), dev[0].id, dev[0].answers[0], sorted(dev[0].relevant)
    (10, 'q001', 'camellia', ['Alabama#3'])
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: use one of {', '.join(map(repr, SPLITS))} or None for all")
    questions = []
    with data_file("qa/questions.jsonl").open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                record = json.loads(line)
                record["answers"] = tuple(record["answers"])
                record["also_in"] = tuple(record.get("also_in", ()))
                questions.append(Question(**record))
    return [q for q in questions if split is None or q.split == split]


def check_questions(questions: Sequence[Question], passages: Sequence[Passage]) -> None:
    """Raise ValueError naming the first question that names an unknown passage (gold or
    ``also_in``) or whose first answer is not a verbatim span of its gold passage: a record that
    fails here would score a search or an answer against the wrong text."""
    index = passage_index(list(passages))
    for q in questions:
        for pid in (q.passage_id, *q.also_in):
            if pid not in index:
                raise ValueError(f"question {q.id} ({q.question!r}) names passage {pid!r}, which is not in the collection")
        if not q.answers:
            raise ValueError(f"question {q.id} ({q.question!r}) has no answer")
        if q.answers[0] not in index[q.passage_id].text:
            raise ValueError(f"question {q.id} ({q.question!r}): its first answer {q.answers[0]!r} is not a verbatim "
                             f"span of passage {q.passage_id!r}")
