r"""How much is a count worth on new text? Good-Turing and Church & Gale's held-out estimate.

An n-gram seen $r$ times in training is, on average, seen fewer than $r$ times in new text of the
same size: the training count was partly luck. Two classic estimates of the expected future count
$r^*$, which Chapter 2 plots to justify absolute discounting ($r^* \approx r - D$ with one $D$):

- **held-out** (Church & Gale 1991): count the n-grams of one half of a corpus, then look up how
  often each occurs in the other half, and average over the n-grams seen $r$ times;
- **Good-Turing** (Good 1953): $r^* = (r + 1) N_{r+1} / N_r$ from the count-of-counts $N_r$ of the
  training half alone.

Left out: the smoothing of $N_r$ that Good-Turing needs for large $r$ (Gale & Sampson's simple
Good-Turing), Katz backoff built on $r^*$, and deleted estimation (both halves in both roles).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from lmcourse.ngram.counts import NGramCounts, check_sentences, left_windows

__all__ = ["HeldOutCounts", "heldout_counts", "good_turing_counts"]


@dataclass(frozen=True)
class HeldOutCounts:
    """For each training count r = 0 .. max_r: how many n-grams had it, and their average count in
    the held-out text. ``r = 0`` covers every possible n-gram never seen in training."""

    r: np.ndarray  # (R,) the training counts 0 .. max_r
    num_ngrams: np.ndarray  # (R,) N_r: distinct n-grams with that training count (N_0: possible unseen ones)
    heldout_mean: np.ndarray  # (R,) their average count in the held-out text

    @property
    def gap(self) -> np.ndarray:
        """r minus the held-out average: the discount each count class calls for."""
        return self.r - self.heldout_mean


def heldout_counts(train_sentences: Iterable[Sequence[str]], heldout_sentences: Iterable[Sequence[str]],
                   n: int = 2, max_r: int = 8, min_count: int = 1) -> HeldOutCounts:
    """Church & Gale's table: the average held-out count of the n-grams seen r times in training.

    Words are mapped as the models map them (rarer than ``min_count`` in training: ``"<unk>"``).
    For r = 0 the n-grams that could occur number ``(V - 1) ** n`` (V counts ``<unk>``, ``<s>``,
    ``</s>``; a position predicts any entry but ``<s>``), minus those seen in training.

    >>> t = heldout_counts([["a", "b"], ["a", "b"], ["a", "c"]], [["a", "b"], ["c"]], n=2, max_r=2)
    >>> t.num_ngrams.tolist(), t.heldout_mean.tolist()  # seen twice: (a b), (b </s>), once each again
    ([20, 2, 2], [0.05, 0.5, 1.0])
    """
    counts = NGramCounts(train_sentences, order=n, min_count=min_count)
    stream, positions, _ = counts.encode(check_sentences(heldout_sentences, "heldout_counts"))
    left = left_windows(stream, positions, n - 1)  # (P, n-1)
    idx = counts.gram_index(n, counts.context_ids(left)[-1], stream[positions])  # (P,), -1 if unseen
    train = counts.raw_counts(n)  # (M,)
    heldout = np.bincount(idx[idx >= 0], minlength=len(train))  # (M,) held-out count of each n-gram
    r = np.arange(max_r + 1)
    num = np.array([np.count_nonzero(train == k) for k in r], dtype=np.int64)
    total = np.array([heldout[train == k].sum() for k in r], dtype=float)
    num[0] = (len(counts.vocab) - 1) ** n - len(train)
    total[0] = np.count_nonzero(idx < 0)
    return HeldOutCounts(r, num, np.divide(total, num, out=np.full(len(r), np.nan), where=num > 0))


def good_turing_counts(count_of_counts: dict[int, int], max_r: int = 8) -> np.ndarray:
    """Good's (1953) adjusted counts r* = (r + 1) N_{r+1} / N_r for r = 1 .. max_r (nan where N_r = 0).

    >>> good_turing_counts({1: 10, 2: 4, 3: 2}, max_r=3).tolist()
    [0.8, 1.5, 0.0]
    """
    r = np.arange(1, max_r + 1)
    n_r = np.array([count_of_counts.get(k, 0) for k in r], dtype=float)
    n_next = np.array([count_of_counts.get(k + 1, 0) for k in r], dtype=float)
    return np.divide((r + 1) * n_next, n_r, out=np.full(len(r), np.nan), where=n_r > 0)
