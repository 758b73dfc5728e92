"""A Llama-style decoder's hyperparameters (Chapter 7): :class:`LlamaConfig`.

The numbers that make one Llama-style model differ from another; the choices that make it
*Llama-style* (RMSNorm before each sub-layer, a SwiGLU feed-forward, rotary positions, grouped-
query attention, no biases) are fixed in :mod:`lmcourse.llama.model`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lmcourse._checks import check_float, check_positive_int

__all__ = ["LlamaConfig"]


@dataclass(frozen=True)
class LlamaConfig:
    """Hyperparameters of :class:`lmcourse.llama.Llama`. :meth:`tiny` runs in seconds on a CPU;
    :meth:`smollm2_135m` is SmolLM2-135M (Allal et al., 2025). Vary with ``dataclasses.replace``.

    >>> LlamaConfig.smollm2_135m().num_parameters  # "135M"
    134515008
    >>> LlamaConfig.tiny(vocab_size=100).head_dim
    8
    """

    vocab_size: int  # V: number of token ids (SmolLM2: 49,152)
    context_length: int = 128  # L: the most tokens the model reads at once (SmolLM2: 8,192)
    emb_dim: int = 128  # C (d_model): width of the residual stream (SmolLM2-135M: 576)
    num_heads: int = 4  # H: query heads per block, each of size D = emb_dim / num_heads (SmolLM2: 9)
    num_kv_heads: int = 2  # Hkv: key/value heads, each shared by H / Hkv query heads (SmolLM2: 3)
    num_layers: int = 2  # N: stacked blocks (SmolLM2-135M: 30)
    hidden_dim: int = 344  # M: the SwiGLU's hidden width, about 8C/3 (SmolLM2-135M: 1,536)
    rope_base: float = 10000.0  # RoPE's base: position p turns pair i by p * base^(-2i/D) (SmolLM2: 100,000)
    norm_eps: float = 1e-5  # added to the mean square in every RMSNorm
    tie_weights: bool = True  # the output layer shares the embedding matrix (SmolLM2: tied)
    dropout: float = 0.0  # on the embeddings and on each sub-layer's output (pretrained Llamas: 0)
    fused: bool = True  # torch's fused attention kernel; False: the book's from-scratch attention

    def __post_init__(self) -> None:
        for name in ("vocab_size", "context_length", "emb_dim", "num_heads", "num_kv_heads", "num_layers",
                     "hidden_dim"):
            check_positive_int(name, getattr(self, name))
        if self.emb_dim % self.num_heads:
            raise ValueError(f"emb_dim={self.emb_dim} is not divisible by num_heads={self.num_heads}: each "
                             f"head gets emb_dim / num_heads dimensions; change one of them")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads={self.num_heads} is not divisible by num_kv_heads={self.num_kv_heads}: "
                             f"each key/value head serves num_heads / num_kv_heads query heads")
        if self.head_dim % 2:
            raise ValueError(f"rotary positions rotate pairs of dimensions, so the head size "
                             f"emb_dim / num_heads = {self.head_dim} must be even")
        check_float("rope_base", self.rope_base, 1.0, low_open=True)
        check_float("norm_eps", self.norm_eps, 0.0, 1.0, low_open=True, high_open=True)
        check_float("dropout", self.dropout, 0.0, 1.0, high_open=True)

    @property
    def head_dim(self) -> int:
        """D = C / H: the size of each head's queries, keys and values."""
        return self.emb_dim // self.num_heads

    @property
    def num_parameters(self) -> int:
        """The parameter count in closed form, without building the model:

            V C                  token embeddings (and V C more if the output layer is untied)
          + N (2 C^2             per block: W_Q (C x C) and W_O (C x C),
               + 2 C Hkv D                  W_K and W_V (C x Hkv D each: grouped-query attention),
               + 3 C M                      SwiGLU's gate, up and down matrices,
               + 2 C)                       two RMSNorm gains
          + C                    final RMSNorm
        """
        V, C, N, M = self.vocab_size, self.emb_dim, self.num_layers, self.hidden_dim
        kv = self.num_kv_heads * self.head_dim
        embeddings = V * C * (1 if self.tie_weights else 2)
        return embeddings + N * (2 * C * C + 2 * C * kv + 3 * C * M + 2 * C) + C

    @classmethod
    def tiny(cls, vocab_size: int, **overrides: Any) -> LlamaConfig:
        """A small model for tests and CPU experiments; `overrides` change any field."""
        fields = dict(context_length=32, emb_dim=32, num_heads=4, num_kv_heads=2, num_layers=2, hidden_dim=64)
        return cls(vocab_size=vocab_size, **{**fields, **overrides})

    @classmethod
    def smollm2_135m(cls, **overrides: Any) -> LlamaConfig:
        """SmolLM2-135M: 30 blocks of width 576, 9 query heads sharing 3 key/value heads, SwiGLU of
        1,536, RoPE base 100,000, 8,192 positions, 49,152 tokens, tied embeddings."""
        fields = dict(vocab_size=49152, context_length=8192, emb_dim=576, num_heads=9, num_kv_heads=3,
                      num_layers=30, hidden_dim=1536, rope_base=100000.0, norm_eps=1e-5, tie_weights=True)
        return cls(**{**fields, **overrides})
