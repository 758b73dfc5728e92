"""Where a token is: the positional information that attention, blind to order, needs. Chapter 4
(Attention and the Transformer) explains all three kinds kept here:

- fixed sinusoids added to the token embeddings (Vaswani et al., 2017),
- a learned table of position vectors, one row per position (GPT-2),
- rotary position embedding, RoPE (Su et al., 2021, RoFormer), which rotates queries and keys
  so that their dot product depends only on the signed offset between the two positions (LLaMA).

RoPE uses the "rotate half" layout of GPT-NeoX and ``transformers``' Llama: dimension i is paired
with dimension i + D/2, not with its neighbour i + 1 as in the paper, Meta's original LLaMA code
and llama.cpp. The two layouts are the same rotation with the dimensions of each head reordered.

Left out: ALiBi (a bias on the scores instead of vectors), relative-position biases (T5),
and the context-extension tricks for RoPE (position interpolation, NTK-aware scaling, YaRN).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["sinusoidal_positions", "SinusoidalPositions", "LearnedPositions", "RotaryEmbedding"]


def _check_positive_int(name: str, value: object, even: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    if even and value % 2:
        raise ValueError(f"{name} must be even, got {value}: the dimensions are used in pairs "
                         f"(a sine and a cosine, or the two coordinates of a rotation); "
                         f"use {value - 1} or {value + 1}")


def _inverse_frequencies(dim: int, base: float) -> torch.Tensor:
    """``base^(-2i/dim)`` for ``i = 0 .. dim/2 - 1``, in float64: ``(dim/2,)``."""
    if not base > 0:
        raise ValueError(f"base must be positive, got {base!r}")
    return base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)


def sinusoidal_positions(length: int, dim: int, base: float = 10000.0) -> torch.Tensor:
    """The ``(length, dim)`` table ``PE(p, 2i) = sin(p / base^(2i/dim))``, ``PE(p, 2i+1) = cos(...)``.

    Sines and cosines are interleaved as in Vaswani et al. (2017). Computed in float64, returned
    in the default dtype.

    >>> sinusoidal_positions(2, 4).tolist()[0]
    [0.0, 1.0, 0.0, 1.0]
    >>> [round(x, 3) for x in sinusoidal_positions(2, 4)[1].tolist()]  # sin 1, cos 1, sin .01, cos .01
    [0.841, 0.54, 0.01, 1.0]
    """
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise ValueError(f"length must be a non-negative int, got {length!r}")
    _check_positive_int("dim", dim, even=True)
    positions = torch.arange(length, dtype=torch.float64)  # (T,)
    angles = positions[:, None] * _inverse_frequencies(dim, base)  # (T, 1) * (dim/2,) -> (T, dim/2)
    table = torch.empty(length, dim, dtype=torch.float64)
    table[:, 0::2] = angles.sin()  # even columns
    table[:, 1::2] = angles.cos()  # odd columns
    return table.to(torch.get_default_dtype())


def _check_window(length: int, offset: int, context_length: int) -> None:
    for name, value in (("length", length), ("offset", offset)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    if offset + length > context_length:
        raise ValueError(f"positions {offset}..{offset + length - 1} were asked for (offset={offset}, "
                         f"length={length}), but the table only has context_length={context_length} "
                         f"positions; shorten the input to at most {context_length} tokens or build "
                         f"the module with a larger context_length")


class SinusoidalPositions(nn.Module):
    """The fixed sinusoidal table for `context_length` positions; nothing to train or to save.

    >>> pe = SinusoidalPositions(context_length=8, dim=4)
    >>> pe(3).shape, pe(3, offset=5).shape
    (torch.Size([3, 4]), torch.Size([3, 4]))
    >>> list(pe.parameters()), list(pe.state_dict())
    ([], [])
    """

    def __init__(self, context_length: int, dim: int, base: float = 10000.0) -> None:
        super().__init__()
        _check_positive_int("context_length", context_length)
        self.context_length, self.dim = context_length, dim
        # A buffer moves with .to(device) but, not persistent, stays out of checkpoints.
        self.register_buffer("table", sinusoidal_positions(context_length, dim, base), persistent=False)

    def forward(self, length: int, offset: int = 0) -> torch.Tensor:
        """Rows ``offset .. offset + length - 1``: ``(length, dim)``, to add to ``(B, T, C)`` embeddings."""
        _check_window(length, offset, self.context_length)
        return self.table[offset:offset + length]


class LearnedPositions(nn.Module):
    """One trained vector per position, as in GPT-2: an ``nn.Embedding(context_length, dim)``.

    >>> pe = LearnedPositions(context_length=8, dim=4)
    >>> pe(3).shape, pe.embedding.weight.requires_grad
    (torch.Size([3, 4]), True)
    """

    def __init__(self, context_length: int, dim: int) -> None:
        super().__init__()
        _check_positive_int("context_length", context_length)
        _check_positive_int("dim", dim)
        self.context_length, self.dim = context_length, dim
        self.embedding = nn.Embedding(context_length, dim)
        nn.init.normal_(self.embedding.weight, std=0.02)  # GPT-2's initialisation

    def forward(self, length: int, offset: int = 0) -> torch.Tensor:
        """Rows ``offset .. offset + length - 1``: ``(length, dim)``."""
        _check_window(length, offset, self.context_length)
        return self.embedding.weight[offset:offset + length]


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    """``[x1, x2] -> [-x2, x1]`` on the last dimension, halves ``x1``, ``x2`` of size ``D/2``."""
    x1, x2 = x.chunk(2, dim=-1)  # (..., D) -> 2 x (..., D/2)
    return torch.cat((-x2, x1), dim=-1)


class RotaryEmbedding(nn.Module):
    """RoPE: rotate the pair of dimensions ``(i, i + D/2)`` of the vector at position ``p`` by the
    angle ``p * base^(-2i/D)``.

    A rotation keeps lengths, and ``(R_m q) . (R_n k) = q . (R_{n-m} k)``: the score of a query at
    position ``m`` and a key at position ``n`` depends on the signed offset ``n - m`` alone, not on
    ``m`` and ``n`` (and a key two places before the query scores differently from one two places
    after it). Apply it to queries and keys (not values) after the head split, ``(B, H, T, D)``.

    Pairing: "rotate half", dimension ``i`` with ``i + D/2``, as ``transformers``' LLaMA (and so
    SmolLM2, ``base=100000``); not the paper's interleaved pairs ``(2i, 2i + 1)``. There is no
    maximum length: the angles are computed on demand in float64, so far positions (8192 and
    beyond) stay exact; ``transformers`` takes them in float32, which differs there by ~1e-3.

    >>> rope = RotaryEmbedding(head_dim=2)
    >>> x = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # the same vector at positions 0 and 1
    >>> [[round(v, 4) for v in row] for row in rope(x).tolist()]  # [cos 1, sin 1] at position 1
    [[1.0, 0.0], [0.5403, 0.8415]]
    """

    def __init__(self, head_dim: int, base: float = 10000.0) -> None:
        super().__init__()
        _check_positive_int("head_dim", head_dim, even=True)
        _inverse_frequencies(head_dim, base)  # checks base
        self.head_dim, self.base = head_dim, base
        # The last table used, kept because every layer (queries and keys) asks for the same one
        # within a forward pass: (length, offset, device, dtype) -> (cos, sin). Not a buffer.
        self._last: tuple[tuple[Any, ...], tuple[torch.Tensor, torch.Tensor]] | None = None

    def cos_sin(self, length: int, offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """``cos`` and ``sin`` of the angles for positions ``offset .. offset + length - 1``, each
        ``(length, D)`` in float64 (the ``D/2`` angles repeated, one per dimension of a pair)."""
        positions = torch.arange(offset, offset + length, dtype=torch.float64)  # (T,)
        angles = positions[:, None] * _inverse_frequencies(self.head_dim, self.base)  # (T, D/2)
        angles = torch.cat((angles, angles), dim=-1)  # (T, D/2) -> (T, D)
        return angles.cos(), angles.sin()

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """Rotate ``x (..., T, D)``, whose row ``t`` sits at position ``offset + t``; same shape and dtype."""
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor, got "
                            f"{x.dtype if isinstance(x, torch.Tensor) else type(x).__name__}")
        if x.dim() < 2 or x.shape[-1] != self.head_dim:
            raise ValueError(f"x must be (..., T, D={self.head_dim}), e.g. queries (B, H, T, D) after the "
                             f"head split, got shape {tuple(x.shape)}")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ValueError(f"offset must be a non-negative int, got {offset!r}")
        cos, sin = self._table(x.shape[-2], offset, x.device, x.dtype)
        return x * cos + _rotate_half(x) * sin  # (..., T, D) * (T, D) -> (..., T, D)

    def _table(self, length: int, offset: int, device: torch.device, dtype: torch.dtype
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`cos_sin` on `device` in `dtype`, reused while the same table is asked for again.
        Angles are taken in float64 on the CPU, so far positions keep their precision on any device."""
        key = (length, offset, device, dtype)
        if self._last is None or self._last[0] != key:
            cos, sin = (t.to(device=device, dtype=dtype) for t in self.cos_sin(length, offset))
            self._last = (key, (cos, sin))
        return self._last[1]

    def extra_repr(self) -> str:
        return f"head_dim={self.head_dim}, base={self.base}"
