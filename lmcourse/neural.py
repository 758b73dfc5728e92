"""What every neural language model in the book shares: the output layer, the model protocol
(``nll``, ``log_probs``), sampling, and the checks on token tensors.

Chapter 3a (Word embeddings and a feed-forward language model) introduces the protocol with the feed-forward model
of Bengio et al. (2003) (:mod:`lmcourse.feedforward`) and reuses it for the recurrent models
(:mod:`lmcourse.rnn`); the training loop (:mod:`lmcourse.train`) relies on nothing else. A
subclass turns token ids into *features*, one vector per position, and :class:`NeuralLM` turns
features into next-token distributions:

- ``nll(inputs (T, B), targets (T, B), state) -> (nll (T, B), state)``: the negative
  log-likelihood in nats of every target given its prefix, and the state to pass to the next
  chunk of the same streams (``None`` starts a stream);
- ``log_probs(inputs (T, B), state) -> (log_probs (T, B, V), state)``: full distributions;
- ``generate(ids, max_new_tokens, *, temperature, top_k, top_p, repetition_penalty, allowed_ids,
  stop_ids, seed, use_cache, on_token)``: sampling with a seeded generator and the decoding rules of
  :mod:`lmcourse.decoding` (Chapter 6); GPT and LLaMA take the same arguments.

The output layer is either a full softmax (a linear decoder, ``V x F`` weights) or the
adaptive softmax of Grave et al. (2017), ``nn.AdaptiveLogSoftmaxWithLoss``: frequent words
in a full-size head, rare words in tail clusters with smaller projections. Both are proper
distributions over the whole vocabulary; the adaptive one is several times cheaper on a CPU
when the vocabulary is large (ids must then be sorted by frequency, as :mod:`lmcourse.text`
builds them).

Shape letters: ``T`` time, ``B`` batch, ``V`` vocabulary, ``F`` features per position (the
hidden size of an RNN; more for the feed-forward model with direct connections).

Left out: sampled softmax and noise-contrastive estimation (they train an unnormalised
model), and beam search.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lmcourse._checks import check_int
from lmcourse._torch import eval_mode, model_device
from lmcourse.decoding import (DecodingSettings, check_stop_ids, collect_tokens, next_token, prompt_batch,
                               seeded_generator)

__all__ = ["NeuralLM", "check_sizes", "check_adaptive_cutoffs", "check_output_layer", "check_tokens", "ADAPTIVE_DIV_VALUE"]

ADAPTIVE_DIV_VALUE = 4.0  # each tail cluster's projection is 4x narrower than the previous one


def check_sizes(config: Any, names: Sequence[str]) -> None:
    """Check that the fields `names` of a model config are positive ints and its ``dropout`` is in
    [0, 1); raise a ValueError naming the field otherwise."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not 0 <= config.dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {config.dropout!r}")


def check_adaptive_cutoffs(cutoffs: Sequence[int] | None, vocab_size: int) -> tuple[int, ...] | None:
    """Validate adaptive-softmax cutoffs and return them as a tuple (``None`` stays ``None``).

    Cutoffs split the ids ``0..V-1`` (most frequent first) into a head ``[0, c1)`` and tail
    clusters ``[c1, c2)``, ..., ``[ck, V)``, so they must be increasing and below ``V``.

    >>> check_adaptive_cutoffs([2000, 6000], 15000)
    (2000, 6000)
    >>> check_adaptive_cutoffs((6000, 2000), 15000)
    Traceback (most recent call last):
    ...
    ValueError: adaptive_cutoffs must be strictly increasing positive ints, each below vocab_size=15000, e.g. (2000, 6000) for 15,000 words; got (6000, 2000)
    """
    if cutoffs is None:
        return None
    hint = (f"adaptive_cutoffs must be strictly increasing positive ints, each below "
            f"vocab_size={vocab_size}, e.g. (2000, 6000) for 15,000 words")
    if isinstance(cutoffs, (str, bytes)) or not isinstance(cutoffs, Sequence):
        raise TypeError(f"{hint}; got {cutoffs!r}")
    cutoffs = tuple(cutoffs)
    if not cutoffs:
        raise ValueError(f"{hint}; got an empty tuple (use None for the full softmax)")
    ok = all(isinstance(c, int) and not isinstance(c, bool) for c in cutoffs) and \
        all(a < b for a, b in zip((0,) + cutoffs, cutoffs + (vocab_size,)))
    if not ok:
        raise ValueError(f"{hint}; got {cutoffs!r}")
    return cutoffs


