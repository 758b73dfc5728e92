"""GPT-2 (Radford et al., 2019) built from the book's parts, its weights by name, and text
generation with a KV cache. Chapter 6 (GPT) explains it.

GPT-2 is the decoder-only Transformer of Chapter 4 (:class:`lmcourse.transformer.TransformerLM`)
with its choices fixed: learned positions, pre-LayerNorm blocks, GELU in its tanh approximation
(GPT-2's ``gelu_new``), a final LayerNorm, an output layer without bias that shares the token
embedding matrix, and GPT-2's initialisation (residual projections scaled by
``1/sqrt(2 * num_layers)``). So :class:`GPT` *is* a ``TransformerLM``: ``lmcourse.train.train``
trains it and ``lmcourse.checkpoint`` saves it unchanged; :class:`GPTConfig` holds only the
numbers that vary between GPT-2 sizes.

Generation (:meth:`GPT.generate`, :func:`generate_text`) reads the prompt once, then feeds one
token per step, keeping every layer's keys and values in a :class:`lmcourse.attention.KVCache`;
the decoding rules live in :mod:`lmcourse.decoding`. With or without the cache the tokens are
the same. Past ``context_length`` tokens the window slides: the model reads the last
``context_length`` tokens. Learned positions are absolute, so every cached key is stale once the
window moves; the cached path then rebuilds its cache from the window at each step, which costs
as much as not caching but keeps both paths equal.

:func:`to_hf_state_dict` and :func:`from_hf_state_dict` convert weights to and from
``transformers.GPT2LMHeadModel``; its names (``wte``, ``c_attn``, ...) appear only there.

Shape letters: ``B`` batch, ``T`` tokens, ``C`` = ``emb_dim`` (``d_model``), ``V`` vocabulary,
``L`` = ``context_length``, ``H`` heads.

Left out: attention dropout (GPT-2's ``attn_pdrop``), padding a batch of prompts of different
lengths, beam search, half precision, and downloading pretrained weights (no network: convert a
state dict you have).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lmcourse.attention import KVCache
from lmcourse.decoding import DecodingSettings, next_token
from lmcourse.transformer import TransformerConfig, TransformerLM

__all__ = ["GPTConfig", "GPT", "Completion", "generate_text", "to_hf_state_dict", "from_hf_state_dict",
           "config_from_hf", "config_to_hf"]


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


def _check_ids(ids: Any, vocab_size: int) -> None:
    """A LongTensor ``(B, T)`` of ids in ``[0, V)`` with ``T >= 1``, or a clear error."""
    if not isinstance(ids, torch.Tensor) or ids.dtype != torch.long:
        got = ids.dtype if isinstance(ids, torch.Tensor) else type(ids).__name__
        raise TypeError(f"ids must be a LongTensor of token ids (B, T), got {got}; use torch.tensor(ids) "
                        f"or ids.long()")
    if ids.dim() != 2 or ids.shape[1] == 0:
        raise ValueError(f"ids must be (B, T) with T >= 1 (batch first), got shape {tuple(ids.shape)}")
    if int(ids.min()) < 0 or int(ids.max()) >= vocab_size:
        raise ValueError(f"ids hold values outside [0, {vocab_size}): min {int(ids.min())}, max {int(ids.max())}")


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode (no dropout) and no gradients inside; the previous mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


class GPT(TransformerLM):
    """GPT-2: a :class:`TransformerLM` with GPT-2's choices, batch-first logits and generation.

    ``self.config`` is the :class:`GPTConfig`; TransformerLM's methods read only the fields the
    two configs share (``vocab_size``, ``context_length``, ``num_layers``).

    >>> model = GPT(GPTConfig.tiny(vocab_size=10))
    >>> model(torch.tensor([[1, 2, 3]])).shape  # (B, T) -> (B, T, V)
    torch.Size([1, 3, 10])
    >>> model.num_parameters == model.config.num_parameters
    True
    """

    config: GPTConfig

    def __init__(self, config: GPTConfig) -> None:
        if not isinstance(config, GPTConfig):
            raise TypeError(f"GPT needs a GPTConfig, got {type(config).__name__}")
        super().__init__(config.transformer_config())
        self.config = config  # type: ignore[assignment]  # the GPT-2 numbers, as the reader wrote them

    def forward(self, ids: torch.Tensor, cache: list[KVCache] | None = None) -> torch.Tensor:
        """Next-token logits ``(B, T, V)`` after every position of `ids` ``(B, T)``.

        With `cache` (from :meth:`new_cache`), `ids` continue the positions already cached."""
        _check_ids(ids, self.config.vocab_size)
        return self.decoder(self.hidden_states(ids, cache=cache))  # (B, T, C) @ (C, V) -> (B, T, V)

    def new_cache(self) -> list[KVCache]:
        """An empty KV cache: one :class:`KVCache` per block."""
        return [KVCache() for _ in self.blocks]

    def _last_logits(self, ids: torch.Tensor, cache: list[KVCache] | None) -> torch.Tensor:
        """Logits ``(B, V)`` after the last position of `ids` ``(B, T)``; the others are not projected."""
        return self.decoder(self.hidden_states(ids, cache=cache)[:, -1])  # (B, C) @ (C, V) -> (B, V)

    def _next_tokens(self, ids: torch.Tensor, settings: DecodingSettings,
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

    def generate(self, ids: torch.Tensor | Sequence[int], max_new_tokens: int, *,  # type: ignore[override]
                 temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                 repetition_penalty: float = 1.0, stop_ids: int | Sequence[int] | None = None,
                 seed: int | torch.Generator | None = 0, use_cache: bool = True
                 ) -> list[int] | list[list[int]]:
        """Continue `ids`; return the new ids only: a list for one prompt (``(T,)`` or a list of
        ints), a list of lists for a batch ``(B, T)``.

        Decoding follows :func:`lmcourse.decoding.next_token` (``temperature=0``: greedy). A
        sequence ends after `max_new_tokens` ids or right after one of `stop_ids` (included).
        `seed`: an int (the same int gives the same ids), a ``torch.Generator`` (advanced), or
        ``None`` (torch's global generator). ``use_cache=False`` recomputes every position at
        every step: slower, same ids. Runs in eval mode and restores the mode afterwards.

        >>> model = GPT(GPTConfig.tiny(vocab_size=10))
        >>> out = model.generate([1, 2, 3], 5, temperature=0)
        >>> len(out), out == model.generate([1, 2, 3], 5, temperature=0, use_cache=False)
        (5, True)
        """
        settings = DecodingSettings(temperature=temperature, top_k=top_k, top_p=top_p,
                                    repetition_penalty=repetition_penalty)
        if not isinstance(ids, torch.Tensor):
            if isinstance(ids, (str, bytes)) or not isinstance(ids, Sequence) or \
                    not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
                raise TypeError(f"ids must be a LongTensor (T,) or (B, T), or a list of ints, got {ids!r:.80}")
            ids = torch.tensor(list(ids), dtype=torch.long)
        single = ids.dim() == 1
        batch = ids[None] if single else ids  # (T,) -> (1, T)
        _check_ids(batch, self.config.vocab_size)
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be an int >= 0, got {max_new_tokens!r}")
        stops = _check_stop_ids(stop_ids, self.config.vocab_size)
        device = self.embedding.weight.device
        generator = _generator(seed, device)
        out: list[list[int]] = [[] for _ in range(batch.shape[0])]
        done = [False] * batch.shape[0]
        with _eval_mode(self):
            steps = self._next_tokens(batch.to(device), settings, generator, use_cache)
            for _, token in zip(range(max_new_tokens), steps):
                for row, t in enumerate(token.tolist()):
                    if not done[row]:
                        out[row].append(t)
                        done[row] = t in stops
                if all(done):
                    break
        return out[0] if single else out


def _check_stop_ids(stop_ids: Any, vocab_size: int) -> set[int]:
    if stop_ids is None:
        return set()
    stops = [stop_ids] if isinstance(stop_ids, int) else stop_ids
    if isinstance(stops, (str, bytes)) or not isinstance(stops, Sequence) or \
            not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < vocab_size for i in stops):
        raise ValueError(f"stop_ids must be None, an id or a list of ids in [0, {vocab_size}), got {stop_ids!r:.80}")
    return set(stops)


def _generator(seed: int | torch.Generator | None, device: torch.device) -> torch.Generator | None:
    if seed is None or isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, a torch.Generator or None, got {seed!r}")
    return torch.Generator(device=device).manual_seed(seed)


# ---------------------------------------------------------------------------------------------
# Text in, text out

@dataclass(frozen=True)
class Completion:
    """One generated continuation, as hosted completion APIs return it."""

    text: str  # the continuation (not the prompt), cut before the first stop sequence
    finish_reason: str  # "stop": a stop sequence appeared; "length": max_tokens were generated
    num_tokens: int  # tokens generated, including those that formed the stop sequence


def _check_stop(stop: Any) -> list[str]:
    if stop is None:
        return []
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, (list, tuple)) or not all(isinstance(s, str) and s for s in stops):
        raise ValueError(f"stop must be None, a non-empty string or a list of them, got {stop!r:.80}")
    return list(stops)


def _cut_at_stop(text: str, stops: list[str]) -> str | None:
    """`text` before the earliest stop sequence in it, or None if there is none."""
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    return text[:min(found)] if found else None


def generate_text(prompt: str, *, model: GPT, tokenizer: Any, max_tokens: int = 64, temperature: float = 1.0,
                  top_p: float = 1.0, top_k: int | None = None, n: int = 1, stop: str | list[str] | None = None,
                  seed: int = 0, repetition_penalty: float = 1.0) -> list[Completion]:
    """`n` continuations of `prompt`, with the parameters of hosted completion APIs.

    `tokenizer` is anything with ``encode(str) -> list[int]`` and ``decode(list[int]) -> str``.
    Each completion ends after `max_tokens` tokens (``finish_reason="length"``) or when its
    decoded text contains one of the `stop` strings (``"stop"``; the text is cut before it).
    ``temperature=0`` is greedy. The `n` completions are sampled side by side with one generator
    seeded by `seed`, so the same call gives the same texts.

    >>> chars = "abc "
    >>> class Chars:
    ...     def encode(self, s): return [chars.index(c) for c in s]
    ...     def decode(self, ids): return "".join(chars[i] for i in ids)
    >>> model = GPT(GPTConfig.tiny(vocab_size=4))
    >>> [c.finish_reason for c in generate_text("ab", model=model, tokenizer=Chars(), max_tokens=3, n=2)]
    ['length', 'length']
    """
    if not isinstance(model, GPT):
        raise TypeError(f"model must be an lmcourse.gpt.GPT, got {type(model).__name__}")
    if not (callable(getattr(tokenizer, "encode", None)) and callable(getattr(tokenizer, "decode", None))):
        raise TypeError(f"tokenizer must have encode(str) -> list[int] and decode(list[int]) -> str, got "
                        f"{type(tokenizer).__name__}")
    if not isinstance(prompt, str) or not prompt:
        raise ValueError(f"prompt must be a non-empty string, got {prompt!r:.80}")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValueError(f"max_tokens must be an int >= 1, got {max_tokens!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1 (the number of completions), got {n!r}")
    settings = DecodingSettings(temperature=temperature, top_k=top_k, top_p=top_p,
                                repetition_penalty=repetition_penalty)
    stops = _check_stop(stop)
    ids = list(tokenizer.encode(prompt))
    L = model.config.context_length
    if not ids:
        raise ValueError(f"the tokenizer turned the prompt {prompt!r:.40} into no tokens; give a longer prompt")
    if len(ids) > L:
        raise ValueError(f"the prompt is {len(ids)} tokens long, but the model reads at most "
                         f"context_length={L} tokens; shorten the prompt by {len(ids) - L} tokens")
    device = model.embedding.weight.device
    batch = torch.tensor([ids] * n, dtype=torch.long, device=device)  # (n, P)
    _check_ids(batch, model.config.vocab_size)
    generator = _generator(seed, device)
    new_ids: list[list[int]] = [[] for _ in range(n)]
    results: list[Completion | None] = [None] * n
    with _eval_mode(model):
        steps = model._next_tokens(batch, settings, generator, use_cache=True)
        for step, token in zip(range(1, max_tokens + 1), steps):
            for row, t in enumerate(token.tolist()):
                if results[row] is not None:
                    continue
                new_ids[row].append(t)
                text = tokenizer.decode(new_ids[row])
                cut = _cut_at_stop(text, stops)
                if cut is not None:
                    results[row] = Completion(cut, "stop", step)
                elif step == max_tokens:
                    results[row] = Completion(text, "length", step)
            if all(r is not None for r in results):
                break
    return results  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# Weights by name: transformers.GPT2LMHeadModel <-> GPT

# (GPT-2's name inside block i, ours inside blocks.i, transposed?). GPT-2's Conv1D stores its
# weight (in, out), the transpose of nn.Linear's (out, in).
_BLOCK_NAMES = (
    ("ln_1.weight", "ln_attn.weight", False), ("ln_1.bias", "ln_attn.bias", False),
    ("attn.c_attn.weight", "attn.in_proj.weight", True), ("attn.c_attn.bias", "attn.in_proj.bias", False),
    ("attn.c_proj.weight", "attn.out_proj.weight", True), ("attn.c_proj.bias", "attn.out_proj.bias", False),
    ("ln_2.weight", "ln_mlp.weight", False), ("ln_2.bias", "ln_mlp.bias", False),
    ("mlp.c_fc.weight", "mlp.up.weight", True), ("mlp.c_fc.bias", "mlp.up.bias", False),
    ("mlp.c_proj.weight", "mlp.down.weight", True), ("mlp.c_proj.bias", "mlp.down.bias", False),
)
_TOP_NAMES = (
    ("wte.weight", "embedding.weight", False), ("wpe.weight", "positions.embedding.weight", False),
    ("ln_f.weight", "ln_final.weight", False), ("ln_f.bias", "ln_final.bias", False),
)
_PREFIX = "transformer."
_TIED = "lm_head.weight"  # the output layer: the same matrix as transformer.wte.weight
# Buffers older GPT-2 files carry (the causal mask and its fill value): not weights.
_IGNORED = re.compile(r"^h\.\d+\.attn\.(masked_)?bias$")


def _name_map(num_layers: int) -> dict[str, tuple[str, bool]]:
    """GPT-2's name (with the ``transformer.`` prefix) -> (our name, transposed?)."""
    names = {_PREFIX + hf: (ours, t) for hf, ours, t in _TOP_NAMES}
    for i in range(num_layers):
        names.update({f"{_PREFIX}h.{i}.{hf}": (f"blocks.{i}.{ours}", t) for hf, ours, t in _BLOCK_NAMES})
    return names


def to_hf_state_dict(model: GPT) -> dict[str, torch.Tensor]:
    """Our weights under ``transformers.GPT2LMHeadModel``'s names, for its ``load_state_dict``.

    >>> sd = to_hf_state_dict(GPT(GPTConfig.tiny(vocab_size=10, emb_dim=8, num_heads=2)))
    >>> tuple(sd["transformer.h.0.attn.c_attn.weight"].shape)  # Conv1D: (in, out) = (C, 3C)
    (8, 24)
    """
    if not isinstance(model, GPT):
        raise TypeError(f"expected an lmcourse.gpt.GPT, got {type(model).__name__}")
    ours = model.state_dict()
    out = {}
    for hf, (name, transposed) in _name_map(model.config.num_layers).items():
        out[hf] = ours[name].t().contiguous() if transposed else ours[name].clone()
    out[_TIED] = out[_PREFIX + "wte.weight"]  # tied: one tensor under both names
    return out


def from_hf_state_dict(model_or_config: GPT | GPTConfig, state_dict: dict[str, torch.Tensor]) -> GPT:
    """Load a ``GPT2LMHeadModel`` (or ``GPT2Model``) state dict into a :class:`GPT`; returns it.

    Give a GPT to fill, or a :class:`GPTConfig` to build one (see :func:`config_from_hf`). Names
    with or without the ``transformer.`` prefix are accepted; the old causal-mask buffers
    (``h.N.attn.bias``) are skipped; ``lm_head.weight``, if present, must equal ``wte.weight``
    (tied). Everything is checked before anything is copied: missing or unexpected tensors are
    listed, and a shape mismatch names the tensor.
    """
    if isinstance(model_or_config, GPTConfig):
        model = GPT(model_or_config)
    elif isinstance(model_or_config, GPT):
        model = model_or_config
    else:
        raise TypeError(f"give a GPT or a GPTConfig, got {type(model_or_config).__name__}")
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise TypeError("state_dict must be a dict of name -> tensor, e.g. GPT2LMHeadModel(...).state_dict()")
    given = {}
    for key, value in state_dict.items():
        bare = key[len(_PREFIX):] if key.startswith(_PREFIX) else key
        if not _IGNORED.match(bare):
            given[key if key == _TIED else _PREFIX + bare] = value
    names = _name_map(model.config.num_layers)
    missing = [k for k in names if k not in given]
    unexpected = [k for k in given if k not in names and k != _TIED]
    if missing or unexpected:
        c = model.config
        raise ValueError(
            f"the state dict does not fit a GPT with num_layers={c.num_layers}: "
            f"{len(missing)} missing ({', '.join(missing[:6])}{', ...' if len(missing) > 6 else ''}), "
            f"{len(unexpected)} unexpected ({', '.join(unexpected[:6])}{', ...' if len(unexpected) > 6 else ''}); "
            f"build the GPTConfig from the checkpoint's own config (config_from_hf)")
    ours = model.state_dict()
    for hf, (name, transposed) in names.items():
        expected = tuple(ours[name].shape[::-1] if transposed else ours[name].shape)
        if tuple(given[hf].shape) != expected:
            raise ValueError(f"{hf} has shape {tuple(given[hf].shape)}, but this GPT expects {expected} "
                             f"(vocab_size={model.config.vocab_size}, context_length={model.config.context_length}, "
                             f"emb_dim={model.config.emb_dim}); build the GPTConfig from the checkpoint's config")
    if _TIED in given and not torch.equal(given[_TIED], given[_PREFIX + "wte.weight"]):
        raise ValueError(f"{_TIED} differs from {_PREFIX}wte.weight, but GPT-2 (and this GPT) uses one "
                         f"matrix for both; this checkpoint has an untied output layer")
    with torch.no_grad():
        for hf, (name, transposed) in names.items():
            ours[name].copy_(given[hf].t() if transposed else given[hf])  # state_dict tensors share storage
    return model


def config_from_hf(hf_config: Any) -> GPTConfig:
    """The :class:`GPTConfig` of a ``transformers.GPT2Config`` (dropout: its ``resid_pdrop``)."""
    c = hf_config
    if getattr(c, "activation_function", "gelu_new") not in ("gelu_new", "gelu_pytorch_tanh"):
        raise ValueError(f"this GPT uses GPT-2's tanh GELU; the config asks for {c.activation_function!r}")
    if getattr(c, "n_inner", None) not in (None, 4 * c.n_embd):
        raise ValueError(f"this GPT's MLP is 4 x n_embd = {4 * c.n_embd} wide; the config has n_inner={c.n_inner}")
    if getattr(c, "scale_attn_by_inverse_layer_idx", False) or not getattr(c, "scale_attn_weights", True):
        raise ValueError("this GPT scales attention scores by 1/sqrt(head size) only, as GPT-2 does")
    return GPTConfig(vocab_size=c.vocab_size, context_length=c.n_positions, emb_dim=c.n_embd,
                     num_heads=c.n_head, num_layers=c.n_layer, dropout=c.resid_pdrop,
                     layer_norm_eps=c.layer_norm_epsilon)


def config_to_hf(config: GPTConfig) -> Any:
    """A ``transformers.GPT2Config`` of the same model. Attention dropout is 0 (this GPT has none);
    no special token ids are set (they belong to the tokenizer)."""
    from transformers import GPT2Config

    return GPT2Config(vocab_size=config.vocab_size, n_positions=config.context_length, n_embd=config.emb_dim,
                      n_layer=config.num_layers, n_head=config.num_heads, resid_pdrop=config.dropout,
                      embd_pdrop=config.dropout, attn_pdrop=0.0, layer_norm_epsilon=config.layer_norm_eps,
                      activation_function="gelu_new", bos_token_id=None, eos_token_id=None)
