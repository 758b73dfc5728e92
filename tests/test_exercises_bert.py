"""The Chapter 5 checkers' oracles agree with the book's own code, and each typical wrong answer fails."""

import numpy as np
import pytest
import torch

from lmcourse.bert import mean_pool
from lmcourse.exercises import REGISTRY, evaluate
from lmcourse.exercises import bert as checkers
from lmcourse.mlm import IGNORE_INDEX

NAMES = ["bert.mean_pool", "bert.mask_accuracy", "bert.copy_baseline", "bert.top_k_cosine"]


@pytest.mark.parametrize("name", NAMES)
def test_oracle_passes_and_every_wrong_answer_fails(name):
    exercise = REGISTRY[name]
    assert evaluate(name, exercise.oracle).passed
    assert exercise.wrong_answers
    for label, wrong in exercise.wrong_answers.items():
        assert not evaluate(name, wrong).passed, label


def test_mean_pool_oracle_equals_the_books_mean_pool():
    for case in REGISTRY["bert.mean_pool"].cases:
        hidden, mask = case.args
        ours = mean_pool(torch.as_tensor(hidden, dtype=torch.float64), torch.as_tensor(mask))
        np.testing.assert_allclose(checkers._reference_mean_pool(hidden, mask), ours.numpy(), rtol=1e-12)


def test_mask_scores_agree_with_the_chapters_evaluation_on_a_copying_model():
    """On BERT's rule, copying scores about 10% of the predicted positions and 0% of the [MASK] ones."""
    predictions, inputs, labels = checkers._mlm_outputs(0, (64, 128), 0.0)
    assert checkers._reference_copy_baseline(inputs, labels) == pytest.approx(0.1, abs=0.015)
    copied = np.where(labels != IGNORE_INDEX, inputs, 0)
    assert checkers._reference_mask_accuracy(copied, inputs, labels, 103) == 0.0
    right = np.where(labels != IGNORE_INDEX, labels, 0)
    assert checkers._reference_mask_accuracy(right, inputs, labels, 103) == 1.0


def test_top_k_oracle_equals_torch_cosine():
    for case in REGISTRY["bert.top_k_cosine"].cases:
        query, keys, k = case.args
        cos = torch.nn.functional.cosine_similarity(torch.as_tensor(keys), torch.as_tensor(query)[None], dim=1)
        assert checkers._sklearn_top_k(query, keys, k) == cos.topk(k).indices.tolist()
