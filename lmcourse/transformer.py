"""A decoder-only Transformer language model, Chapter 4 (Attention and the Transformer).

Composed of small named parts, as in nanoGPT: token embedding (+ positions) -> ``num_layers``
pre-LayerNorm :class:`Block` s -> LayerNorm -> softmax. A block is

    x = x + Dropout(MultiHeadAttention(LayerNorm(x)))      (causal self-attention)
    x = x + Dropout(MLP(LayerNorm(x)))                     (Linear -> GELU -> Linear)

Putting LayerNorm before each sub-layer (Xiong et al., 2020; GPT-2) rather than after the
residual sum (Vaswani et al., 2017) keeps the residual path an identity, so deep stacks train
without a long warm-up. ``fused=True`` runs attention with PyTorch's fused kernel, ``False`` with
the book's :func:`lmcourse.attention.scaled_dot_product_attention`; both give the same numbers.

The model follows the protocol of :class:`lmcourse.neural.NeuralLM` (inputs ``(T, B)``,
time first), so :func:`lmcourse.train.train` trains it like the recurrent models. Its ``state``
is the last ``context_length - 1`` input tokens ``(S, B)``: a chunk of ``T`` tokens is read
after up to ``context_length - T`` tokens of the previous chunk, so evaluating with chunks
shorter than the context gives every token a long left context (a sliding window), much as an
RNN's carried state does. Training with ``bptt == context_length`` carries nothing and costs
nothing extra. :meth:`TransformerLM.features` is the only place that turns time-first ``(T, B)``
into batch-first ``(B, T)``; :meth:`TransformerLM.hidden_states` and everything under it are batch first.

Shape letters: ``T`` time, ``B`` batch, ``C`` = ``emb_dim`` (``d_model``), ``H`` heads,
``L`` = ``context_length``, ``V`` vocabulary.

:meth:`TransformerLM.hidden_states` can read a chunk after the positions already held in a list
of :class:`lmcourse.attention.KVCache` (one per block), which generation uses (Chapter 6,
:mod:`lmcourse.gpt`); the options ``gelu_approximate``, ``layer_norm_eps`` and ``output_bias``
let :class:`lmcourse.gpt.GPT` be exactly GPT-2.

Left out: attention dropout and the GPT-2 weight names (:mod:`lmcourse.gpt` adds them).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lmcourse.attention import KVCache, MultiHeadAttention, from_scratch_attention
from lmcourse.decoding import DecodingSettings, next_token
from lmcourse.layers import MLP  # re-exported: it lived here before
from lmcourse.neural import NeuralLM, check_output_layer, check_sizes, check_tokens
from lmcourse.positions import LearnedPositions, RotaryEmbedding, SinusoidalPositions
from lmcourse.token_ids import check_batch_ids

__all__ = ["TransformerConfig", "MLP", "PreNormBlock", "Block", "DecoderLM", "TransformerLM", "POSITIONS",
           "GELU_APPROXIMATIONS"]

POSITIONS = ("learned", "sinusoidal", "rotary")
GELU_APPROXIMATIONS = ("none", "tanh")  # nn.GELU's `approximate`: exact erf, or GPT-2's tanh formula


@dataclass(frozen=True)
class TransformerConfig:
    """Hyperparameters of :class:`TransformerLM`. :meth:`tiny` trains in seconds on a CPU.
    Vary with ``dataclasses.replace(cfg, num_layers=4)``."""

    vocab_size: int  # V: number of token ids
    context_length: int = 128  # L: the most tokens one prediction can see (including itself)
    emb_dim: int = 128  # C (d_model): width of the residual stream
    num_heads: int = 4  # H: attention heads per layer, each of size emb_dim / num_heads
    num_layers: int = 2  # stacked blocks
    mlp_ratio: int = 4  # the MLP's hidden width is mlp_ratio * emb_dim
    dropout: float = 0.1  # on the embeddings and on each sub-layer's output
    positions: str = "learned"  # "learned" (GPT-2), "sinusoidal" (Vaswani et al.) or "rotary" (RoPE)
    fused: bool = True  # torch's fused attention kernel; False: the book's from-scratch attention
    tie_weights: bool = False  # the output layer shares the embedding matrix (full softmax only)
    adaptive_cutoffs: tuple[int, ...] | None = None  # e.g. (2000, 6000): adaptive softmax; None: full
    gelu_approximate: str = "none"  # "none": exact GELU; "tanh": GPT-2's approximation ("gelu_new")
    layer_norm_eps: float = 1e-5  # added to the variance in every LayerNorm
    output_bias: bool = True  # a bias on the output layer (GPT-2 has none)

    def __post_init__(self) -> None:
        check_sizes(self, ("vocab_size", "context_length", "emb_dim", "num_heads", "num_layers", "mlp_ratio"))
        if self.positions not in POSITIONS:
            raise ValueError(f"unknown positions {self.positions!r}; choose one of {', '.join(map(repr, POSITIONS))}")
        if self.emb_dim % self.num_heads:
            raise ValueError(f"emb_dim={self.emb_dim} is not divisible by num_heads={self.num_heads}: each "
                             f"head gets emb_dim / num_heads dimensions; change one of them")
        if self.positions == "rotary" and self.head_dim % 2:
            raise ValueError(f"rotary positions rotate pairs of dimensions, so the head size "
                             f"emb_dim / num_heads = {self.head_dim} must be even")
        if self.positions == "sinusoidal" and self.emb_dim % 2:
            raise ValueError(f"sinusoidal positions pair sines and cosines, so emb_dim must be even, "
                             f"got {self.emb_dim}")
        if self.gelu_approximate not in GELU_APPROXIMATIONS:
            raise ValueError(f"unknown gelu_approximate {self.gelu_approximate!r}; choose one of "
                             f"{', '.join(map(repr, GELU_APPROXIMATIONS))}")
        if not (isinstance(self.layer_norm_eps, (int, float)) and 0 < self.layer_norm_eps < 1):
            raise ValueError(f"layer_norm_eps must be a small positive number such as 1e-5, got "
                             f"{self.layer_norm_eps!r}")
        if not self.output_bias and self.adaptive_cutoffs is not None:
            raise ValueError("output_bias=False needs the full softmax (adaptive_cutoffs=None): the "
                             "adaptive softmax keeps its own biases")
        check_output_layer(self, width="C")

    @property
    def head_dim(self) -> int:
        """D = C / H: the size of each head's queries, keys and values."""
        return self.emb_dim // self.num_heads

    @classmethod
    def tiny(cls, vocab_size: int, **overrides: Any) -> TransformerConfig:
        """A small model for tests and CPU experiments; `overrides` change any field.

        >>> TransformerConfig.tiny(100, positions="rotary").head_dim
        8
        """
        fields = dict(context_length=32, emb_dim=32, num_heads=4, num_layers=2, dropout=0.0)
        return cls(vocab_size=vocab_size, **{**fields, **overrides})


