"""Checkers for Chapter 4b (the Transformer): the forward pass of a Transformer block given its
sub-modules (pre-LN, and post-LN as the original Transformer had it), and layer normalisation.

The oracles are trusted references, not the reader's formula restated: the block is PyTorch's
``torch.nn.TransformerEncoderLayer`` (``norm_first`` chooses pre- or post-LN) holding the weights of
the case's sub-modules, with a causal mask, in float64; layer normalisation is
``torch.nn.functional.layer_norm`` in float64.

The sub-modules handed to the reader are the book's own (:class:`lmcourse.attention.MultiHeadAttention`,
:class:`lmcourse.layers.MLP`, ``nn.LayerNorm``), in subclasses that compare equal when their weights
are equal: the checker compares every argument after the call with a copy taken before it, to notice
a function that changes its inputs, and a plain module equals only itself.

>>> from lmcourse.exercises import evaluate
>>> evaluate("transformer.block_forward", lambda x, ln_attn, attn, ln_mlp, mlp, norm_first=True: x).passed
False
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lmcourse import attention, layers
from lmcourse.exercises.core import Case, Exercise, register

# --- transformer.block_forward ---------------------------------------------------------------


class _ComparedByValue:
    """Equal to a module of the same type with equal weights (hashed by identity, as modules are)."""

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return False
        mine, theirs = self.state_dict(), other.state_dict()
        return mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)

    __hash__ = object.__hash__


class LayerNorm(_ComparedByValue, nn.LayerNorm):
    """``nn.LayerNorm``, compared by value."""


class MultiHeadAttention(_ComparedByValue, attention.MultiHeadAttention):
    """The book's causal multi-head attention, compared by value."""


class MLP(_ComparedByValue, layers.MLP):
    """The book's position-wise MLP, compared by value."""


def _torch_block(x: torch.Tensor, ln_attn: nn.LayerNorm, attn: attention.MultiHeadAttention, ln_mlp: nn.LayerNorm,
                 mlp: layers.MLP, norm_first: bool = True) -> np.ndarray:
    """PyTorch's encoder layer with the sub-modules' weights and a causal mask: (B, T, C) -> (B, T, C)."""
    C, T = x.shape[-1], x.shape[1]
    layer = nn.TransformerEncoderLayer(C, attn.num_heads, dim_feedforward=mlp.up.out_features, dropout=0.0,
                                       activation="gelu", batch_first=True, norm_first=norm_first,
                                       dtype=x.dtype).eval()
    with torch.no_grad():
        layer.self_attn.in_proj_weight.copy_(attn.in_proj.weight)
        layer.self_attn.in_proj_bias.copy_(attn.in_proj.bias)
        layer.self_attn.out_proj.load_state_dict(attn.out_proj.state_dict())
        layer.linear1.load_state_dict(mlp.up.state_dict())
        layer.linear2.load_state_dict(mlp.down.state_dict())
        layer.norm1.load_state_dict(ln_attn.state_dict())
        layer.norm2.load_state_dict(ln_mlp.state_dict())
        blocked = ~attention.causal_mask(T)  # torch's mask: True = blocked
        return layer(x, src_mask=blocked, is_causal=True).numpy()


def _block_wrong(order: str = "follow", attn_residual: bool = True, mlp_residual: bool = True,
                 same_norm: bool = False):
    """A block with one typical slip. `order`: "follow" is pre- or post-LN as norm_first says; "pre" and
    "post" ignore norm_first; "stream" normalises the residual stream itself; "mlp first" swaps the
    sub-layers; "parallel" feeds both sub-layers the same input; "post inside" normalises each
    sub-layer's output before adding it."""
    def block(x, ln_attn, attn, ln_mlp, mlp, norm_first=True):
        ln_2 = ln_attn if same_norm else ln_mlp
        kind = ("pre" if norm_first else "post") if order == "follow" else order
        a_res, m_res = float(attn_residual), float(mlp_residual)
        if kind == "pre":
            x = a_res * x + attn(ln_attn(x))
            return m_res * x + mlp(ln_2(x))
        if kind == "post":
            x = ln_attn(a_res * x + attn(x))
            return ln_2(m_res * x + mlp(x))
        if kind == "stream":
            x = ln_attn(x)
            x = x + attn(x)
            x = ln_2(x)
            return x + mlp(x)
        if kind == "mlp first":
            x = x + mlp(ln_2(x))
            return x + attn(ln_attn(x))
        if kind == "parallel":
            return x + attn(ln_attn(x)) + mlp(ln_2(x))
        x = x + ln_attn(attn(x))  # "post inside"
        return x + ln_2(mlp(x))
    return block


