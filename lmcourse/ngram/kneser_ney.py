r"""Interpolated Kneser-Ney smoothing (Kneser & Ney, 1995; Chen & Goodman, 1998), plain and modified.

At the highest order n, with raw counts c:

$$P(w \mid h) = \frac{\max(c(h w) - D, 0)}{c(h\,\cdot)}
              + \frac{D \, N_{1+}(h\,\cdot)}{c(h\,\cdot)} \, P(w \mid h')$$

where $h'$ drops the first word of $h$ and $N_{1+}(h\,\cdot)$ counts the distinct words seen after
$h$. Every lower order has the same form with *continuation counts* $N_{1+}(\cdot\, h w)$, the number
of distinct words seen before $h w$, in place of $c$: a word that is frequent only after one context
("Francisco" after "San") is a poor guess after a new context. The recursion ends in the uniform
distribution over the prediction vocabulary, so unseen words keep some mass. A context that never
occurred passes all its mass to the next order down.

The fixed default $D = 0.75$ is the value Chen & Goodman (1998) report as a good constant for absolute
discounting; ``discount="estimate"`` instead sets one $D = n_1 / (n_1 + 2 n_2)$ per order from that
order's count-of-counts (Ney et al. 1994, used by Chen & Goodman). The modified version uses three
discounts $D_1, D_2, D_{3+}$ per order, for n-grams seen once, twice and more often, estimated from
count-of-counts as Chen & Goodman (1998) propose.

Conventions that differ between implementations: here the discounts of a lower order are
estimated from that order's continuation counts (as KenLM does, Heafield et al. 2013), the bottom
of the recursion is the uniform distribution, and n-grams that start with ``<s>`` get continuation
counts like any other (their only left neighbour is another ``<s>``: sentences are padded with
order-1 of them), where KenLM keeps their raw counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmcourse.ngram.models import LanguageModel

__all__ = ["KneserNey", "ModifiedKneserNey", "estimated_discount", "modified_discounts"]


@dataclass(frozen=True)
class _Level:
    """The arrays of one order k that scoring reads."""

    alpha_num: np.ndarray  # (M,) per n-gram: its count minus its discount
    total: np.ndarray  # (C,) per context: the sum of the counts after it
    gamma_num: np.ndarray  # (C,) per context: the mass taken away by discounting, left for order k-1


class KneserNey(LanguageModel):
    """Interpolated Kneser-Ney with one absolute discount D (default 0.75) for every order, or, with
    ``discount="estimate"``, one D per order from its count-of-counts (:func:`estimated_discount`;
    ``discounts[k]`` holds order k's value after fitting).

    "francisco" is more frequent than "glasses" but follows only "san"; after "old", where
    neither was seen, Kneser-Ney prefers "glasses" (seen after three different words):

    >>> lm = KneserNey(order=2).fit([["san", "francisco"]] * 4 + [["my", "glasses"],
    ...                             ["his", "glasses"], ["reading", "glasses"], ["old"]])
    >>> [(lm.counts.count((w,)), lm.counts.continuation_count(w)) for w in ("francisco", "glasses")]
    [(4, 1), (3, 3)]
    >>> lm.prob("glasses", ("old",)) > lm.prob("francisco", ("old",))
    True
    """

    def __init__(self, order: int = 3, discount: float | str = 0.75) -> None:
        super().__init__(order)
        if discount == "estimate":
            self.discount: float | str | None = discount
            return
        if isinstance(discount, bool) or not isinstance(discount, (int, float)) or not 0 < discount <= 1:
            raise ValueError(f"discount must be in (0, 1] so that every count stays >= 0 after "
                             f"discounting, got {discount!r} (or \"estimate\": one per order)")
        self.discount = float(discount)

    def _level_discounts(self, counts: np.ndarray) -> tuple[float, float, float]:
        """(D1, D2, D3+) for n-grams whose count is 1, 2, 3 or more."""
        if self.discount == "estimate":
            n1, n2 = np.bincount(counts, minlength=3)[1:3].tolist()
            return (estimated_discount(n1, n2),) * 3
        return (self.discount,) * 3

    def _prepare(self) -> None:
        c = self.counts
        self.discounts: dict[int, tuple[float, float, float]] = {}
        self._levels: list[_Level | None] = [None]
        for k in range(1, self.order + 1):
            used = self._raw[k] if k == self.order else c.continuation_counts(k)  # (M,)
            d = self._level_discounts(used)
            self.discounts[k] = d
            discount = np.array([0.0, *d])[np.minimum(used, 3)]  # (M,): D by count, 0 for count 0
            ctx_of = c.gram_context(k)  # (M,)
            size = c.num_contexts(k - 1)
            self._levels.append(_Level(
                alpha_num=used - discount,
                total=np.bincount(ctx_of, weights=used, minlength=size).astype(float),
                gamma_num=np.bincount(ctx_of, weights=discount, minlength=size)))

    def _probs(self, ctx: list[np.ndarray], words: np.ndarray) -> np.ndarray:
        p = self._uniform(words)  # order 0
        for k in range(1, len(ctx) + 1):  # up from the unigram level
            level, c = self._levels[k], ctx[k - 1]
            safe_c = np.maximum(c, 0)
            total = np.where(c >= 0, level.total[safe_c], 0.0)
            idx = self.counts.gram_index(k, c, words)
            alpha_num = np.where(idx >= 0, level.alpha_num[np.maximum(idx, 0)], 0.0)
            seen = total > 0  # an unseen context leaves p as the lower order made it
            p = np.where(seen, (alpha_num + level.gamma_num[safe_c] * p) / np.where(seen, total, 1.0), p)
        return p


def estimated_discount(n1: int, n2: int) -> float:
    """The absolute discount D = n1 / (n1 + 2 n2) from the numbers of n-grams seen once and twice
    (Ney et al. 1994; Chen & Goodman 1998). It is 0.75 when undefined or 0 (no n-gram seen once,
    as at a unigram level whose rare words were merged into ``<unk>``), so every D stays in (0, 1].

    >>> round(estimated_discount(100, 40), 4), estimated_discount(0, 7)
    (0.5556, 0.75)
    """
    return n1 / (n1 + 2 * n2) if n1 > 0 else 0.75


def modified_discounts(n1: int, n2: int, n3: int, n4: int) -> tuple[float, float, float]:
    """Chen & Goodman's (1998) discounts from the numbers of n-grams seen 1, 2, 3 and 4 times:
    Y = n1/(n1 + 2 n2), D1 = 1 - 2Y n2/n1, D2 = 2 - 3Y n3/n2, D3+ = 3 - 4Y n4/n3.

    Small corpora can make a formula undefined (a zero count-of-counts) or put D_r outside
    (0, r]; such a D_r falls back to D_{r-1} (D1 to 0.75), so every discount stays valid.

    >>> [round(d, 4) for d in modified_discounts(100, 40, 20, 10)]
    [0.5556, 1.1667, 1.8889]
    """
    n = [float(n1), float(n2), float(n3), float(n4)]
    y = n[0] / (n[0] + 2 * n[1]) if n[0] + 2 * n[1] > 0 else float("nan")
    out: list[float] = []
    fallback = 0.75
    for r in (1, 2, 3):
        d = r - (r + 1) * y * n[r] / n[r - 1] if n[r - 1] > 0 else float("nan")
        if not (np.isfinite(d) and 0 < d <= r):
            d = fallback
        out.append(d)
        fallback = d
    return out[0], out[1], out[2]


class ModifiedKneserNey(KneserNey):
    """Kneser-Ney with three discounts D1, D2, D3+ per order from count-of-counts (Chen & Goodman,
    1998). ``discounts[k]`` holds order k's three values after fitting."""

    def __init__(self, order: int = 3) -> None:
        super().__init__(order)
        self.discount = None  # one per order and count class instead: see .discounts

    def _level_discounts(self, counts: np.ndarray) -> tuple[float, float, float]:
        n1, n2, n3, n4 = np.bincount(counts, minlength=5)[1:5].tolist()
        return modified_discounts(n1, n2, n3, n4)
