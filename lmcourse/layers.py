"""The position-wise layers of a Transformer block, besides attention: GPT-2's GELU :class:`MLP`
(Chapter 4), and LLaMA's :class:`RMSNorm` and :class:`SwiGLU` feed-forward (Chapter 7).

- :class:`MLP`: ``Linear(C -> M) -> GELU -> Linear(M -> C)`` (Vaswani et al., 2017; GPT-2).
- :class:`RMSNorm`: ``x / sqrt(mean(x^2) + eps) * g`` (Zhang and Sennrich, 2019): LayerNorm
  without centring and without a bias, one reduction cheaper.
- :class:`SwiGLU`: ``down(silu(gate(x)) * up(x))`` (Shazeer, 2020): a gated MLP; the gate
  decides, per hidden unit, how much of ``up(x)`` passes.

Shape letters: ``B`` batch, ``T`` time, ``C`` model width, ``M`` hidden width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lmcourse._checks import check_float, check_positive_int

__all__ = ["MLP", "RMSNorm", "SwiGLU"]


class MLP(nn.Module):
    """The position-wise feed-forward sub-layer: ``Linear(C -> rC) -> GELU -> Linear(rC -> C)``.

    ``approximate="tanh"`` uses ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``, GPT-2's GELU."""

    def __init__(self, emb_dim: int, hidden_dim: int, approximate: str = "none") -> None:
        super().__init__()
        self.up = nn.Linear(emb_dim, hidden_dim)
        self.act = nn.GELU(approximate=approximate)
        self.down = nn.Linear(hidden_dim, emb_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.act(self.up(x)))  # (B, T, C) -> (B, T, rC) -> (B, T, C)


class RMSNorm(nn.Module):
    """Root-mean-square normalisation over the last dimension, with a learned gain ``g`` (ones at first).

    ``y = x / sqrt(mean(x^2) + eps) * g``. The statistics are taken in float32 even for half-precision
    inputs (as LLaMA's code does), and the result is cast back before the gain. Equal to
    ``torch.nn.RMSNorm(dim, eps)`` (tests).

    >>> norm = RMSNorm(2, eps=0.0)
    >>> [round(v, 4) for v in norm(torch.tensor([3.0, 4.0])).tolist()]  # [3, 4] / sqrt((9 + 16) / 2)
    [0.8485, 1.1314]
    """

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        check_positive_int("dim", dim)
        check_float("eps", eps, 0.0, 1.0, high_open=True)
        self.dim, self.eps = dim, eps
        self.weight = nn.Parameter(torch.ones(dim))  # g, (C,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        inv_rms = torch.rsqrt(x32.pow(2).mean(dim=-1, keepdim=True) + self.eps)  # (..., C) -> (..., 1)
        return self.weight * (x32 * inv_rms).to(x.dtype)  # (C,) * (..., C)

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}"


class SwiGLU(nn.Module):
    """LLaMA's feed-forward sub-layer: ``down(silu(gate(x)) * up(x))``, ``C -> M -> C``.

    Three matrices instead of the GELU MLP's two, so LLaMA picks ``M`` about ``8C/3`` to keep the
    parameter count of a ``4C`` MLP. ``silu(z) = z * sigmoid(z)``.

    >>> ffn = SwiGLU(4, 6)
    >>> ffn(torch.zeros(2, 3, 4)).shape
    torch.Size([2, 3, 4])
    """

    def __init__(self, dim: int, hidden_dim: int, bias: bool = False) -> None:
        super().__init__()
        check_positive_int("dim", dim)
        check_positive_int("hidden_dim", hidden_dim)
        self.gate = nn.Linear(dim, hidden_dim, bias=bias)  # W_1 in Shazeer (2020)
        self.up = nn.Linear(dim, hidden_dim, bias=bias)  # V
        self.down = nn.Linear(hidden_dim, dim, bias=bias)  # W_2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))  # (B, T, C) -> (B, T, M) -> (B, T, C)
