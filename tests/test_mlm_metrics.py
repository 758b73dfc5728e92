"""Tests for lmcourse.mlm_metrics: hand-worked cases for the accuracy at [MASK] positions, the copy
baseline and the paired probes, and a statistical check against lmcourse.mlm.mask_tokens (a copying
model scores about 10% over the chosen positions and 0% at [MASK]).
"""

from __future__ import annotations

import math

import pytest
import torch

from lmcourse.mlm import IGNORE_INDEX, mask_tokens
from lmcourse.mlm_metrics import (
    accuracy_by_kind,
    copy_baseline,
    mask_accuracy,
    pair_probe_scores,
    position_kinds,
)

MASK = 4
# by hand: [CLS] x x x x x [SEP]; position 1, 2, 5 shown as [MASK], 3 replaced (6 -> 11), 4 kept (9)
INPUTS = torch.tensor([[2, MASK, MASK, 11, 9, MASK, 3]])
LABELS = torch.tensor([[IGNORE_INDEX, 5, 7, 6, 9, 8, IGNORE_INDEX]])


def test_kinds_by_hand():
    kinds = position_kinds(INPUTS, LABELS, MASK)
    assert kinds["[MASK]"].nonzero()[:, 1].tolist() == [1, 2, 5]
    assert kinds["random"].nonzero()[:, 1].tolist() == [3]
    assert kinds["unchanged"].nonzero()[:, 1].tolist() == [4]


def test_accuracy_by_kind_by_hand():
    # right at 1 (5) and 4 (9, copied); wrong at 2, 3 and 5: 2 of 5 overall, 1 of 3 at [MASK]
    predictions = torch.tensor([[0, 5, 5, 11, 9, 5, 0]])
    got = accuracy_by_kind(predictions, INPUTS, LABELS, MASK)
    assert got == {"all": 2 / 5, "[MASK]": 1 / 3, "random": 0.0, "unchanged": 1.0}
    assert mask_accuracy(predictions, INPUTS, LABELS, MASK) == 1 / 3


def test_copy_baseline_by_hand_is_right_only_where_the_input_is_the_answer():
    assert copy_baseline(INPUTS, LABELS) == 1 / 5
    assert mask_accuracy(INPUTS, INPUTS, LABELS, MASK) == 0.0  # copying never answers a [MASK]


def test_a_kind_that_does_not_occur_is_nan():
    got = accuracy_by_kind(torch.tensor([5]), torch.tensor([MASK]), torch.tensor([5]), MASK)
    assert got["all"] == got["[MASK]"] == 1.0 and math.isnan(got["random"]) and math.isnan(got["unchanged"])


def test_under_berts_rule_copying_scores_about_ten_percent():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 1000, (200, 500), generator=g)
    inputs, labels = mask_tokens(ids, mask_id=MASK, vocab_size=1000, special_ids=[0, 1, 2, 3], generator=g)
    n = int((labels != IGNORE_INDEX).sum())  # about 15,000 chosen positions
    assert copy_baseline(inputs, labels) == pytest.approx(0.1, abs=5 * math.sqrt(0.09 / n))
    shares = {k: int(v.sum()) / n for k, v in position_kinds(inputs, labels, MASK).items()}
    assert shares["[MASK]"] == pytest.approx(0.8, abs=5 * math.sqrt(0.16 / n))


def test_pair_probe_scores_by_hand():
    scores = pair_probe_scores([("was", "were"), ("the", "the"), ("is", "is")],
                               [({"was"}, {"were"}), ({"her"}, {"his"}), ({"is", "was"}, {"are"})])
    assert scores.changed == 1 / 3 and scores.right == 3 / 6 and scores.both_right == 1 / 3
    assert scores.num_pairs == 3


def test_errors():
    with pytest.raises(ValueError, match="one shape"):
        copy_baseline(torch.zeros(2, 3, dtype=torch.long), torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="shaped like labels"):
        accuracy_by_kind(torch.zeros(3, dtype=torch.long), INPUTS, LABELS, MASK)
    with pytest.raises(ValueError, match="one pair of answers"):
        pair_probe_scores([("a", "b")], [])
