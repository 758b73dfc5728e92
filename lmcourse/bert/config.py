"""BERT's hyperparameters (Chapter 5): :class:`BertConfig`, MiniLM-L6-H384 by default.

Reading one from a Hugging Face ``config.json`` is :func:`lmcourse.bert.hf.config_from_hf`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lmcourse.neural import check_sizes

__all__ = ["BertConfig"]


@dataclass(frozen=True)
class BertConfig:
    """Hyperparameters of :class:`BertModel`; the defaults are MiniLM-L6-H384 (all-MiniLM-L6-v2).
    :meth:`tiny` runs in milliseconds on a CPU. Vary with ``dataclasses.replace(cfg, num_layers=2)``."""

    vocab_size: int = 30522  # V: WordPiece vocabulary of bert-base-uncased
    context_length: int = 512  # L: positions with a learned embedding, the longest input
    emb_dim: int = 384  # C (d_model, "hidden_size"): width of every token's vector
    num_heads: int = 12  # H: attention heads per layer, each of size emb_dim / num_heads
    num_layers: int = 6  # stacked encoder layers
    mlp_dim: int = 1536  # hidden width of each layer's MLP ("intermediate_size", 4 * emb_dim)
    num_segments: int = 2  # segment ("token type") embeddings: sentence A and sentence B
    dropout: float = 0.1  # on the embeddings, each sub-layer's output and before a classifier
    layer_norm_eps: float = 1e-12  # added to the variance in every LayerNorm
    pad_id: int = 0  # the [PAD] id: its embedding starts at zero and gets no gradient
    fused: bool = True  # torch's fused attention kernel; False: the book's from-scratch attention

    def __post_init__(self) -> None:
        check_sizes(self, ("vocab_size", "context_length", "emb_dim", "num_heads", "num_layers",
                           "mlp_dim", "num_segments"))
        if self.emb_dim % self.num_heads:
            raise ValueError(f"emb_dim={self.emb_dim} is not divisible by num_heads={self.num_heads}: each "
                             f"head gets emb_dim / num_heads dimensions; change one of them")
        if isinstance(self.layer_norm_eps, bool) or not isinstance(self.layer_norm_eps, (int, float)) \
                or not self.layer_norm_eps > 0:
            raise ValueError(f"layer_norm_eps must be a small positive number such as 1e-12, "
                             f"got {self.layer_norm_eps!r}")
        if isinstance(self.pad_id, bool) or not isinstance(self.pad_id, int) \
                or not 0 <= self.pad_id < self.vocab_size:
            raise ValueError(f"pad_id must be an id in [0, vocab_size={self.vocab_size}), got {self.pad_id!r}")
        if not isinstance(self.fused, bool):
            raise ValueError(f"fused must be True or False, got {self.fused!r}")

    @property
    def head_dim(self) -> int:
        """D = C / H: the size of each head's queries, keys and values."""
        return self.emb_dim // self.num_heads

    @classmethod
    def tiny(cls, vocab_size: int, **overrides: Any) -> BertConfig:
        """A small encoder for tests and CPU experiments; `overrides` change any field.

        >>> BertConfig.tiny(100).head_dim
        8
        """
        fields = dict(context_length=32, emb_dim=32, num_heads=4, num_layers=2, mlp_dim=64, dropout=0.0)
        return cls(vocab_size=vocab_size, **{**fields, **overrides})