def _block_adds_in_place(x, ln_attn, attn, ln_mlp, mlp, norm_first=True):
    x += attn(ln_attn(x))  # changes the caller's tensor
    return x + mlp(ln_mlp(x))


def _block_with_input(x, ln_attn, attn, ln_mlp, mlp, norm_first=True):
    return _block_wrong()(x, ln_attn, attn, ln_mlp, mlp, norm_first), x


def _block_parts(C: int, H: int, gen: torch.Generator) -> tuple[Any, ...]:
    """Sub-modules with random weights (LayerNorm gains and biases too, so that swapping them shows)."""
    with torch.random.fork_rng(devices=[]):  # building initialises weights: leave the reader's random stream alone
        torch.manual_seed(int(torch.randint(1 << 30, (1,), generator=gen)))
        parts = (LayerNorm(C), MultiHeadAttention(C, H, causal=True), LayerNorm(C), MLP(C, 4 * C))
    for part in parts:
        part.double().requires_grad_(False)
        for p in part.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * (0.5 if p.ndim > 1 else 1.0))
    return parts


def _block_cases() -> list[Case]:
    gen = torch.Generator().manual_seed(44)

    def case(B: int, T: int, C: int, H: int, label: str, scale: float = 1.0, **kwargs: Any) -> Case:
        x = torch.randn(B, T, C, generator=gen, dtype=torch.float64) * scale
        return Case((x, *_block_parts(C, H, gen)), kwargs, label=label)

    return [
        case(1, 3, 4, 1, "x (B=1, T=3, C=4), one head, pre-LN (norm_first=True)"),
        case(2, 5, 8, 2, "x (B=2, T=5, C=8), two heads, pre-LN"),
        case(2, 5, 8, 2, "x (B=2, T=5, C=8), two heads, post-LN (norm_first=False)", norm_first=False),
        case(3, 1, 6, 3, "a single position (T=1), three heads, pre-LN"),
        case(3, 7, 12, 4, "x (B=3, T=7, C=12), four heads, a large residual stream (x about 5), pre-LN", scale=5.0),
        case(2, 4, 8, 4, "x (B=2, T=4, C=8), four heads, post-LN", norm_first=False),
    ]


register(Exercise(
    name="transformer.block_forward",
    cases=_block_cases(),
    oracle=_torch_block,
    nudge="Every sub-layer's output is ADDED to the residual stream. Pre-LN normalises only what a sub-layer "
          "reads; post-LN normalises the sum, after each addition.",
    hint="Each sub-layer is wrapped in a residual connection: its output is added to x, never replaces it. With "
         "norm_first=True (pre-LN, GPT-2's order) a LayerNorm is applied only to what each sub-layer reads, and "
         "the residual stream x itself is never normalised inside the block. With norm_first=False (post-LN, the "
         "original Transformer) the sub-layers read the stream as it is, and each LayerNorm is applied after its "
         "residual addition. Attention comes first, then the MLP, each with its own LayerNorm (ln_attn belongs "
         "to attention, ln_mlp to the MLP). Build new tensors rather than adding into x in place.",
    wrong_answers={"post-LN even when norm_first=True": _block_wrong(order="post"),
                   "pre-LN even when norm_first=False": _block_wrong(order="pre"),
                   "no residual around attention": _block_wrong(attn_residual=False),
                   "no residual around the MLP": _block_wrong(mlp_residual=False),
                   "normalises the residual stream itself": _block_wrong(order="stream"),
                   "one LayerNorm for both sub-layers": _block_wrong(same_norm=True),
                   "the MLP before attention": _block_wrong(order="mlp first"),
                   "both sub-layers read the same input (parallel)": _block_wrong(order="parallel"),
                   "LayerNorm on the sub-layer's output, before adding": _block_wrong(order="post inside"),
                   "changes its input (x += ...)": _block_adds_in_place,
                   "returns (output, input), not the output": _block_with_input},
    rel_tol=1e-6,
    abs_tol=1e-9,
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
