"""The two steps of byte-pair encoding on a list of ids: count adjacent pairs, merge one pair.

Chapter 6 (GPT) shows both; :mod:`lmcourse.bpe.training` repeats them (with incremental counts)
to learn merges, and :class:`lmcourse.bpe.ByteBPE` uses :func:`merge` to encode.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["Pair", "pair_counts", "merge"]

Pair = tuple[int, int]


def pair_counts(ids: Sequence[int], weight: int = 1, counts: dict[Pair, int] | None = None) -> dict[Pair, int]:
    """Count each adjacent pair in `ids`, `weight` times per occurrence, adding into `counts`.

    >>> pair_counts([97, 97, 97, 98])  # "aaab": (a, a) twice, (a, b) once
    {(97, 97): 2, (97, 98): 1}
    """
    counts = {} if counts is None else counts
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + weight
    return counts


def merge(ids: Sequence[int], pair: Pair, new_id: int) -> list[int]:
    """Replace each occurrence of `pair` in `ids` by `new_id`, from left to right without overlaps.

    >>> merge([97, 97, 97, 98], (97, 97), 256)  # "aaab": the first two a's merge, the third stays
    [256, 97, 98]
    """
    first, second = pair
    out, i, n = [], 0, len(ids)
    while i < n:
        if ids[i] == first and i + 1 < n and ids[i + 1] == second:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out
