"""Grouping sequences of different lengths into batches that need little padding.

A batch is as wide as its longest row, and every shorter row is padded to that width: reading the
padding costs as much as reading real tokens. Sorting by length and closing a batch before its
padding grows too large keeps that waste small. :mod:`lmcourse.llama.batch` (greedy replies) and
:func:`lmcourse.llama.chat.next_token_logprobs_many` (label scores) batch their prompts this way.
"""

from __future__ import annotations

from collections.abc import Sequence

from lmcourse._checks import check_positive_int

__all__ = ["similar_length_batches"]


def similar_length_batches(lengths: Sequence[int], batch_size: int, max_padding: float = 0.25) -> list[list[int]]:
    """Indices of the sequences in batches, shortest first: a batch closes at `batch_size` sequences or
    when the next one would make the padding more than `max_padding` of the real tokens (reading a long
    prompt's padding for every short one would cost more than batching saves).

    >>> similar_length_batches([5, 100, 6, 5, 110], batch_size=8)
    [[0, 3, 2], [1, 4]]
    """
    check_positive_int("batch_size", batch_size)
    batches: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        batch = batches[-1] if batches else []
        real = sum(lengths[j] for j in batch) + lengths[i]
        if batch and len(batch) < batch_size and (len(batch) + 1) * lengths[i] <= (1 + max_padding) * real:
            batch.append(i)
        else:
            batches.append([i])
    return batches
