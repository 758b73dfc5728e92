"""The Chapter 4a checkers (attention.*), proved on reference solutions written here
as a chapter cell would hold them: each reference passes, its student stub fails as unwritten,
and every registered wrong answer fails. The same proof runs over the notebooks once Chapter 4's
cells exist (tests/test_exercises.py); this file does not depend on them.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from lmcourse.attention import scaled_dot_product_attention
from lmcourse.exercises import REGISTRY, evaluate, load_all
from lmcourse.exercises.notebooks import SolutionCell
from lmcourse.exercises.selftest import selftest_solution

torch.set_num_threads(1)

# The reader's expected code, one chapter cell each: (exercise, function name, cell source).
REFERENCES = [
    ("attention.attention_weights", "attention_weights", '''
import numpy as np

def attention_weights(q, k, causal=False):
    """Row-wise softmax(q k^T / sqrt(d)): q (L, d), k (S, d) -> (L, S)."""
    # BEGIN SOLUTION
    scores = q @ k.T / np.sqrt(q.shape[-1])  # (L, d) @ (d, S) -> (L, S)
    if causal:
        allowed = np.tril(np.ones(scores.shape, dtype=bool))  # query i sees keys j <= i
        scores = np.where(allowed, scores, -np.inf)
    scores = scores - scores.max(axis=-1, keepdims=True)  # the largest score becomes 0: exp cannot overflow
    weights = np.exp(scores)
    return weights / weights.sum(axis=-1, keepdims=True)
    # END SOLUTION
'''),
    ("attention.split_heads", "split_heads", '''
def split_heads(x, num_heads):
    """(B, T, C) -> (B, H, T, D): head h gets dims h*D .. (h+1)*D - 1 of every position."""
    # BEGIN SOLUTION
    B, T, C = x.shape
    return x.view(B, T, num_heads, C // num_heads).transpose(1, 2)  # (B, T, H, D) -> (B, H, T, D)
    # END SOLUTION
'''),
    ("attention.merge_heads", "merge_heads", '''
def merge_heads(x):
    """(B, H, T, D) -> (B, T, H*D), the inverse of split_heads."""
    # BEGIN SOLUTION
    B, H, T, D = x.shape
    return x.transpose(1, 2).reshape(B, T, H * D)  # (B, T, H, D) -> (B, T, C)
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
    wrong = REGISTRY["attention.attention_weights"].wrong_answers["no max subtraction (overflow)"]
    report = evaluate("attention.attention_weights", wrong)
    failed = [r.case.label for r in report.results if not r.passed]
    assert failed and all(label.startswith("large scores") for label in failed)
    assert "nan" in str(report)


def test_wrong_shape_is_named():
    text = str(evaluate("attention.attention_weights", lambda q, k, causal=False: _reference(
        "attention.attention_weights")(q, k, causal).T))
    assert "expected an array of shape (1, 3), got shape (3, 1)" in text


def test_torch_and_numpy_results_are_both_accepted():
    def weights_in_torch(q, k, causal=False):
        q, k = torch.as_tensor(q), torch.as_tensor(k)
        scores = q @ k.T / q.shape[-1] ** 0.5
        if causal:
            scores = scores.masked_fill(~torch.ones_like(scores, dtype=torch.bool).tril(), float("-inf"))
        return torch.softmax(scores, dim=-1)

    def split_in_numpy(x, num_heads):
        B, T, C = x.shape
        return x.numpy().reshape(B, T, num_heads, C // num_heads).transpose(0, 2, 1, 3)

    def table_in_torch(length, dim):  # float32, as torch computes by default
        angles = torch.arange(length)[:, None] / 10000 ** (torch.arange(0, dim, 2) / dim)
        return torch.stack([angles.sin(), angles.cos()], dim=-1).reshape(length, dim)

    assert evaluate("attention.attention_weights", weights_in_torch).passed
    assert evaluate("attention.split_heads", split_in_numpy).passed
    assert evaluate("attention.sinusoidal_table", table_in_torch).passed
    assert evaluate("attention.merge_heads", lambda x: x.transpose(1, 2).flatten(2).numpy()).passed
    as_list = str(evaluate("attention.merge_heads", lambda x: list(x.transpose(1, 2).flatten(2).numpy())))
    assert "expected a NumPy array of shape (1, 2, 4), got a list" in as_list  # the statement asks for a tensor


# --- the oracles agree with independent references -------------------------------------------


def test_attention_oracle_equals_the_book_attention():
    exercise = REGISTRY["attention.attention_weights"]
    for case in exercise.cases:
        q, k = (torch.as_tensor(a) for a in case.args)
        _, weights = scaled_dot_product_attention(q, k, k, is_causal=case.kwargs.get("causal", False),
                                                  return_weights=True)
        np.testing.assert_allclose(exercise.expected(case), weights.numpy(), rtol=1e-12, atol=1e-15)
    hand = exercise.expected(exercise.cases[0])
    np.testing.assert_allclose(hand, [[0.7679, 0.0454, 0.1867]], atol=1e-4)


def test_split_oracle_cuts_each_vector_into_consecutive_pieces_and_merge_inverts_it():
    for case in REGISTRY["attention.split_heads"].cases:
        x, H = case.args
        pieces = torch.stack(x.split(x.shape[-1] // H, dim=-1), dim=1)  # H x (B, T, D) -> (B, H, T, D)
        split = REGISTRY["attention.split_heads"].expected(case)
        np.testing.assert_array_equal(split, pieces.numpy())
        np.testing.assert_array_equal(REGISTRY["attention.merge_heads"].oracle(torch.as_tensor(split)), x.numpy())


def test_sinusoidal_oracle_is_float64_and_leaves_the_default_dtype():
    exercise = REGISTRY["attention.sinusoidal_table"]
    table = exercise.oracle(50, 64)
    p, i = np.arange(50)[:, None], np.arange(32)
    assert table.dtype == np.float64
    np.testing.assert_allclose(table[:, 0::2], np.sin(p / 10000 ** (2 * i / 64)), atol=1e-12)
    np.testing.assert_allclose(table[:, 1::2], np.cos(p / 10000 ** (2 * i / 64)), atol=1e-12)
    assert torch.get_default_dtype() == torch.float32


def test_oracles_leave_the_global_random_stream_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    REGISTRY["attention.split_heads"].oracle(torch.zeros(1, 2, 6), 3)  # builds a MultiHeadAttention
    assert torch.equal(torch.rand(3), expected)
