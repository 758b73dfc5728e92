"""Ranking within a tokenization, in pairs (lmcourse.ranking)."""

import math

import numpy as np

from lmcourse.metrics import Result
from lmcourse.ranking import neighbour_comparisons, tokenization_groups


def _row(name, tokenization, bpc):
    return Result(name, "family", tokenization, 1, 10.0, bpc, 1.0, "2")


def test_groups_keep_tokenizations_apart_best_first():
    rows = [_row("w1", "words", 1.5), _row("b1", "bytes", 2.1), _row("w2", "words", 1.4)]
    groups = tokenization_groups(rows)
    assert list(groups) == ["words", "bytes"]
    assert [r.model for r in groups["words"]] == ["w2", "w1"]


def test_neighbours_are_compared_in_pairs_and_noise_is_named():
    rng = np.random.default_rng(0)
    chars = rng.integers(80, 120, size=200)
    hard = rng.uniform(1, 3, size=200) * chars * math.log(2)
    nll = {"a": hard + 0.2 * chars * math.log(2),  # worst: 0.2 bits per character above c
           "b": hard + rng.normal(0, 0.05, size=200) * chars * math.log(2),  # b and c differ by noise only
           "c": hard, "other": hard}
    bpc = {k: v.sum() / chars.sum() / math.log(2) for k, v in nll.items()}
    rows = [_row(k, "bytes" if k == "other" else "words", bpc[k]) for k in ("a", "b", "c", "other")]
    comparisons = neighbour_comparisons(rows, nll, chars)
    assert [(c.worse, c.better) for c in comparisons] in ([("b", "c"), ("a", "b")], [("c", "b"), ("a", "c")])
    assert comparisons[-1].settled and comparisons[-1].difference > 0.15
    assert not comparisons[0].settled  # a difference made of noise
    assert all(c.tokenization == "words" for c in comparisons)  # "other" has no partner
