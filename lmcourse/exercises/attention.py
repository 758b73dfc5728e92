"""Checkers for Chapter 4a (attention): the weights of scaled dot-product attention, splitting a
``(B, T, C)`` tensor into heads and merging them back, and the sinusoidal position table.

The oracles are trusted references, not the reader's formula restated: the weights come from
``torch.nn.functional.scaled_dot_product_attention`` applied to the identity as values
(``W @ I = W``), the head split cuts the channels into consecutive chunks stacked with ``torch.stack``
(as :class:`lmcourse.attention.MultiHeadAttention` splits them), the merge concatenates the heads with
``torch.cat``, and the table is :func:`lmcourse.positions.sinusoidal_positions`
computed in float64.

>>> from lmcourse.exercises import evaluate
>>> _torch_attention_weights(np.array([[0.0, 2.0]]), _HAND_KEYS).round(3)  # the by-hand exercise
array([[0.768, 0.045, 0.187]])
>>> evaluate("attention.split_heads", lambda x, h: x.reshape(x.shape[0], h, x.shape[1], -1)).passed
False
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from lmcourse.exercises.core import Case, Exercise, register
from lmcourse.positions import sinusoidal_positions

# --- attention.attention_weights -------------------------------------------------------------


def _torch_attention_weights(q: np.ndarray, k: np.ndarray, causal: bool = False) -> np.ndarray:
    """softmax(q k^T / sqrt(d)) from torch's scaled_dot_product_attention, in float64: with the values V = I_S
    the output W @ I is the weight matrix itself. (L, d), (S, d) -> (L, S)."""
    q_t = torch.as_tensor(np.asarray(q, dtype=float))[None]  # (1, L, d)
    k_t = torch.as_tensor(np.asarray(k, dtype=float))[None]  # (1, S, d)
    identity = torch.eye(k_t.shape[1], dtype=torch.float64)[None]  # (1, S, S)
    return F.scaled_dot_product_attention(q_t, k_t, identity, is_causal=causal)[0].numpy()  # (L, S)


def _softmax_rows(scores: np.ndarray, axis: int = -1, stable: bool = True) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):  # the wrong answers may overflow or meet -inf - -inf
        if stable:
            scores = scores - scores.max(axis=axis, keepdims=True)
        e = np.exp(scores)
        return e / e.sum(axis=axis, keepdims=True)


def _masked(scores: np.ndarray, allowed: np.ndarray | None) -> np.ndarray:
    return scores if allowed is None else np.where(allowed, scores, -np.inf)


def _causal(L: int, S: int, causal: bool) -> np.ndarray | None:
    return np.tril(np.ones((L, S), dtype=bool)) if causal else None


def _weights_no_scaling(q, k, causal=False):
    q, k = np.asarray(q, dtype=float), np.asarray(k, dtype=float)
    return _softmax_rows(_masked(q @ k.T, _causal(len(q), len(k), causal)))


def _weights_scaled_by_d(q, k, causal=False):
    q, k = np.asarray(q, dtype=float), np.asarray(k, dtype=float)
    return _softmax_rows(_masked(q @ k.T / q.shape[1], _causal(len(q), len(k), causal)))


def _weights_softmax_over_queries(q, k, causal=False):
    q, k = np.asarray(q, dtype=float), np.asarray(k, dtype=float)
    return _softmax_rows(_masked(q @ k.T / np.sqrt(q.shape[1]), _causal(len(q), len(k), causal)), axis=0)


def _weights_mask_ignored(q, k, causal=False):
    return _torch_attention_weights(q, k, causal=False)


def _weights_mask_transposed(q, k, causal=False):
    q, k = np.asarray(q, dtype=float), np.asarray(k, dtype=float)
    allowed = np.triu(np.ones((len(q), len(k)), dtype=bool)) if causal else None
    return _softmax_rows(_masked(q @ k.T / np.sqrt(q.shape[1]), allowed))


def _weights_no_max_subtraction(q, k, causal=False):
    q, k = np.asarray(q, dtype=float), np.asarray(k, dtype=float)
    return _softmax_rows(_masked(q @ k.T / np.sqrt(q.shape[1]), _causal(len(q), len(k), causal)), stable=False)


def _weights_scales_in_place(q, k, causal=False):
    q /= np.sqrt(q.shape[1])  # changes the caller's array
    return _softmax_rows(_masked(q @ np.asarray(k).T, _causal(len(q), len(k), causal)))


_HAND_KEYS = np.array([[1.0, 1.0], [0.0, -1.0], [2.0, 0.0]])


def _attention_cases() -> list[Case]:
    rng = np.random.default_rng(4)
    hand_q = np.array([[0.0, 2.0]])
    cases = [
        Case((hand_q, _HAND_KEYS), label="the by-hand exercise: q=(0,2), keys (1,1), (0,-1), (2,0)"),
        Case((hand_q, _HAND_KEYS), {"causal": True},
             label="the by-hand exercise with causal=True: the only query, at position 0, sees key 0 alone"),
        Case((rng.normal(size=(4, 3)), rng.normal(size=(4, 3))), label="L=S=4, d=3, random, not causal"),
        Case((rng.normal(size=(5, 8)), rng.normal(size=(5, 8))), {"causal": True}, label="L=S=5, d=8, random, causal"),
        Case((rng.normal(size=(3, 4)), rng.normal(size=(6, 4))), label="3 queries, 6 keys (L != S), not causal"),
        Case((rng.normal(size=(3, 4)), rng.normal(size=(6, 4))), {"causal": True},
             label="3 queries, 6 keys, causal: query i sees keys 0..i"),
        Case((rng.normal(size=(6, 2)), rng.normal(size=(3, 2))), {"causal": True},
             label="6 queries, 3 keys, causal: queries 2..5 see all three keys"),
    ]
    # Scores near 800 that differ by a few units: ordinary weights, but exp(800) overflows.
    big_q, big_k = 20 + 0.1 * rng.normal(size=(4, 4)), 20 + 0.1 * rng.normal(size=(5, 4))
    cases.append(Case((big_q, big_k), label="large scores (about 800, differing by a few units): exp would overflow"))
    cases.append(Case((big_q, big_k[:4]), {"causal": True}, label="large scores, L=S=4, causal"))
    return cases


register(Exercise(
    name="attention.attention_weights",
    cases=_attention_cases(),
    oracle=_torch_attention_weights,
    hint="The scores are q @ k.T divided by sqrt(d), where d is the size of each query: an (L, S) matrix, one row "
         "per query. With causal=True, query i may only see keys j <= i: give every other score -inf, so that "
         "its weight becomes 0 (np.tril of an (L, S) matrix of ones marks the allowed pairs). Then take the "
         "softmax of each ROW (axis=-1), subtracting the row's maximum before np.exp so that large scores do "
         "not overflow. Every row of the result sums to 1.",
    wrong_answers={"no scaling by sqrt(d)": _weights_no_scaling, "scaled by d instead of sqrt(d)": _weights_scaled_by_d,
                   "softmax over the queries (columns)": _weights_softmax_over_queries,
                   "causal mask ignored": _weights_mask_ignored,
                   "mask transposed (keys j >= i)": _weights_mask_transposed,
                   "no max subtraction (overflow)": _weights_no_max_subtraction,
                   "changes its input (scales q in place)": _weights_scales_in_place},
    nudge="Scale q k^T by 1/sqrt(d), hide keys j > i when causal, and take a stable softmax of each ROW.",
    rel_tol=1e-5,
    abs_tol=1e-8,
))

# --- attention.split_heads and attention.merge_heads -----------------------------------------


def _as_numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy()


def _split_heads(x: torch.Tensor, num_heads: int) -> np.ndarray:
    """Cut the last axis into H consecutive pieces and stack them as a head axis: (B, T, C) -> (B, H, T, D)
    (the split of the book's MultiHeadAttention, written as chunk and stack rather than view and transpose)."""
    return _as_numpy(torch.stack(torch.as_tensor(x).chunk(num_heads, dim=-1), dim=1))  # H x (B, T, D) -> (B, H, T, D)


def _split_reshape_only(x, num_heads):
    B, T, C = x.shape
    return x.reshape(B, num_heads, T, C // num_heads)


def _split_interleaved(x, num_heads):
    B, T, C = x.shape
    return x.reshape(B, T, C // num_heads, num_heads).permute(0, 3, 1, 2)  # head h gets dims h, h+H, ...


def _split_no_transpose(x, num_heads):
    B, T, C = x.shape
    return x.reshape(B, T, num_heads, C // num_heads)


def _numbered(*shape: int) -> torch.Tensor:
    """A float64 tensor holding 0, 1, 2, ... so that every misplaced entry shows."""
    return torch.arange(int(np.prod(shape)), dtype=torch.float64).reshape(shape)


def _split_cases() -> list[Case]:
    gen = torch.Generator().manual_seed(4)
    return [
        Case((_numbered(1, 2, 4), 2),
             label="x = 0..7 as (B=1, T=2, C=4), 2 heads: head 0 gets dims 0-1, head 1 dims 2-3"),
        Case((_numbered(1, 3, 4), 2), label="(B=1, T=3, C=4), 2 heads"),
        Case((_numbered(2, 5, 12), 3), label="(B=2, T=5, C=12), 3 heads of size 4"),
        Case((_numbered(2, 3, 6), 3), label="(B=2, T=3, C=6), 3 heads: T equals H"),
        Case((_numbered(2, 4, 8), 1), label="(B=2, T=4, C=8), a single head"),
        Case((torch.randn(3, 4, 8, generator=gen, dtype=torch.float64), 4), label="random (B=3, T=4, C=8), 4 heads"),
    ]


register(Exercise(
    name="attention.split_heads",
    cases=_split_cases(),
    oracle=_split_heads,
    hint="Two steps. First cut the last axis C of each position's vector into H consecutive pieces of size "
         "D = C / H, giving (B, T, H, D): piece h is dims h*D .. (h+1)*D - 1. Then swap the time and head axes "
         "to get (B, H, T, D). A single reshape straight to (B, H, T, D) has the right shape but puts numbers "
         "from different positions into one head.",
    wrong_answers={"reshape to (B, H, T, D) without the transpose": _split_reshape_only,
                   "heads interleaved (head h gets dims h, h+H, ...)": _split_interleaved,
                   "returns (B, T, H, D): forgot to move the head axis": _split_no_transpose},
    nudge="Cut each position's C numbers into H consecutive pieces first, then move the head axis before time.",
))


def _merge_heads(x: torch.Tensor) -> np.ndarray:
    """Concatenate the heads' outputs side by side: (B, H, T, D) -> (B, T, H*D)."""
    return _as_numpy(torch.cat(torch.as_tensor(x).unbind(1), dim=-1))  # H x (B, T, D) -> (B, T, H*D)


def _merge_reshape_only(x):
    B, H, T, D = x.shape
    return x.reshape(B, T, H * D)


def _merge_interleaved(x):
    B, H, T, D = x.shape
    return x.permute(0, 2, 3, 1).reshape(B, T, D * H)  # (B, T, D, H): dims of the heads interleaved


def _merge_reversed_heads(x):
    return torch.cat(x.flip(1).unbind(1), dim=-1)


def _merge_cases() -> list[Case]:
    gen = torch.Generator().manual_seed(5)
    return [
        Case((_numbered(1, 2, 2, 2),),
             label="x = 0..7 as (B=1, H=2, T=2, D=2): the split of the first split_heads case"),
        Case((_numbered(1, 2, 3, 2),), label="(B=1, H=2, T=3, D=2)"),
        Case((_numbered(2, 3, 5, 4),), label="(B=2, H=3, T=5, D=4)"),
        Case((_numbered(2, 3, 3, 2),), label="(B=2, H=3, T=3, D=2): T equals H"),
        Case((torch.randn(3, 4, 4, 2, generator=gen, dtype=torch.float64),), label="random (B=3, H=4, T=4, D=2)"),
    ]


register(Exercise(
    name="attention.merge_heads",
    cases=_merge_cases(),
    oracle=_merge_heads,
    hint="Undo split_heads step by step, in the reverse order: first bring the time axis back in front of the "
         "head axis, (B, H, T, D) -> (B, T, H, D); then join the last two axes into one of size H*D, so that each "
         "position's vector is head 0's D numbers, then head 1's, and so on. Reshaping straight to (B, T, H*D) "
         "has the right shape but mixes positions. Check: merge_heads(split_heads(x, H)) should give x back.",
    wrong_answers={"reshape to (B, T, H*D) without the transpose": _merge_reshape_only,
                   "heads' dims interleaved": _merge_interleaved,
                   "heads concatenated in reverse order": _merge_reversed_heads},
    nudge="Undo split_heads in reverse order: move time back before the heads, then join the last two axes.",
))

# --- attention.sinusoidal_table --------------------------------------------------------------


@contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def _sinusoidal_table(length: int, dim: int) -> np.ndarray:
    """The package's table, in float64 (it computes in float64 and returns the default dtype)."""
    with _default_dtype(torch.float64):
        return sinusoidal_positions(length, dim).numpy()


def _angles(length: int, dim: int, exponent_step: int) -> np.ndarray:
    i = np.arange(dim // 2)
    return np.arange(length)[:, None] / 10000.0 ** (exponent_step * i / dim)  # (length, dim/2)


def _interleave(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.empty((a.shape[0], 2 * a.shape[1]))
    out[:, 0::2], out[:, 1::2] = a, b
    return out


def _table_exponent_i(length, dim):
    angles = _angles(length, dim, 1)
    return _interleave(np.sin(angles), np.cos(angles))


def _table_sin_cos_swapped(length, dim):
    angles = _angles(length, dim, 2)
    return _interleave(np.cos(angles), np.sin(angles))


def _table_halves(length, dim):
    angles = _angles(length, dim, 2)
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)


register(Exercise(
    name="attention.sinusoidal_table",
    cases=[
        Case((2, 4), label="length=2, dim=4: row 0 is (0, 1, 0, 1)"),
        Case((1, 2), label="length=1, dim=2"),
        Case((10, 16), label="length=10, dim=16"),
        Case((7, 6), label="length=7, dim=6"),
        Case((50, 64), label="length=50, dim=64"),
    ],
    oracle=_sinusoidal_table,
    hint="Columns come in pairs that share one frequency: column 2i holds sin(p / 10000^(2i/dim)) and column 2i+1 "
         "holds cos of the same angle, so the exponent uses the even column number 2i (not i). Build the "
         "(length, dim/2) angles by broadcasting the positions (a column) against the frequencies (a row), then "
         "put the sines in the even columns and the cosines in the odd ones, interleaved rather than one half "
         "after the other. Row 0 is (0, 1, 0, 1, ...).",
    wrong_answers={"exponent i/dim instead of 2i/dim": _table_exponent_i, "sin and cos swapped": _table_sin_cos_swapped,
                   "all sines, then all cosines": _table_halves,
                   "returns nested lists, not an array": lambda length, dim: _sinusoidal_table(length, dim).tolist()},
    nudge="Column 2i holds sin(p / 10000^(2i/dim)), column 2i+1 the cos of the same angle.",
    rel_tol=1e-6,
    abs_tol=1e-5,  # lenient enough for a table computed in float32
))
