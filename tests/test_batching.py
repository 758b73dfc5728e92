"""lmcourse.batching: batches of similar lengths, each index once, little padding."""

from __future__ import annotations

import random

import pytest

from lmcourse.batching import similar_length_batches


def test_every_index_once_shortest_first_with_little_padding():
    rng = random.Random(0)
    lengths = [rng.randint(1, 300) for _ in range(200)]
    batches = similar_length_batches(lengths, batch_size=16)
    assert sorted(i for batch in batches for i in batch) == list(range(200))
    widths = [[lengths[i] for i in batch] for batch in batches]
    assert all(len(batch) <= 16 for batch in batches)
    assert [w for batch in widths for w in batch] == sorted(lengths)  # shortest first, throughout
    for batch in widths:  # padding to the longest row stays within a quarter of the real tokens
        assert len(batch) * max(batch) <= 1.25 * sum(batch)


def test_padding_limit_and_batch_size_close_a_batch():
    assert similar_length_batches([10, 10, 10, 10], batch_size=3) == [[0, 1, 2], [3]]
    assert similar_length_batches([10, 20], batch_size=8) == [[0], [1]]  # 2 x 20 > 1.25 x 30
    assert similar_length_batches([10, 20], batch_size=8, max_padding=0.5) == [[0, 1]]  # 40 <= 1.5 x 30
    assert similar_length_batches([], batch_size=4) == []
    with pytest.raises(ValueError, match="batch_size"):
        similar_length_batches([3, 4], batch_size=0)