def check_output_layer(config: Any, width: str) -> None:
    """Check a model config's output layer: validate ``adaptive_cutoffs`` (stored back as a tuple)
    and refuse ``tie_weights`` together with the adaptive softmax. `width` names the feature size
    in the message (``"H"``, ``"C"``)."""
    cutoffs = check_adaptive_cutoffs(config.adaptive_cutoffs, config.vocab_size)
    object.__setattr__(config, "adaptive_cutoffs", cutoffs)  # lists (from JSON) -> tuple
    if getattr(config, "tie_weights", False) and cutoffs is not None:
        raise ValueError(f"tie_weights=True cannot be combined with adaptive_cutoffs: the adaptive "
                         f"softmax has no single V x {width} output matrix to share. Set "
                         f"adaptive_cutoffs=None or tie_weights=False")


def check_tokens(name: str, x: Any, vocab_size: int, shape: tuple[int, ...] | None = None) -> None:
    """Raise a clear error unless `x` is a 2-D LongTensor of ids in ``[0, vocab_size)``
    (of exactly `shape` if given)."""
    expected = "(T, B)" if shape is None else str(tuple(shape))
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a LongTensor of token ids of shape {expected}, "
                        f"got {type(x).__name__}")
    if x.dtype != torch.long:
        raise TypeError(f"{name} must be a LongTensor of token ids of shape {expected}, "
                        f"got dtype {x.dtype}")
    if x.dim() != 2 or (shape is not None and tuple(x.shape) != tuple(shape)):
        raise ValueError(f"{name} must have shape {expected} (time first, then batch), "
                         f"got {tuple(x.shape)}")
    if x.numel() and (int(x.min()) < 0 or int(x.max()) >= vocab_size):
        raise ValueError(f"{name} holds ids outside [0, {vocab_size}): min {int(x.min())}, "
                         f"max {int(x.max())}")


