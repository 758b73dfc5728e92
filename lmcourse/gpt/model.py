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

import torch

from lmcourse.gpt.config import GPTConfig
from lmcourse.transformer import TransformerLM

__all__ = ["GPT"]


class GPT(TransformerLM):
    """GPT-2: a :class:`TransformerLM` with GPT-2's choices, batch-first logits and generation.

    ``self.config`` is the :class:`GPTConfig` as the reader wrote it; the layers are built from its
    :class:`~lmcourse.transformer.TransformerConfig` (``self.transformer_config``). ``generate`` is
    :meth:`lmcourse.neural.NeuralLM.generate`, the one signature every model family shares; its
    steps, with a KV cache, are :meth:`lmcourse.transformer.DecoderLM.next_tokens`.

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
