"""Checkers for Chapter 4a (attention): scaled dot-product attention written in NumPy, one causal
self-attention head written in torch, and the sinusoidal position table.

The oracles are trusted references, not the reader's formula restated: both attention exercises
are answered by ``torch.nn.functional.scaled_dot_product_attention`` in float64 (its boolean
``attn_mask`` has the book's convention, True where attention is allowed; the head's projections are
``torch.nn.functional.linear``), and the table is :func:`lmcourse.positions.sinusoidal_positions`
computed in float64. ``tests/test_exercises_attention.py`` checks the oracles against
:class:`lmcourse.attention.MultiHeadAttention` and the teaching head of :mod:`lmcourse.minigpt`.

>>> from lmcourse.exercises import evaluate
>>> _torch_attend(np.array([[0.0, 2.0]]), _HAND_KEYS, _HAND_VALUES).round(3)  # the by-hand exercise
array([[0.955, 0.232]])
>>> evaluate("attention.causal_head", lambda x, w_q, w_k, w_v: x @ w_v.T).passed
False
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from lmcourse.exercises.core import Case, Exercise, register
from lmcourse.positions import sinusoidal_positions

# --- attention.attend ------------------------------------------------------------------------


def _torch_attend(q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """softmax(q k^T / sqrt(d)) v from torch's scaled_dot_product_attention, in float64:
    q (..., L, d), k (..., S, d), v (..., S, dv), mask broadcastable to (..., L, S), True = allowed."""
    q_t, k_t, v_t = (torch.as_tensor(np.asarray(a, dtype=float)) for a in (q, k, v))
    allowed = None if mask is None else torch.as_tensor(np.asarray(mask, dtype=bool))
    return F.scaled_dot_product_attention(q_t, k_t, v_t, attn_mask=allowed).numpy()  # (..., L, dv)


def _softmax(scores: np.ndarray, axis: int = -1, stable: bool = True) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):  # the wrong answers may overflow or meet -inf - -inf
        if stable:
            scores = scores - scores.max(axis=axis, keepdims=True)
        e = np.exp(scores)
        return e / e.sum(axis=axis, keepdims=True)


def _attend_wrong(scale=lambda d: 1 / np.sqrt(d), axis=-1, stable=True, use_mask=True, invert_mask=False,
                  mask_after=False, weights_only=False):
    """Scaled dot-product attention with one typical slip, chosen by the arguments."""
    def attend(q, k, v, mask=None):
        q, k, v = (np.asarray(a, dtype=float) for a in (q, k, v))
        scores = q @ np.swapaxes(k, -1, -2) * scale(q.shape[-1])  # (..., L, d) @ (..., d, S) -> (..., L, S)
        allowed = None if mask is None or not use_mask else np.asarray(mask, dtype=bool) ^ invert_mask
        if allowed is not None and not mask_after:
            scores = np.where(allowed, scores, -np.inf)
        weights = _softmax(scores, axis, stable)
        if allowed is not None and mask_after:
            weights = np.where(allowed, weights, 0.0)  # zeroed after the softmax: rows no longer sum to 1
        return weights if weights_only else weights @ v  # (..., L, S) @ (..., S, dv) -> (..., L, dv)
    return attend


def _attend_plain_transpose(q, k, v, mask=None):
    q, k, v = (np.asarray(a, dtype=float) for a in (q, k, v))
    scores = q @ k.T / np.sqrt(q.shape[-1])  # right for one sequence; for a batch k.T is (d, S, B)
    weights = _softmax(scores if mask is None else np.where(mask, scores, -np.inf))
    return weights @ v


def _attend_scales_in_place(q, k, v, mask=None):
    q /= np.sqrt(q.shape[-1])  # changes the caller's array
    return _attend_wrong(scale=lambda d: 1.0)(q, k, v, mask)


def _attend_as_lists(q, k, v, mask=None):
    return _torch_attend(q, k, v, mask).tolist()


_HAND_KEYS = np.array([[1.0, 1.0], [0.0, -1.0], [2.0, 0.0]])
_HAND_VALUES = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])


def _attend_cases() -> list[Case]:
    rng = np.random.default_rng(4)
    hand_q = np.array([[0.0, 2.0]])
    n = rng.normal
    padded = np.ones((2, 1, 5), dtype=bool)
    padded[1, :, 3:] = False  # the second sequence has 3 real keys of 5
    patterned = rng.random((4, 6)) < 0.5
    patterned[:, 0] = True  # every query may see at least key 0
    big_q, big_k = 20 + 0.1 * n(size=(4, 4)), 20 + 0.1 * n(size=(5, 4))  # scores about 800, differing by units
    return [
        Case((hand_q, _HAND_KEYS, _HAND_VALUES),
             label="the by-hand exercise: q=(0,2), keys (1,1), (0,-1), (2,0), values (1,0), (0,1), (1,1)"),
        Case((hand_q, _HAND_KEYS, _HAND_VALUES), {"mask": np.array([[True, False, False]])},
             label="the by-hand exercise, only key 1 allowed: the output is v1"),
        Case((n(size=(4, 3)), n(size=(4, 3)), n(size=(4, 2))), label="L=S=4, d=3, dv=2, random, no mask"),
        Case((n(size=(5, 8)), n(size=(5, 8)), n(size=(5, 3))), {"mask": np.tril(np.ones((5, 5), dtype=bool))},
             label="L=S=5, d=8, a causal mask (np.tril)"),
        Case((n(size=(3, 4)), n(size=(6, 4)), n(size=(6, 1))), label="3 queries, 6 keys (L != S), dv=1"),
        Case((n(size=(4, 2)), n(size=(6, 2)), n(size=(6, 3))), {"mask": patterned},
             label="L=4, S=6, an irregular mask (each query sees key 0 and some others)"),
        Case((n(size=(2, 4, 3)), n(size=(2, 5, 3)), n(size=(2, 5, 2))),
             label="a batch: q (B=2, L=4, d=3), k (2, 5, 3), v (2, 5, 2), no mask"),
        Case((n(size=(2, 4, 3)), n(size=(2, 5, 3)), n(size=(2, 5, 2))), {"mask": padded},
             label="a batch with a padding mask (B=2, 1, S=5): the second sequence has 3 real keys"),
        Case((big_q, big_k, n(size=(5, 2))),
             label="large scores (about 800, differing by a few units): exp would overflow"),
        Case((big_q, big_k[:4], n(size=(4, 2))), {"mask": np.tril(np.ones((4, 4), dtype=bool))},
             label="large scores, L=S=4, a causal mask"),
    ]


register(Exercise(
    name="attention.attend",
    cases=_attend_cases(),
    oracle=_torch_attend,
    nudge="Check the scale 1/sqrt(d), that blocked scores become -inf BEFORE the softmax, and that the softmax "
          "runs over the keys (the last axis) after subtracting each row's maximum.",
    hint="The scores are q times k transposed, divided by sqrt(d) (d is the size of each query): an (..., L, S) "
         "array, one row per query. For a batch, transpose only the last two axes of k (np.swapaxes(k, -1, -2)): "
         "k.T reverses every axis. Where mask is False, set the score to -inf, so that its weight becomes exactly "
         "0 and the other weights still sum to 1. Take the softmax of each ROW (over the keys, axis=-1), "
         "subtracting the row's maximum before np.exp so that large scores do not overflow. The output is the "
         "weights times v: (..., L, S) by (..., S, dv) gives (..., L, dv).",
    wrong_answers={"no scaling by sqrt(d)": _attend_wrong(scale=lambda d: 1.0),
                   "scaled by d instead of sqrt(d)": _attend_wrong(scale=lambda d: 1 / d),
                   "softmax over the queries (axis -2)": _attend_wrong(axis=-2),
                   "mask ignored": _attend_wrong(use_mask=False),
                   "mask read the wrong way (True = blocked)": _attend_wrong(invert_mask=True),
                   "mask applied after the softmax": _attend_wrong(mask_after=True),
                   "no max subtraction (overflow)": _attend_wrong(stable=False),
                   "returns the weights, not the output": _attend_wrong(weights_only=True),
                   "k.T on a batch (reverses every axis)": _attend_plain_transpose,
                   "changes its input (scales q in place)": _attend_scales_in_place,
                   "returns nested lists, not an array": _attend_as_lists},
    rel_tol=1e-5,
    abs_tol=1e-8,
))

# --- attention.causal_head -------------------------------------------------------------------


def _torch_causal_head(x: torch.Tensor, w_q: torch.Tensor, w_k: torch.Tensor, w_v: torch.Tensor) -> np.ndarray:
    """One causal self-attention head from torch's own functions: x (B, T, C), w_* (D, C) -> (B, T, D)."""
    q, k, v = (F.linear(x, w) for w in (w_q, w_k, w_v))  # (B, T, C) -> (B, T, D)
    return F.scaled_dot_product_attention(q, k, v, is_causal=True).numpy()  # (B, T, D)


