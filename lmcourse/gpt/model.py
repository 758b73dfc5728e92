"""GPT-2 (Radford et al., 2019) built from the book's parts, and generation with a KV cache.
Chapter 6 (GPT) explains it.

GPT-2 is the decoder-only Transformer of Chapter 4 (:class:`lmcourse.transformer.TransformerLM`)
with its choices fixed: learned positions, pre-LayerNorm blocks, GELU in its tanh approximation
(GPT-2's ``gelu_new``), a final LayerNorm, an output layer without bias that shares the token
embedding matrix, and GPT-2's initialisation (residual projections scaled by
``1/sqrt(2 * num_layers)``). So :class:`GPT` *is* a ``TransformerLM``: ``lmcourse.train.train``
trains it and ``lmcourse.checkpoint`` saves it unchanged; :class:`~lmcourse.gpt.config.GPTConfig`
holds only the numbers that vary between GPT-2 sizes.

Generation (:meth:`GPT.generate`; text in, text out is :func:`lmcourse.gpt.generate.generate_text`)
reads the prompt once, then feeds one token per step, keeping every layer's keys and values in a
:class:`lmcourse.attention.KVCache`; the decoding rules live in :mod:`lmcourse.decoding`. With or
without the cache the tokens are the same. Past ``context_length`` tokens the window slides: the
model reads the last ``context_length`` tokens. Learned positions are absolute, so every cached
key is stale once the window moves; the cached path then rebuilds its cache from the window at
each step, which costs as much as not caching but keeps both paths equal.

Shape letters: ``B`` batch, ``T`` tokens, ``C`` = ``emb_dim`` (``d_model``), ``V`` vocabulary,
``L`` = ``context_length``.

Left out: attention dropout (GPT-2's ``attn_pdrop``), padding a batch of prompts of different
lengths, beam search, and half precision.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from lmcourse.attention import KVCache
from lmcourse.decoding import DecodingSettings, next_token
from lmcourse.gpt.config import GPTConfig
from lmcourse.token_ids import check_batch_ids
from lmcourse.transformer import TransformerLM

__all__ = ["GPT"]


class GPT(TransformerLM):
    """GPT-2: a :class:`TransformerLM` with GPT-2's choices, batch-first logits and generation.

    ``self.config`` is the :class:`GPTConfig` as the reader wrote it; the layers are built from its
    :class:`~lmcourse.transformer.TransformerConfig` (``self.transformer_config``). ``generate`` is
    :meth:`lmcourse.neural.NeuralLM.generate`, the one signature every model family shares; GPT
    supplies the steps (:meth:`next_tokens`, with a KV cache).

    >>> model = GPT(GPTConfig.tiny(vocab_size=10))
    >>> model(torch.tensor([[1, 2, 3]])).shape  # (B, T) -> (B, T, V)
    torch.Size([1, 3, 10])
    >>> model.num_parameters == model.config.num_parameters
    True
    >>> out = model.generate([1, 2, 3], 5, temperature=0)
    >>> len(out), out == model.generate([1, 2, 3], 5, temperature=0, use_cache=False)
    (5, True)
    """

    config: GPTConfig

    def __init__(self, config: GPTConfig) -> None:
        if not isinstance(config, GPTConfig):
            raise TypeError(f"GPT needs a GPTConfig, got {type(config).__name__}")
        super().__init__(config.transformer_config())
        self.config = config  # the GPT-2 numbers, as the reader wrote them

    def forward(self, ids: torch.Tensor, cache: list[KVCache] | None = None) -> torch.Tensor:
        """Next-token logits ``(B, T, V)`` after every position of `ids` ``(B, T)``.

        With `cache` (from :meth:`new_cache`), `ids` continue the positions already cached."""
        check_batch_ids("ids", ids, self.config.vocab_size)
        return self.decoder(self.hidden_states(ids, cache=cache))  # (B, T, C) @ (C, V) -> (B, T, V)

    def new_cache(self) -> list[KVCache]:
        """An empty KV cache: one :class:`KVCache` per block."""
        return [KVCache() for _ in self.blocks]

    def _last_logits(self, ids: torch.Tensor, cache: list[KVCache] | None) -> torch.Tensor:
        """Logits ``(B, V)`` after the last position of `ids` ``(B, T)``; the others are not projected."""
        return self.decoder(self.hidden_states(ids, cache=cache)[:, -1])  # (B, C) @ (C, V) -> (B, V)

    def next_tokens(self, ids: torch.Tensor, settings: DecodingSettings,
                    generator: torch.Generator | None, use_cache: bool) -> Iterator[torch.Tensor]:
        """Yield the next token of every sequence ``(B,)``, step after step, without end.

        Without the cache each step reads the last ``L`` tokens; with it, a step reads only the
        newest token, until the window must slide (then it re-reads the window into a new cache)."""
        L = self.config.context_length
        cache: list[KVCache] | None = None
        while True:
            if cache is not None and len(cache[0]) < L:  # room for one more position
                logits = self._last_logits(ids[:, -1:], cache)  # (B, 1) -> (B, V)
            else:
                cache = self.new_cache() if use_cache else None
                logits = self._last_logits(ids[:, -L:], cache)  # (B, min(T, L)) -> (B, V)
            token = next_token(logits, ids, settings, generator)  # (B,)
            yield token
            ids = torch.cat([ids, token[:, None]], dim=1)  # (B, T) -> (B, T + 1)