class PreNormBlock(nn.Module):
    """The pre-norm residual wiring every decoder of the book shares, given its four parts:
    ``x + drop(attn(norm_attn(x)))``, then ``x + drop(mlp(norm_mlp(x)))``. :class:`Block` (GPT) and
    :class:`lmcourse.llama.LlamaBlock` differ only in the parts they pass in."""

    def __init__(self, ln_attn: nn.Module, attn: MultiHeadAttention, ln_mlp: nn.Module, mlp: nn.Module,
                 dropout: float) -> None:
        super().__init__()
        self.ln_attn, self.attn, self.ln_mlp, self.mlp = ln_attn, attn, ln_mlp, mlp
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, return_weights: bool = False, cache: KVCache | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``(B, T, C) -> (B, T, C)``; with `return_weights`, also the attention weights ``(B, H, T, S)``.
        With `cache`, ``x`` holds the positions after those cached (see :class:`KVCache`); `mask` is
        passed to the attention (combined with its causal mask)."""
        attended = self.attn(self.ln_attn(x), mask=mask, return_weights=return_weights, cache=cache)
        attended, weights = attended if return_weights else (attended, None)
        x = x + self.drop(attended)
        x = x + self.drop(self.mlp(self.ln_mlp(x)))
        return (x, weights) if return_weights else x


class Block(PreNormBlock):
    """One pre-LayerNorm Transformer block: causal self-attention and a GELU MLP, each in a residual."""

    def __init__(self, config: TransformerConfig, rotary: RotaryEmbedding | None = None) -> None:
        c = config
        super().__init__(
            ln_attn=nn.LayerNorm(c.emb_dim, eps=c.layer_norm_eps),
            attn=MultiHeadAttention(c.emb_dim, c.num_heads, causal=True, fused=c.fused, rotary=rotary),
            ln_mlp=nn.LayerNorm(c.emb_dim, eps=c.layer_norm_eps),
            mlp=MLP(c.emb_dim, c.mlp_ratio * c.emb_dim, approximate=c.gelu_approximate),
            dropout=c.dropout)


class DecoderLM(NeuralLM):
    """What every decoder-only Transformer of the book shares (:class:`TransformerLM`, GPT, Llama):
    the stack read batch first (:meth:`hidden_states`), the time-first protocol of
    :mod:`lmcourse.train` (:meth:`features`), batch-first logits (``model(ids)``), attention maps, and
    generation with a KV cache (:meth:`next_tokens`, driven by :meth:`NeuralLM.generate`).

    A subclass builds ``embedding``, ``positions`` (or None, for rotary positions inside attention),
    ``drop``, ``blocks`` (each called as ``block(x, return_weights=..., cache=...)``), ``ln_final`` and
    ``decoder``, and sets ``transformer_config``: any config with ``vocab_size``, ``context_length``
    and ``num_layers``.
    """

    transformer_config: Any

    def hidden_states(self, ids: torch.Tensor, return_weights: bool = False,
                      cache: list[KVCache] | None = None, mask: torch.Tensor | None = None
                      ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Token ids ``(B, T)`` (batch first) -> final hidden states ``(B, T, C)``; with
        `return_weights`, also each layer's attention weights ``(B, H, T, S)``.

        With `cache` (one :class:`KVCache` per block), `ids` are the positions after the
        ``P`` already cached; their keys and values are added to it. `mask` (e.g. a padding mask
        ``(B, 1, T, S)``, True where a query may read a key) goes to every block's attention."""
        if cache is not None and len(cache) != len(self.blocks):
            raise ValueError(f"cache must hold one KVCache per block ({len(self.blocks)}), got {len(cache)}")
        past = len(cache[0]) if cache else 0  # P positions already read
        T, L = ids.shape[1], self.transformer_config.context_length
        if past + T > L:
            raise ValueError(f"a sequence of {past + T} tokens is longer than the model's context_length={L}; "
                             f"cut it into chunks of at most {L} tokens (e.g. bptt <= {L}) or build a "
                             f"model with a larger context_length")
        x = self.embedding(ids)  # (B, T) -> (B, T, C)
        if self.positions is not None:
            x = x + self.positions(T, offset=past)  # (B, T, C) + (T, C)
        x = self.drop(x)
        weights = []
        for block, layer_cache in zip(self.blocks, cache or [None] * len(self.blocks)):
            if return_weights:
                x, w = block(x, return_weights=True, cache=layer_cache, mask=mask)
                weights.append(w)
            else:
                x = block(x, cache=layer_cache, mask=mask)
        x = self.ln_final(x)
        return (x, weights) if return_weights else x

    def features(self, inputs: torch.Tensor, state: torch.Tensor | None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids ``(T, B)`` -> final hidden states ``(T, B, C)``, each position seeing up to
        ``context_length - T`` tokens of `state` before the chunk; and the new state.

        The one place where the protocol's time-first ``(T, B)`` meets the Transformer's batch-first
        ``(B, T)``: everything before it (``nll``, ``log_probs``, ``state``) is time first, everything
        after it (:meth:`hidden_states`, the blocks, attention) batch first."""
        T, B = inputs.shape
        L = self.transformer_config.context_length
        previous = state if state is not None else inputs.new_empty((0, B))
        keep = min(previous.shape[0], max(L - T, 0))  # a chunk longer than L: hidden_states refuses it
        window = torch.cat([previous[previous.shape[0] - keep:], inputs])  # (keep + T, B)
        hidden = self.hidden_states(window.T)  # (B, keep + T, C)
        feats = hidden[:, keep:].transpose(0, 1)  # (B, T, C) -> (T, B, C)
        return feats, window[-(L - 1):] if L > 1 else window[:0]

    def check_state(self, state: Any, batch_size: int) -> None:
        """The state must be earlier token ids ``(S, B)`` with ``S < context_length``."""
        L = self.transformer_config.context_length
        check_tokens("state (the previous tokens)", state, self.transformer_config.vocab_size)
        if state.shape[0] >= L or state.shape[1] != batch_size:
            raise ValueError(f"state must be the previous tokens (S, B={batch_size}) with S < context_length={L}, "
                             f"as returned by the previous call; got {tuple(state.shape)}")

    @property
    def context_window(self) -> int:
        """The most tokens one prediction reads: ``context_length`` (``generate(use_cache=False)`` re-reads these)."""
        return self.transformer_config.context_length

    @torch.no_grad()
    def attention_maps(self, ids: torch.Tensor) -> list[torch.Tensor]:
        """Each layer's attention weights ``(B, H, T, T)`` for token ids ``(B, T)``, in eval mode.

        Row ``i`` of head ``h`` is the distribution over the positions ``0..i`` that position ``i``
        reads from.
        """
        check_batch_ids("ids", ids, self.transformer_config.vocab_size)
        was_training = self.training
        self.eval()
        try:
            with from_scratch_attention(self):
                _, weights = self.hidden_states(ids, return_weights=True)
        finally:
            self.train(was_training)
        return weights

    def forward(self, ids: torch.Tensor, cache: list[KVCache] | None = None) -> torch.Tensor:
        """Next-token logits ``(B, T, V)`` after every position of `ids` ``(B, T)``.

        With `cache` (from :meth:`new_cache`), `ids` continue the positions already cached."""
        check_batch_ids("ids", ids, self.transformer_config.vocab_size)
        if self.decoder is None:
            raise ValueError("this model has an adaptive softmax, which gives log-probabilities, not "
                             "logits: use model.log_probs(inputs (T, B))")
        return self.decoder(self.hidden_states(ids, cache=cache))  # (B, T, C) @ (C, V) -> (B, T, V)

    def new_cache(self) -> list[KVCache]:
        """An empty KV cache: one :class:`KVCache` per block."""
        return [KVCache() for _ in self.blocks]

    def _last_logits(self, ids: torch.Tensor, cache: list[KVCache] | None) -> torch.Tensor:
        """Logits ``(B, V)`` after the last position of `ids` ``(B, T)``; the others are not projected."""
        return self.decoder(self.hidden_states(ids, cache=cache)[:, -1])  # (B, C) @ (C, V) -> (B, V)

    def next_tokens(self, ids: torch.Tensor, settings: DecodingSettings,
                    generator: torch.Generator | None, use_cache: bool) -> Iterator[torch.Tensor]:
        """The steps of :meth:`NeuralLM.generate`: :meth:`cached_steps` from logits, or, for an
        adaptive softmax (log-probabilities only), NeuralLM's steps."""
        if self.decoder is None:
            return super().next_tokens(ids, settings, generator, use_cache)
        return self.cached_steps(ids, settings, generator, use_cache)

    def cached_steps(self, ids: torch.Tensor, settings: DecodingSettings,
                     generator: torch.Generator | None, use_cache: bool) -> Iterator[torch.Tensor]:
        """Yield the next token of every sequence ``(B,)``, step after step, without end.

        Without the cache each step reads the last ``L`` tokens; with it, a step reads only the
        newest token, until the window must slide (then it re-reads the window into a new cache:
        learned positions are absolute, so cached keys are stale once the window moves)."""
        L = self.transformer_config.context_length
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


class TransformerLM(DecoderLM):
    """A decoder-only Transformer language model (GPT-style, pre-LayerNorm, GELU).

    >>> model = TransformerLM(TransformerConfig.tiny(vocab_size=10))
    >>> x = torch.tensor([[1, 2], [3, 4], [5, 6]])  # (T=3, B=2)
    >>> logp, state = model.log_probs(x)
    >>> logp.shape, state.shape  # state: the tokens read so far (up to context_length - 1)
    (torch.Size([3, 2, 10]), torch.Size([3, 2]))
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        if not isinstance(config, TransformerConfig):
            raise TypeError(f"TransformerLM needs a TransformerConfig, got {type(config).__name__}")
        # `config` is what the reader passed (GPT replaces it with its GPTConfig); this class's own
        # methods read `transformer_config`, so they never depend on a subclass's config fields.
        self.config = self.transformer_config = c = config
        self.embedding = nn.Embedding(c.vocab_size, c.emb_dim)
        self.positions: nn.Module | None = None
        rotary = None
        if c.positions == "learned":
            self.positions = LearnedPositions(c.context_length, c.emb_dim)
        elif c.positions == "sinusoidal":
            self.positions = SinusoidalPositions(c.context_length, c.emb_dim)
        else:
            rotary = RotaryEmbedding(c.head_dim)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c, rotary) for _ in range(c.num_layers))
        self.ln_final = nn.LayerNorm(c.emb_dim, eps=c.layer_norm_eps)
        self._build_output(c.emb_dim, c.vocab_size, c.adaptive_cutoffs)
        if not c.output_bias:
            self.decoder.bias = None  # logits = features @ W^T only
        self._init_weights()
        if c.tie_weights:
            self.decoder.weight = self.embedding.weight  # one Parameter, (V, C)

    def _init_weights(self) -> None:
        """GPT-2's initialisation: N(0, 0.02) for matrices and embeddings, zero biases, and the
        projections that write into the residual stream scaled by 1/sqrt(2 * num_layers), so the
        stream's variance does not grow with depth."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)) and module is not self.adaptive:
                nn.init.normal_(module.weight, std=0.02)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
        for block in self.blocks:
            for layer in (block.attn.out_proj, block.mlp.down):
                nn.init.normal_(layer.weight, std=0.02 / math.sqrt(2 * self.transformer_config.num_layers))

    def extra_repr(self) -> str:
        return f"{dataclasses.asdict(self.config)}"