def _head_wrong(scale=lambda D, C: 1 / math.sqrt(D), diagonal=0, mask_after=False, use_mask=True, transposed=False,
                dim=-1, project=lambda x, w: x @ w.T, swap_qk=False):
    """A causal head with one typical slip, chosen by the arguments (the defaults give the right head)."""
    def head(x, w_q, w_k, w_v):
        q, k, v = (project(x, w) for w in (w_q, w_k, w_v))  # (B, T, D)
        if swap_qk:
            q, k = k, q
        scores = q @ k.transpose(-2, -1) * scale(q.shape[-1], x.shape[-1])  # (B, T, D) @ (B, D, T) -> (B, T, T)
        T = x.shape[1]
        allowed = torch.ones(T, T, dtype=torch.bool).tril(diagonal)
        allowed = allowed.T if transposed else allowed
        if use_mask and not mask_after:
            scores = scores.masked_fill(~allowed, float("-inf"))
        weights = torch.softmax(scores, dim=dim)
        if use_mask and mask_after:
            weights = weights.masked_fill(~allowed, 0.0)  # rows no longer sum to 1
        return weights @ v  # (B, T, T) @ (B, T, D) -> (B, T, D)
    return head


def _head_scales_w_q_in_place(x, w_q, w_k, w_v):
    w_q.mul_(1 / math.sqrt(w_q.shape[0]))  # folds the scale into the caller's weights
    return _head_wrong(scale=lambda D, C: 1.0)(x, w_q, w_k, w_v)


