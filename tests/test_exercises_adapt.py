"""The Chapter 8 checkers' oracles against hand-worked values and independent computations. That each
checker passes the chapter's reference, fails a stub and fails every registered wrong answer is
proved over the notebooks by tests/test_exercises.py."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import lmcourse.exercises.adapt  # noqa: F401  (registers the chapter's checkers)
from lmcourse.exercises import REGISTRY


def _oracle(name):
    return REGISTRY[name].oracle


def test_lora_forward_oracle_is_the_formula():
    for case in REGISTRY["adapt.lora_forward"].cases:
        x, weight, bias, A, B, alpha, r = case.args
        expected = x @ weight.T + (alpha / r) * (x @ A.T) @ B.T + (0 if bias is None else bias)
        assert np.allclose(_oracle("adapt.lora_forward")(*case.args), expected.numpy(), atol=1e-12)
    assert any(case.args[2] is None for case in REGISTRY["adapt.lora_forward"].cases)
    assert any(case.args[0].dim() == 3 for case in REGISTRY["adapt.lora_forward"].cases)


def test_assistant_labels_oracle_on_the_rendered_conversation():
    case = REGISTRY["adapt.assistant_labels"].cases[-1]
    ids, flags = case.args
    labels = _oracle("adapt.assistant_labels")(ids, flags)
    learned = bytes(t - 3 for t, label in zip(ids, labels) if label != -100 and t >= 3).decode()
    assert learned == "Hello.1905"  # both replies' text (their end-of-turn tokens are special ids)
    assert sum(label == 2 for label in labels) == 2  # and each reply's <|im_end|>
    assert _oracle("adapt.assistant_labels")([5, 6], [False, True]) == [-100, 6]


def test_dpo_oracle_by_hand():
    loss = _oracle("adapt.dpo_loss")(torch.tensor([-10.0]), torch.tensor([-25.0]), torch.tensor([-12.0]),
                                     torch.tensor([-20.0]), 0.1)
    assert float(loss) == pytest.approx(math.log(1 + math.exp(-0.7)), abs=1e-6)  # the chapter's exercise 2
    first = REGISTRY["adapt.dpo_loss"].cases[0]
    assert float(_oracle("adapt.dpo_loss")(*first.args)) == pytest.approx(math.log(2))
    pc, pr, rc, rr, beta = REGISTRY["adapt.dpo_loss"].cases[1].args
    by_hand = -F.logsigmoid(beta * ((pc - rc) - (pr - rr))).mean()
    assert np.allclose(_oracle("adapt.dpo_loss")(pc, pr, rc, rr, beta), by_hand.numpy())


def test_lora_parameters_oracle_counts_smollm2():
    assert _oracle("adapt.lora_parameters")([(4, 6)], 2) == 20
    smollm_case = next(c for c in REGISTRY["adapt.lora_parameters"].cases if "30 blocks" in c.label)
    assert _oracle("adapt.lora_parameters")(*smollm_case.args) == 2_165_760  # Chapter 8, Section 8.3
