"""GPT-2's hyperparameters (Chapter 6): :class:`GPTConfig`, only the numbers that vary between
GPT-2 sizes; :meth:`GPTConfig.transformer_config` fixes the rest of GPT-2's choices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lmcourse.transformer import TransformerConfig

__all__ = ["GPTConfig"]


@dataclass(frozen=True)
class GPTConfig:
    """The numbers that make one GPT-2 differ from another. :meth:`tiny` runs in seconds on a
    CPU; :meth:`gpt2_small` is the 124M-parameter GPT-2. Vary with ``dataclasses.replace``.

    >>> GPTConfig.tiny(vocab_size=100).head_dim
    8
    """

    vocab_size: int  # V: number of token ids (GPT-2's byte-level BPE: 50,257)
    context_length: int = 128  # L: the most tokens the model reads at once (GPT-2: 1,024)
    emb_dim: int = 128  # C (d_model): width of the residual stream (GPT-2 small: 768)
    num_heads: int = 4  # H: attention heads per block, each of size emb_dim / num_heads
    num_layers: int = 2  # N: stacked blocks
    dropout: float = 0.1  # on the embeddings and on each sub-layer's output (GPT-2: 0.1)
    fused: bool = True  # torch's fused attention kernel; False: the book's from-scratch attention
    layer_norm_eps: float = 1e-5  # added to the variance in every LayerNorm

    def __post_init__(self) -> None:
        self.transformer_config()  # checks every field, with the same messages

    @property
    def head_dim(self) -> int:
        """D = C / H: the size of each head's queries, keys and values."""
        return self.emb_dim // self.num_heads

    def transformer_config(self) -> TransformerConfig:
        """The :class:`TransformerConfig` of this GPT: GPT-2's fixed choices plus these numbers."""
        return TransformerConfig(
            vocab_size=self.vocab_size, context_length=self.context_length, emb_dim=self.emb_dim,
            num_heads=self.num_heads, num_layers=self.num_layers, mlp_ratio=4, dropout=self.dropout,
            positions="learned", fused=self.fused, tie_weights=True, adaptive_cutoffs=None,
            gelu_approximate="tanh", layer_norm_eps=self.layer_norm_eps, output_bias=False)

    @property
    def num_parameters(self) -> int:
        """The parameter count in closed form, without building the model:

            V C            token embeddings (also the output layer: tied)
          + L C            learned positions
          + N (12 C^2 + 13 C)  per block: attention 3C^2 + 3C (W_Q, W_K, W_V) and C^2 + C (W_O),
                               MLP 4C^2 + 4C and 4C^2 + C, two LayerNorms 2 x 2C
          + 2 C            final LayerNorm

        >>> GPTConfig.gpt2_small().num_parameters
        124439808
        """
        V, L, C, N = self.vocab_size, self.context_length, self.emb_dim, self.num_layers
        return V * C + L * C + N * (12 * C * C + 13 * C) + 2 * C

    @classmethod
    def tiny(cls, vocab_size: int, **overrides: Any) -> GPTConfig:
        """A small model for tests and CPU experiments; `overrides` change any field."""
        fields = dict(context_length=32, emb_dim=32, num_heads=4, num_layers=2, dropout=0.0)
        return cls(vocab_size=vocab_size, **{**fields, **overrides})

    @classmethod
    def gpt2_small(cls, **overrides: Any) -> GPTConfig:
        """GPT-2 small (Radford et al., 2019): 12 blocks of width 768 with 12 heads, 1,024 positions,
        50,257 tokens; 124,439,808 parameters."""
        fields = dict(vocab_size=50257, context_length=1024, emb_dim=768, num_heads=12, num_layers=12,
                      dropout=0.1)
        return cls(**{**fields, **overrides})