class NeuralLM(nn.Module):
    """Base class: features from a subclass, next-token distributions from here.

    A subclass sets ``self.config`` (a dataclass with ``vocab_size``), calls
    :meth:`_build_output` once in its ``__init__``, and defines :meth:`features`.
    """

    config: Any
    decoder: nn.Linear | None
    adaptive: nn.AdaptiveLogSoftmaxWithLoss | None

    def _build_output(self, in_features: int, vocab_size: int,
                      adaptive_cutoffs: tuple[int, ...] | None) -> None:
        """A linear decoder ``F -> V`` (full softmax), or an adaptive softmax if cutoffs are given."""
        self.decoder, self.adaptive = None, None
        if adaptive_cutoffs is None:
            self.decoder = nn.Linear(in_features, vocab_size)
        else:
            smallest = int(in_features // ADAPTIVE_DIV_VALUE ** len(adaptive_cutoffs))
            if smallest < 1:
                raise ValueError(
                    f"{in_features} features are too few for {len(adaptive_cutoffs)} adaptive-softmax "
                    f"tail cluster(s): cluster k projects to {in_features} / {ADAPTIVE_DIV_VALUE:g}**k "
                    f"units, so the last would have none. Use fewer cutoffs or at least "
                    f"{int(ADAPTIVE_DIV_VALUE ** len(adaptive_cutoffs))} features")
            self.adaptive = nn.AdaptiveLogSoftmaxWithLoss(
                in_features, vocab_size, list(adaptive_cutoffs), div_value=ADAPTIVE_DIV_VALUE)

    def features(self, inputs: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """Token ids ``(T, B)`` -> features ``(T, B, F)`` and the next state. Subclasses define it."""
        raise NotImplementedError

    def check_state(self, state: Any, batch_size: int) -> None:
        """Raise a clear error if `state` cannot continue streams of this batch size."""

    def _features(self, inputs: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        check_tokens("inputs", inputs, self.config.vocab_size)
        if state is not None:
            self.check_state(state, inputs.shape[1])
        return self.features(inputs, state)

    def nll(self, inputs: torch.Tensor, targets: torch.Tensor, state: Any = None
            ) -> tuple[torch.Tensor, Any]:
        """Negative log-likelihood in nats of each target given its prefix: ``(T, B)``.

        `targets` is ``(T, B)``, or ``(T*B,)`` as :func:`lmcourse.data.get_batch` returns it.
        `state` is ``None`` at the start of the streams, else what the previous call returned.
        """
        T, B = inputs.shape if isinstance(inputs, torch.Tensor) and inputs.dim() == 2 else (0, 0)
        if isinstance(targets, torch.Tensor) and targets.dim() == 1 and targets.numel() == T * B:
            targets = targets.view(T, B)  # (T*B,) -> (T, B)
        feats, state = self._features(inputs, state)  # (T, B, F)
        check_tokens("targets", targets, self.config.vocab_size, shape=(T, B))
        flat = feats.reshape(T * B, -1)  # (T, B, F) -> (T*B, F)
        if self.adaptive is not None:
            out = -self.adaptive(flat, targets.reshape(-1)).output  # (T*B,)
        else:
            logits = self.decoder(flat)  # (T*B, F) @ (F, V) -> (T*B, V)
            out = F.cross_entropy(logits, targets.reshape(-1), reduction="none")  # (T*B,)
        return out.view(T, B), state

    def log_probs(self, inputs: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        """Next-token log-distributions after every position: ``(T, B, V)``, and the new state."""
        feats, state = self._features(inputs, state)  # (T, B, F)
        T, B, _ = feats.shape
        flat = feats.reshape(T * B, -1)  # (T, B, F) -> (T*B, F)
        if self.adaptive is not None:
            out = self.adaptive.log_prob(flat)  # (T*B, V)
        else:
            out = F.log_softmax(self.decoder(flat), dim=-1)  # (T*B, F) @ (F, V) -> (T*B, V)
        return out.view(T, B, -1), state  # (T*B, V) -> (T, B, V)

    @property
    def num_parameters(self) -> int:
        """Number of trainable numbers; a tied matrix counts once."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    @property
    def context_window(self) -> int | None:
        """The most tokens one prediction reads; None: no limit (an RNN reads its whole past)."""
        return None

    def next_tokens(self, ids: torch.Tensor, settings: DecodingSettings, generator: torch.Generator | None,
                    use_cache: bool) -> Iterator[torch.Tensor]:
        """Yield the next token of every sequence ``(B,)`` after `ids` ``(B, T)``, step after step.

        With `use_cache` the model's state (the RNN's hidden state, the last tokens read) is carried
        and each step reads only the newest token; without it, each step re-reads the sequence (its
        last `context_window` tokens) from no state. Both give the same tokens."""
        seen = ids  # (B, S): every id so far, for the repetition penalty
        x, state = ids.T, None  # (T, B): time first, as the protocol reads it
        while True:
            if not use_cache:
                window = seen if self.context_window is None else seen[:, -self.context_window:]
                x, state = window.T, None  # (B, S) -> (S, B)
            logp, state = self.log_probs(x, state)  # (T, B, V)
            token = next_token(logp[-1], seen, settings, generator)  # (B, V) -> (B,)
            yield token
            x = token[None]  # (B,) -> (1, B)
            seen = torch.cat([seen, token[:, None]], dim=1)  # (B, S) -> (B, S + 1)

    @torch.no_grad()
    def generate(self, ids: torch.Tensor | Sequence[int], max_new_tokens: int, *, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, repetition_penalty: float = 1.0,
                 allowed_ids: Collection[int] | None = None, stop_ids: int | Sequence[int] | None = None,
                 seed: int | torch.Generator | None = 0, use_cache: bool = True,
                 on_token: Callable[[int], None] | None = None) -> list[int] | list[list[int]]:
        """Sample a continuation of `ids`; return the new ids only: a list for one prompt (a list of
        ints or ``(T,)``), a list of lists for a batch ``(B, T)`` (batch first, as GPT's).

        Each step picks the next id from the model's distribution with the rules of
        :mod:`lmcourse.decoding` (:func:`~lmcourse.decoding.next_token`): repetition penalty, only
        `allowed_ids` (None: every id), temperature (``0`` takes the most likely id), `top_k`,
        `top_p`, then a sample. The same `seed` gives the same ids (a ``torch.Generator`` is used as
        it is; ``None``: torch's global one). A sequence stops after `max_new_tokens` ids or right
        after one of `stop_ids` (included). ``use_cache=False`` re-reads the sequence at every step:
        slower, same ids. `on_token` (one prompt only) is called with each new id as soon as it is
        chosen, to stream the output. Runs in eval mode (no dropout) and restores the previous mode
        afterwards.
        """
        settings = DecodingSettings(temperature=temperature, top_k=top_k, top_p=top_p,
                                    repetition_penalty=repetition_penalty, allowed_ids=allowed_ids)
        batch, single = prompt_batch(ids, self.config.vocab_size)
        if on_token is not None and not single:
            raise ValueError("on_token streams the ids of one prompt; for a batch, generate without it")
        check_int("max_new_tokens", max_new_tokens, 0)
        stops = check_stop_ids(stop_ids, self.config.vocab_size)
        device = model_device(self)
        generator = seeded_generator(seed, device)
        with eval_mode(self):
            steps = self.next_tokens(batch.to(device), settings, generator, use_cache)
            out = collect_tokens(steps, batch.shape[0], max_new_tokens, stops,
                                 None if on_token is None else lambda _row, t: on_token(t))
        return out[0] if single else out
