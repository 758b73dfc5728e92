"""The Word Embedding Association Test, WEAT (Caliskan et al., 2017). Chapter 11 (Challenges) explains it.

Two sets of *target* words, ``X`` (say, career words) and ``Y`` (family words), and two sets of
*attribute* words, ``A`` (male names) and ``B`` (female names), each given as their vectors, one
row per word. A word ``w`` leans towards ``A`` by

    s(w, A, B) = mean over a in A of cos(w, a) - mean over b in B of cos(w, b)

(:func:`association`). The test asks whether the targets in ``X`` lean towards ``A`` more than
those in ``Y`` do. Its *effect size* (:func:`weat_effect_size`) is a standardised difference of
means, like Cohen's d: how many standard deviations apart the two groups of associations lie. Its
*p-value* (:func:`weat_p_value`) is a one-sided permutation test: how often does a random split
of ``X`` and ``Y``'s words into two groups of the same sizes lean as far? Cosines ignore length,
so scaling any vector changes nothing.

Left out: choosing the word lists and looking words up (an embedding is a mapping from words to
rows: stack the rows yourself), the sentence-level variant for contextual models (SEAT), and
corrections for testing many word lists at once.
"""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np

from lmcourse._checks import check_int

__all__ = ["association", "weat_effect_size", "weat_p_value"]

_TIE = 1e-10  # statistics this close to the observed one count as ties (rounding in the sums)
_CHUNK = 4096  # random partitions drawn at once


def _unit_rows(name: str, vectors: np.ndarray) -> np.ndarray:
    """`vectors` as a float array ``(N, d)`` with every row scaled to length 1, or a clear error."""
    array = np.asarray(vectors, dtype=float)
    if array.ndim != 2:
        hint = " (give one word as a (1, d) array, e.g. v[None, :])" if array.ndim == 1 else ""
        raise ValueError(f"{name} must be a 2-D array with one row per word, got shape {array.shape}{hint}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} must hold at least one word vector of at least one number, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} holds inf or nan")
    norms = np.linalg.norm(array, axis=1, keepdims=True)  # (N, 1)
    if np.any(norms == 0):
        row = int(np.flatnonzero(norms[:, 0] == 0)[0])
        raise ValueError(f"row {row} of {name} is the zero vector: its cosine with any word is undefined")
    return array / norms  # (N, d)


def _check_widths(**arrays: np.ndarray) -> None:
    widths = {name: a.shape[1] for name, a in arrays.items()}
    if len(set(widths.values())) > 1:
        raise ValueError(f"every set of word vectors must have the same number of columns, got {widths}")


def _associations(w: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """s(w, A, B) for rows that are already unit vectors: ``(N, d)``, ``(Na, d)``, ``(Nb, d)`` -> ``(N,)``."""
    return (w @ a.T).mean(axis=1) - (w @ b.T).mean(axis=1)  # (N, d) @ (d, Na) -> (N, Na) -> (N,)


def association(w: np.ndarray, A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """For each row of `w`, its mean cosine with the rows of `A` minus its mean cosine with the rows of `B`.

    >>> A, B = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    >>> association(np.array([[2.0, 0.0], [1.0, 1.0], [0.0, 3.0]]), A, B)  # at 0, 45 and 90 degrees
    array([ 1.,  0., -1.])
    """
    units = {"w": _unit_rows("w", w), "A": _unit_rows("A", A), "B": _unit_rows("B", B)}
    _check_widths(**units)
    return _associations(units["w"], units["A"], units["B"])


def _target_associations(X: np.ndarray, Y: np.ndarray, A: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, int]:
    """The associations of X's words followed by Y's ``(|X| + |Y|,)``, and ``|X|``."""
    units = {name: _unit_rows(name, v) for name, v in (("X", X), ("Y", Y), ("A", A), ("B", B))}
    _check_widths(**units)
    targets = np.concatenate([units["X"], units["Y"]])  # (|X| + |Y|, d)
    return _associations(targets, units["A"], units["B"]), len(units["X"])


def weat_effect_size(X: np.ndarray, Y: np.ndarray, A: np.ndarray, B: np.ndarray) -> float:
    """How far X's words lean towards A (and away from B) compared with Y's, in standard deviations:

        (mean of s(x, A, B) over X - mean of s(y, A, B) over Y) / std of s(w, A, B) over X and Y together,

    the standard deviation being the sample one (dividing by ``|X| + |Y| - 1``; some implementations
    divide by ``|X| + |Y|``, which gives a value ``sqrt(n / (n - 1))`` times larger). It lies between
    about -2 and 2; swapping X and Y (or A and B) flips its sign.

    >>> A, B = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    >>> X, Y = np.array([[1.0, 0.0], [1.0, 1.0]]), np.array([[1.0, 1.0], [0.0, 1.0]])  # s: 1, 0 and 0, -1
    >>> round(weat_effect_size(X, Y, A, B), 6)  # (0.5 - (-0.5)) / std(1, 0, 0, -1)
    1.224745
    """
    s, size_x = _target_associations(X, Y, A, B)
    spread = float(np.std(s, ddof=1))
    if spread < _TIE:
        raise ValueError("every word of X and Y has the same association with A and B (standard deviation 0): "
                         "the effect size is undefined")
    return float((s[:size_x].mean() - s[size_x:].mean()) / spread)


def weat_p_value(X: np.ndarray, Y: np.ndarray, A: np.ndarray, B: np.ndarray, permutations: int = 10_000,
                 seed: int = 0) -> float:
    """The one-sided permutation test of the WEAT: the share of re-partitions of the words of X and Y
    into groups of sizes ``|X|`` and ``|Y|`` whose statistic is at least the observed one.

    The statistic is ``s(X, Y) = sum of s(x, A, B) over X - sum of s(y, A, B) over Y``. When the
    number of partitions, ``C(|X| + |Y|, |X|)``, is at most `permutations`, every one of them is
    enumerated (the observed partition among them) and the p-value is exact. Otherwise `permutations`
    random partitions are drawn (a numpy Generator seeded with `seed`) and the p-value is
    ``(1 + count) / (1 + permutations)``, counting the observed partition as one of them, so that it is
    never 0. Statistics within ``1e-10`` of the observed one count as ties (at least as large).

    >>> A, B = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    >>> X, Y = np.array([[1.0, 0.0], [1.0, 1.0]]), np.array([[1.0, 1.0], [0.0, 1.0]])  # s: 1, 0 and 0, -1
    >>> weat_p_value(X, Y, A, B)  # 2 of the 6 splits of s = 1, 0, 0, -1 give X's side 1 and a 0
    0.3333333333333333
    """
    check_int("permutations", permutations, 1)
    check_int("seed", seed, 0)
    s, size_x = _target_associations(X, Y, A, B)
    # s(X, Y) = 2 * (sum over X) - (sum over all): the partitions rank as the sums over their X side do
    observed = s[:size_x].sum()
    if math.comb(len(s), size_x) <= permutations:
        sides = np.array(list(combinations(range(len(s)), size_x)))  # (C, |X|) every possible X side
        return float(np.mean(s[sides].sum(axis=1) >= observed - _TIE))
    rng, count = np.random.default_rng(seed), 0
    for start in range(0, permutations, _CHUNK):
        size = min(_CHUNK, permutations - start)
        order = rng.permuted(np.tile(np.arange(len(s)), (size, 1)), axis=1)  # (P, |X| + |Y|) shuffled words
        count += int(np.sum(s[order[:, :size_x]].sum(axis=1) >= observed - _TIE))  # (P, |X|) -> (P,)
    return (1 + count) / (1 + permutations)
