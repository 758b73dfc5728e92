"""The Chapter 4a checkers (attention.*), proved on reference solutions written here
as a chapter cell would hold them: each reference passes, its student stub fails as unwritten,
and every registered wrong answer fails. The same proof runs over the notebooks once Chapter 4's
cells exist (tests/test_exercises.py); this file does not depend on them.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from lmcourse.attention import MultiHeadAttention, scaled_dot_product_attention
from lmcourse.exercises import REGISTRY, evaluate, load_all
from lmcourse.exercises.notebooks import SolutionCell
from lmcourse.exercises.selftest import selftest_solution
from lmcourse.minigpt import attention_head

torch.set_num_threads(1)

# The reader's expected code, one chapter cell each: (exercise, function name, cell source).
REFERENCES = [
    ("attention.attend", "attend", '''
import numpy as np

def attend(q, k, v, mask=None):
    """softmax(q k^T / sqrt(d)) v over the keys, blocked where mask is False: (..., L, dv)."""
    # BEGIN SOLUTION
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])  # (..., L, d) @ (..., d, S) -> (..., L, S)
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    scores = scores - scores.max(axis=-1, keepdims=True)  # the largest score becomes 0: exp cannot overflow
    weights = np.exp(scores)
    return (weights / weights.sum(axis=-1, keepdims=True)) @ v  # (..., L, S) @ (..., S, dv) -> (..., L, dv)
    # END SOLUTION
'''),
    ("attention.causal_head", "causal_head", '''
import math

import torch

def causal_head(x, w_q, w_k, w_v):
    """x (B, T, C), projections (D, C) -> (B, T, D)."""
    # BEGIN SOLUTION
    q, k, v = x @ w_q.T, x @ w_k.T, x @ w_v.T  # (B, T, C) @ (C, D) -> (B, T, D)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, T, D) @ (B, D, T) -> (B, T, T)
    T = x.shape[1]
    allowed = torch.ones(T, T, dtype=torch.bool).tril()
    return torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1) @ v
    # END SOLUTION
'''),
    ("attention.sinusoidal_table", "sinusoidal_table", '''
import numpy as np

def sinusoidal_table(length, dim):
    """PE(p, 2i) = sin(p / 10000^(2i/dim)), PE(p, 2i+1) = cos(...): (length, dim)."""
    # BEGIN SOLUTION
    positions = np.arange(length)[:, None]  # (length, 1)
    frequencies = 10000.0 ** (-np.arange(0, dim, 2) / dim)  # (dim/2,): the exponent is 2i/dim
    angles = positions * frequencies  # (length, 1) * (dim/2,) -> (length, dim/2)
    table = np.zeros((length, dim))
    table[:, 0::2] = np.sin(angles)  # even columns
    table[:, 1::2] = np.cos(angles)  # odd columns
    return table
    # END SOLUTION
'''),
]

CELLS = [SolutionCell(Path(__file__), i, source.lstrip("\n"), exercise, function)
         for i, (exercise, function, source) in enumerate(REFERENCES)]
CHAPTER_4A = sorted(exercise for exercise, _, _ in REFERENCES)


def _reference(name: str):
    cell = next(c for c in CELLS if c.exercise == name)
    namespace: dict = {}
    exec(cell.source, namespace)  # noqa: S102 - the references above
    return namespace[cell.function]


def test_chapter_4a_exercises_are_registered():
    load_all()
    assert CHAPTER_4A == sorted(n for n in REGISTRY if n.split(".")[0] == "attention")


@pytest.mark.parametrize("cell", CELLS, ids=[c.exercise for c in CELLS])
def test_checker_passes_reference_fails_stub_and_every_wrong_answer(cell):
    result = selftest_solution(cell)
    assert result.ok, "\n".join(result.problems)
    assert result.reference_passes and result.stub_fails
    assert result.wrong_answers_caught == result.wrong_answers >= 3


@pytest.mark.parametrize("cell", CELLS, ids=[c.exercise for c in CELLS])
def test_stub_message_is_friendly(cell):
    namespace: dict = {}
    exec(cell.stub_source(), namespace)  # noqa: S102
    text = str(evaluate(cell.exercise, namespace[cell.function]))
    assert "Not written yet" in text and "Hint" not in text and "Traceback" not in text


def test_no_max_subtraction_fails_only_where_scores_are_large():
    wrong = REGISTRY["attention.attend"].wrong_answers["no max subtraction (overflow)"]
    report = evaluate("attention.attend", wrong)
    failed = [r.case.label for r in report.results if not r.passed]
    assert failed and all(label.startswith("large scores") for label in failed)
    assert "nan" in str(report)


def test_wrong_shape_is_named():
    text = str(evaluate("attention.attend", lambda q, k, v, mask=None: _reference("attention.attend")(q, k, v, mask).T))
    assert "expected an array of shape (1, 2), got shape (2, 1)" in text


def test_off_by_one_mask_is_explained_by_a_nan_on_the_first_position():
    wrong = REGISTRY["attention.causal_head"].wrong_answers["mask off by one: the diagonal excluded"]
    text = str(evaluate("attention.causal_head", wrong))
    assert "expected 1.0, got nan" in text and "Hint:" in text


def test_changed_input_is_reported():
    wrong = REGISTRY["attention.causal_head"].wrong_answers["changes its input (scales w_q in place)"]
    assert "your function changed its input `w_q`" in str(evaluate("attention.causal_head", wrong))


def test_torch_and_numpy_results_are_both_accepted():
    def attend_in_torch(q, k, v, mask=None):
        q, k, v = (torch.as_tensor(a) for a in (q, k, v))
        scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
        if mask is not None:
            scores = scores.masked_fill(~torch.as_tensor(mask), float("-inf"))
        return torch.softmax(scores, dim=-1) @ v

    def head_in_numpy(x, w_q, w_k, w_v):
        x, w_q, w_k, w_v = (a.numpy() for a in (x, w_q, w_k, w_v))
        return _reference("attention.attend")(x @ w_q.T, x @ w_k.T, x @ w_v.T, np.tri(x.shape[1], dtype=bool))

    def table_in_torch(length, dim):  # float32, as torch computes by default
        angles = torch.arange(length)[:, None] / 10000 ** (torch.arange(0, dim, 2) / dim)
        return torch.stack([angles.sin(), angles.cos()], dim=-1).reshape(length, dim)

    assert evaluate("attention.attend", attend_in_torch).passed
    assert evaluate("attention.causal_head", head_in_numpy).passed
    assert evaluate("attention.sinusoidal_table", table_in_torch).passed


# --- the oracles agree with independent references -------------------------------------------


def test_attend_oracle_equals_the_book_attention():
    exercise = REGISTRY["attention.attend"]
    for case in exercise.cases:
        q, k, v = (torch.as_tensor(a) for a in case.args)
        mask = case.kwargs.get("mask")
        out = scaled_dot_product_attention(q, k, v, mask=None if mask is None else torch.as_tensor(mask))
        np.testing.assert_allclose(exercise.expected(case), out.numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(exercise.expected(exercise.cases[0]), [[0.9546, 0.2321]], atol=1e-4)  # exercise 1
    np.testing.assert_allclose(exercise.expected(exercise.cases[1]), [[1.0, 0.0]])  # only v1 allowed


def test_head_oracle_equals_multi_head_attention_and_the_teaching_head():
    exercise = REGISTRY["attention.causal_head"]
    for case in exercise.cases:
        x, w_q, w_k, w_v = case.args
        np.testing.assert_allclose(exercise.expected(case), attention_head(x, w_q, w_k, w_v).numpy(), atol=1e-12)
        D, C = w_q.shape
        if D == C:  # one head of the production module, with no biases and the identity as output projection
            mha = MultiHeadAttention(C, 1, causal=True, bias=False).double()
            with torch.no_grad():
                mha.in_proj.weight.copy_(torch.cat([w_q, w_k, w_v]))
                mha.out_proj.weight.copy_(torch.eye(C, dtype=torch.float64))
                np.testing.assert_allclose(exercise.expected(case), mha(x).numpy(), atol=1e-12)


def test_sinusoidal_oracle_is_float64_and_leaves_the_default_dtype():
    exercise = REGISTRY["attention.sinusoidal_table"]
    table = exercise.oracle(50, 64)
    p, i = np.arange(50)[:, None], np.arange(32)
    assert table.dtype == np.float64
    np.testing.assert_allclose(table[:, 0::2], np.sin(p / 10000 ** (2 * i / 64)), atol=1e-12)
    np.testing.assert_allclose(table[:, 1::2], np.cos(p / 10000 ** (2 * i / 64)), atol=1e-12)
    assert torch.get_default_dtype() == torch.float32
