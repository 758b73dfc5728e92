"""A Llama-style decoder (Touvron et al., 2023) built from the book's parts. Chapter 7 explains
each difference from GPT-2 (Chapter 6) as one small, named piece:

- :class:`lmcourse.layers.RMSNorm` instead of LayerNorm (Zhang and Sennrich, 2019), still before
  each sub-layer and once at the end;
- :class:`lmcourse.layers.SwiGLU` instead of the GELU MLP (Shazeer, 2020);
- rotary positions (:class:`lmcourse.positions.RotaryEmbedding`, Chapter 4) on queries and keys
  instead of a learned table added to the embeddings;
- grouped-query attention (:class:`lmcourse.attention.MultiHeadAttention` with ``num_kv_heads``;
  Ainslie et al., 2023): ``Hkv`` key/value heads shared by ``H`` query heads, so the KV cache
  keeps ``Hkv`` heads only (``Hkv = H``: multi-head, ``Hkv = 1``: multi-query attention);
- no biases anywhere; the output layer tied to the embedding or not (``tie_weights``).

The block's wiring is GPT's pre-norm residual block, ``x + attn(norm(x))`` then
``x + mlp(norm(x))``. :class:`Llama` is a :class:`lmcourse.transformer.DecoderLM`, as GPT is: it
builds its own parts and inherits the rest (``model(ids)``, ``hidden_states``, the time-first
``nll``/``log_probs`` that :func:`lmcourse.train.train` uses, :mod:`lmcourse.checkpoint`, and
``generate`` with the KV cache, the same signature as every model family's).

Shape letters: ``B`` batch, ``T`` tokens, ``C`` = ``emb_dim``, ``V`` vocabulary, ``H`` query heads,
``Hkv`` key/value heads, ``D`` head size, ``M`` SwiGLU width.

Left out: RoPE scaling for longer contexts, sliding-window attention, mixture-of-experts feed-
forwards, half precision and quantised matrix products (weights are float32 here).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lmcourse.attention import MultiHeadAttention
from lmcourse.layers import RMSNorm, SwiGLU
from lmcourse.llama.config import LlamaConfig
from lmcourse.positions import RotaryEmbedding
from lmcourse.transformer import DecoderLM, PreNormBlock

__all__ = ["LlamaBlock", "Llama"]


class LlamaBlock(PreNormBlock):
    """One Llama block: RMSNorm -> grouped-query attention with RoPE, RMSNorm -> SwiGLU, each in a
    residual (GPT's pre-norm wiring, :class:`lmcourse.transformer.PreNormBlock`, with other parts)."""

    def __init__(self, config: LlamaConfig, rotary: RotaryEmbedding) -> None:
        c = config
        super().__init__(
            ln_attn=RMSNorm(c.emb_dim, eps=c.norm_eps),
            attn=MultiHeadAttention(c.emb_dim, c.num_heads, causal=True, fused=c.fused, bias=False,
                                    rotary=rotary, num_kv_heads=c.num_kv_heads),
            ln_mlp=RMSNorm(c.emb_dim, eps=c.norm_eps),
            mlp=SwiGLU(c.emb_dim, c.hidden_dim),
            dropout=c.dropout)


class Llama(DecoderLM):
    """A Llama-style decoder-only language model: ``model(ids (B, T)) -> logits (B, T, V)``.

    >>> model = Llama(LlamaConfig.tiny(vocab_size=10))
    >>> model(torch.tensor([[1, 2, 3]])).shape
    torch.Size([1, 3, 10])
    >>> model.num_parameters == model.config.num_parameters
    True
    >>> out = model.generate([1, 2, 3], 4, temperature=0)
    >>> out == model.generate([1, 2, 3], 4, temperature=0, use_cache=False)
    True
    """

    config: LlamaConfig

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        if not isinstance(config, LlamaConfig):
            raise TypeError(f"Llama needs a LlamaConfig, got {type(config).__name__}")
        self.config = c = config
        self.embedding = nn.Embedding(c.vocab_size, c.emb_dim)
        self.positions = None  # RoPE turns queries and keys inside attention; nothing is added here
        self.drop = nn.Dropout(c.dropout)
        rotary = RotaryEmbedding(c.head_dim, base=c.rope_base)  # one module, shared by every block
        self.blocks = nn.ModuleList(LlamaBlock(c, rotary) for _ in range(c.num_layers))
        self.ln_final = RMSNorm(c.emb_dim, eps=c.norm_eps)
        self._build_output(c.emb_dim, c.vocab_size, None)
        self.decoder.bias = None  # logits = features @ W^T only
        self._init_weights()
        if c.tie_weights:
            self.decoder.weight = self.embedding.weight  # one Parameter, (V, C)

    def _init_weights(self) -> None:
        """GPT-2's initialisation (as :class:`TransformerLM`): N(0, 0.02) for every matrix, and the two
        projections that write into the residual stream scaled by ``1/sqrt(2 N)``. RMSNorm gains start at 1."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
        for block in self.blocks:
            for layer in (block.attn.out_proj, block.mlp.down):
                nn.init.normal_(layer.weight, std=0.02 / math.sqrt(2 * self.config.num_layers))

    @property
    def transformer_config(self) -> LlamaConfig:
        """What the methods of :class:`lmcourse.transformer.DecoderLM` read: ``context_length``, ``vocab_size``
        and ``num_layers``, which a :class:`LlamaConfig` has under the same names."""
        return self.config

    def extra_repr(self) -> str:
        return f"{self.config}"