def _head_with_weights(x, w_q, w_k, w_v):
    out = _head_wrong()(x, w_q, w_k, w_v)
    return out, None


def _head_cases() -> list[Case]:
    gen = torch.Generator().manual_seed(41)

    def random(B: int, T: int, C: int, D: int, scale: float = 1.0) -> tuple:
        return tuple(torch.randn(*shape, generator=gen, dtype=torch.float64) * s
                     for shape, s in (((B, T, C), scale), ((D, C), 1.0), ((D, C), 1.0), ((D, C), 1.0)))

    eye = torch.eye(2, dtype=torch.float64)
    return [
        Case((torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]], dtype=torch.float64), eye, eye, eye),
             label="x = (1,0), (0,1), (1,1) as (B=1, T=3, C=2), all three projections the identity (D=2)"),
        Case(random(2, 4, 6, 3), label="random x (B=2, T=4, C=6), projections (D=3, C=6)"),
        Case(random(1, 5, 4, 4), label="random x (B=1, T=5, C=4), square projections (D = C = 4)"),
        Case(random(3, 1, 3, 2), label="a single position (T=1): it can only read itself"),
        Case(random(2, 6, 8, 2), label="random x (B=2, T=6, C=8), a narrow head (D=2)"),
        Case(random(2, 7, 5, 3, scale=3.0), label="larger inputs (B=2, T=7, C=5, D=3): sharper weights"),
    ]


register(Exercise(
    name="attention.causal_head",
    cases=_head_cases(),
    oracle=_torch_causal_head,
    nudge="Scale by the head size D, and hide the future BEFORE the softmax: position i reads 0..i, itself "
          "included.",
    hint="First the projections: each weight matrix has shape (D, C), so q = x @ w_q.T is (B, T, D), and the same "
         "for k and v. The scores are q times k with its last two axes swapped, (B, T, T), divided by sqrt(D), the "
         "size of the head (not the model width C). Position i may read positions 0..i: build a (T, T) boolean "
         "matrix that is True on and below the diagonal (torch.tril of ones) and give the other scores -inf with "
         "masked_fill, BEFORE the softmax, so that the allowed weights still sum to 1. The first row then keeps "
         "one score, its own. Take the softmax over the keys (dim=-1) and multiply by v.",
    wrong_answers={"no scaling": _head_wrong(scale=lambda D, C: 1.0),
                   "scaled by sqrt(C), the model width, not sqrt(D)": _head_wrong(scale=lambda D, C: 1 / math.sqrt(C)),
                   "mask off by one: the diagonal excluded": _head_wrong(diagonal=-1),
                   "mask off by one: one future key allowed": _head_wrong(diagonal=1),
                   "mask applied after the softmax": _head_wrong(mask_after=True),
                   "mask transposed (keys j >= i)": _head_wrong(transposed=True),
                   "no mask (every position sees the future)": _head_wrong(use_mask=False),
                   "softmax over the queries (dim=-2)": _head_wrong(dim=-2),
                   "projects with x @ w, not x @ w.T": _head_wrong(project=lambda x, w: x @ w),
                   "queries and keys swapped": _head_wrong(swap_qk=True),
                   "changes its input (scales w_q in place)": _head_scales_w_q_in_place,
                   "returns (output, weights), not the output": _head_with_weights},
    rel_tol=1e-6,
    abs_tol=1e-9,
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
