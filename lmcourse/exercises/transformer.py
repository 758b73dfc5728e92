"""Checkers for Chapter 4b (the Transformer): the parameter count of the book's decoder-only model,
and layer normalisation.

The oracles are trusted references, not the reader's formula restated: the count is read from a
:class:`lmcourse.transformer.TransformerLM` built with the case's sizes (``num_parameters``, a tied
matrix counted once), and layer normalisation is ``torch.nn.functional.layer_norm`` in float64.

>>> _model_parameters(10, 4, 8, 1, 4, False)  # V=10, L=4, C=8, one block, r=4, untied
1090
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from lmcourse.exercises.core import Case, Exercise, register
from lmcourse.transformer import TransformerConfig, TransformerLM

# --- transformer.count_parameters ------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _model_parameters(vocab_size: int, context_length: int, emb_dim: int, num_layers: int,
                      mlp_ratio: int, tie_weights: bool) -> int:
    config = TransformerConfig(vocab_size, context_length=context_length, emb_dim=emb_dim, num_heads=1,
                               num_layers=num_layers, mlp_ratio=mlp_ratio, dropout=0.0, positions="learned",
                               tie_weights=tie_weights, adaptive_cutoffs=None)
    with torch.random.fork_rng(devices=[]):  # building initialises weights: leave the reader's random stream alone
        return TransformerLM(config).num_parameters  # the head count does not change the number of parameters


def _count_parameters(vocab_size: int, context_length: int, emb_dim: int, num_layers: int, mlp_ratio: int = 4,
                      tie_weights: bool = False) -> int:
    return _model_parameters(vocab_size, context_length, emb_dim, num_layers, mlp_ratio, tie_weights)


def _parts(V: int, L: int, C: int, N: int, r: int, tied: bool) -> dict[str, int]:
    """The count split into parts, for the wrong answers (each drops or doubles one part)."""
    return {"embedding": V * C, "positions": L * C, "block_norms": N * 2 * 2 * C,
            "block_weights": N * (3 * C * C + C * C + 2 * r * C * C), "block_biases": N * (3 * C + C + r * C + C),
            "final_norm": 2 * C, "output_weights": 0 if tied else V * C, "output_bias": V}


def _wrong(drop: tuple[str, ...] = (), double_tied: bool = False, fixed_ratio: bool = False, as_float: bool = False):
    def count(vocab_size, context_length, emb_dim, num_layers, mlp_ratio=4, tie_weights=False):
        parts = _parts(vocab_size, context_length, emb_dim, num_layers, 4 if fixed_ratio else mlp_ratio, tie_weights)
        if double_tied:
            parts["output_weights"] = vocab_size * emb_dim
        total = sum(v for k, v in parts.items() if k not in drop)
        return float(total) if as_float else total
    return count


def _count_cases() -> list[Case]:
    return [
        Case((10, 4, 8, 1), label="V=10, L=4, C=8, one block, defaults (mlp_ratio=4, untied)"),
        Case((10, 4, 8, 1), {"tie_weights": True}, label="the same, with tie_weights=True"),
        Case((50, 16, 16, 3), {"mlp_ratio": 2}, label="V=50, L=16, C=16, three blocks, mlp_ratio=2, untied"),
        Case((50, 16, 16, 3), {"mlp_ratio": 2, "tie_weights": True}, label="the same, tied"),
        Case((1000, 64, 32, 4), {"mlp_ratio": 4, "tie_weights": True}, label="V=1000, L=64, C=32, four blocks, tied"),
        Case((257, 128, 24, 2), {"mlp_ratio": 4, "tie_weights": False}, label="V=257, L=128, C=24, two blocks, untied"),
    ]


register(Exercise(
    name="transformer.count_parameters",
    cases=_count_cases(),
    oracle=_count_parameters,
    hint="Count part by part, then add: the token embedding (V x C); the learned position table (one C-vector per "
         "position); in EACH block two LayerNorms (a gain and a bias of C numbers each), the attention's packed "
         "query/key/value projection C -> 3C and its output projection C -> C, and the MLP's two Linear layers "
         "C -> rC -> C, every Linear with its bias; after the blocks, the final LayerNorm; and the output layer "
         "C -> V with its V biases. With tie_weights=True the output layer reuses the embedding matrix: count that "
         "matrix once (the output bias is still its own). The number of heads does not matter.",
    wrong_answers={"forgets all the Linear biases": _wrong(("block_biases", "output_bias")),
                   "forgets the LayerNorms": _wrong(("block_norms", "final_norm")),
                   "counts the tied matrix twice": _wrong(double_tied=True),
                   "forgets the position table": _wrong(("positions",)),
                   "forgets the final LayerNorm": _wrong(("final_norm",)),
                   "ignores mlp_ratio (always 4)": _wrong(fixed_ratio=True),
                   "returns a float, not an int": _wrong(as_float=True)},
    nudge="Add up every part: embeddings, positions, each block's LayerNorms, projections and MLP with biases, "
          "the final LayerNorm, the output layer; an int.",
    rel_tol=0.0,  # an exact count
    abs_tol=0.0,
))

# --- transformer.layer_norm ------------------------------------------------------------------


def _torch_layer_norm(x: np.ndarray, gain: np.ndarray, bias: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    x_t = torch.as_tensor(np.asarray(x, dtype=float))
    gain_t, bias_t = (torch.as_tensor(np.asarray(a, dtype=float)) for a in (gain, bias))
    return F.layer_norm(x_t, x_t.shape[-1:], weight=gain_t, bias=bias_t, eps=eps).numpy()


def _ln_unbiased(x, gain, bias, eps=1e-5):
    x = np.asarray(x, dtype=float)
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, ddof=1, keepdims=True) + eps) * gain + bias


def _ln_axis0(x, gain, bias, eps=1e-5):
    x = np.asarray(x, dtype=float)
    return (x - x.mean(0, keepdims=True)) / np.sqrt(x.var(0, keepdims=True) + eps) * gain + bias


def _ln_eps_outside(x, gain, bias, eps=1e-5):
    x = np.asarray(x, dtype=float)
    return (x - x.mean(-1, keepdims=True)) / (x.std(-1, keepdims=True) + eps) * gain + bias


def _ln_in_place(x, gain, bias, eps=1e-5):
    x -= x.mean(-1, keepdims=True)  # changes the caller's array
    return x / np.sqrt(x.var(-1, keepdims=True) + eps) * gain + bias


def _ln_ignores_eps(x, gain, bias, eps=1e-5):
    return _torch_layer_norm(x, gain, bias)


def _ln_swapped(x, gain, bias, eps=1e-5):
    return _torch_layer_norm(x, bias, gain, eps)


def _layer_norm_cases() -> list[Case]:
    rng = np.random.default_rng(6)
    return [
        Case((np.array([1.0, 2.0, 3.0]), np.ones(3), np.zeros(3)), label="x=[1, 2, 3], gain 1, bias 0 (by hand)"),
        Case((rng.normal(size=(4, 5)), np.ones(5), np.zeros(5)), label="random (4, 5), gain 1, bias 0"),
        Case((rng.normal(size=(4, 5)) * 3 + 1, rng.normal(size=5), rng.normal(size=5)),
             label="random (4, 5), random gain and bias"),
        Case((rng.normal(size=(2, 3, 6)), rng.uniform(0.5, 2, size=6), rng.normal(size=6)),
             label="random (B=2, T=3, C=6), gain and bias"),
        Case((1 + 1e-4 * rng.normal(size=(3, 4)), np.full(4, 2.0), np.full(4, 0.5)),
             label="tiny variance (about 1e-8, below eps=1e-5): eps matters"),
        Case((rng.normal(size=(5, 3)), np.ones(3), np.zeros(3)), {"eps": 0.1}, label="random (5, 3) with eps=0.1"),
    ]


register(Exercise(
    name="transformer.layer_norm",
    cases=_layer_norm_cases(),
    oracle=_torch_layer_norm,
    hint="Normalise each vector along the LAST axis (each position's C numbers), not across the batch: subtract "
         "its mean, then divide by sqrt(variance + eps), with eps inside the square root. The variance divides by C, "
         "not C - 1 (np.var's default). keepdims=True keeps the shapes broadcastable. Finally scale by gain and "
         "shift by bias, elementwise.",
    wrong_answers={"unbiased variance (ddof=1)": _ln_unbiased, "normalises over axis 0": _ln_axis0,
                   "eps added to the standard deviation": _ln_eps_outside, "gain and bias swapped": _ln_swapped,
                   "changes its input (subtracts the mean in place)": _ln_in_place,
                   "ignores the eps argument (always 1e-5)": _ln_ignores_eps},
    nudge="Normalise along the LAST axis with the biased variance and eps inside the square root, then scale and shift.",
    rel_tol=1e-5,
    abs_tol=1e-7,
))
