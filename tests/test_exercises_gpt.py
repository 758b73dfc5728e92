"""The Chapter 6 checkers' oracles against independent references and hand-worked answers. That
each checker passes the chapter's reference, fails a stub and fails every registered wrong answer
is proved over the notebooks by tests/test_exercises.py."""

import numpy as np
import pytest
import torch

import lmcourse.exercises.gpt  # noqa: F401  (registers the chapter's checkers)
from lmcourse.attention import causal_mask
from lmcourse.decoding import apply_repetition_penalty, top_p_filter
from lmcourse.exercises import REGISTRY


def _oracle(name):
    return REGISTRY[name].oracle


def test_merges_oracle_gives_the_hand_worked_examples():
    merges = _oracle("gpt.learn_merges")
    assert merges("aaabdaaabac", 3) == [(97, 97), (97, 98), (256, 257)]  # Section 6.2
    assert merges("low lower lowest", 3) == [(108, 111), (256, 119), (32, 257)]  # exercise 1: lo, low, " low"


def test_every_merge_case_learns_distinct_tokens():
    for case in REGISTRY["gpt.learn_merges"].cases:
        merges = _oracle("gpt.learn_merges")(*case.args)
        assert len(merges) == case.args[1] and len(set(merges)) == len(merges)


def test_temperature_oracle_by_hand_and_for_a_batch():
    probs = _oracle("gpt.softmax_with_temperature")(np.array([np.log(0.5), np.log(0.25), np.log(0.25)]), 0.5)
    np.testing.assert_allclose(probs, np.array([0.25, 0.0625, 0.0625]) / 0.375)
    batch = np.random.default_rng(0).normal(size=(3, 7))
    np.testing.assert_allclose(_oracle("gpt.softmax_with_temperature")(batch, 2.0),
                               torch.softmax(torch.tensor(batch) / 2, dim=-1).numpy())


@pytest.mark.parametrize("case", REGISTRY["gpt.nucleus_keep"].cases, ids=lambda c: c.label[:30])
def test_nucleus_oracle_equals_the_book_rule_on_every_case(case):
    probs, p = case.args
    kept = torch.isfinite(top_p_filter(torch.tensor(np.log(probs))[None], p))[0]
    assert _oracle("gpt.nucleus_keep")(probs, p) == torch.nonzero(kept).flatten().tolist()


def test_repetition_oracle_by_hand_and_equal_to_the_book():
    out = _oracle("gpt.repetition_penalty")(np.array([2.0, -2.0, 2.0, 0.5]), [0, 1, 1], 2.0)
    np.testing.assert_allclose(out, [1.0, -4.0, 2.0, 0.5])
    logits = np.random.default_rng(1).normal(size=20)
    ids = [3, 3, 7, 19]
    ours = apply_repetition_penalty(torch.tensor(logits)[None], torch.tensor([ids]), 1.7)[0].numpy()
    np.testing.assert_allclose(_oracle("gpt.repetition_penalty")(logits, ids, 1.7), ours)


@pytest.mark.parametrize("queries, keys", [(1, 1), (3, 3), (1, 9), (4, 10), (7, 8)])
def test_mask_oracle_equals_the_book_causal_mask(queries, keys):
    expected = causal_mask(queries, keys, offset=keys - queries).numpy()
    np.testing.assert_array_equal(_oracle("gpt.causal_offset_mask")(queries, keys), expected)
