"""Decoding rules: how a language model's next-token logits become the next token. Chapter 6
(GPT) explains each rule and measures what it does to the text.

Every rule is a small pure function on a batch of logits ``(B, V)``:

- :func:`apply_repetition_penalty`: make tokens already in the sequence less likely (CTRL);
- :func:`allow_only`: a format constraint, only the tokens of a given set (digits, say) can come next;
- :func:`apply_temperature`: sharpen (``T < 1``) or flatten (``T > 1``) the distribution;
- :func:`top_k_filter`: keep the ``k`` most likely tokens;
- :func:`top_p_filter`: keep the smallest set of most likely tokens whose mass reaches ``p``;
- :func:`greedy` and :func:`sample`: pick the token.

:func:`next_token` applies them in the order Hugging Face ``transformers`` does (repetition
penalty, the allowed set, temperature, top-k, top-p, then sample), as :class:`DecodingSettings` says;
``temperature=0`` means greedy decoding. A filtered-out token gets the logit ``-inf``, so its
probability after the softmax is exactly 0.

Shape letters: ``B`` batch (sequences decoded side by side), ``V`` vocabulary, ``S`` tokens
so far.

The protocol every model's ``generate(ids, max_new_tokens, *, temperature=1.0, top_k=None,
top_p=None, repetition_penalty=1.0, allowed_ids=None, stop_ids=None, seed=0, use_cache=True,
on_token=None)`` follows is built from
:func:`prompt_batch`, :func:`check_stop_ids`, :func:`seeded_generator` and :func:`collect_tokens`,
so that the recurrent models, GPT and LLaMA take the same arguments with the same meaning.

Left out: beam search, typical and min-p sampling, contrastive search, and the frequency and
presence penalties of hosted APIs (additive rather than CTRL's multiplicative penalty).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from lmcourse.token_ids import check_batch_ids

__all__ = ["DecodingSettings", "allow_only", "apply_temperature", "top_k_filter", "top_p_filter",
           "apply_repetition_penalty", "greedy", "sample", "next_token",
           "prompt_batch", "check_stop_ids", "seeded_generator", "collect_tokens"]


def _check_logits(logits: Any) -> None:
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise TypeError(f"logits must be a floating-point tensor (B, V), got "
                        f"{logits.dtype if isinstance(logits, torch.Tensor) else type(logits).__name__}")
    if logits.dim() != 2:
        raise ValueError(f"logits must be (B, V): one row of next-token scores per sequence, got shape "
                         f"{tuple(logits.shape)}; for one sequence use logits[None]")


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _check_temperature(logits: Any, temperature: Any) -> None:
    _check_logits(logits)
    if not _is_number(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a number > 0, got {temperature!r}; for T = 0 use greedy()")


def _check_top_k(logits: Any, k: Any) -> None:
    _check_logits(logits)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an int >= 1, got {k!r}")


def _check_top_p(logits: Any, p: Any) -> None:
    _check_logits(logits)
    if not _is_number(p) or not 0 < p <= 1:
        raise ValueError(f"p must be in (0, 1], got {p!r}")


def _check_penalty(logits: Any, previous_ids: Any, penalty: Any) -> None:
    _check_logits(logits)
    if not _is_number(penalty) or penalty <= 0:
        raise ValueError(f"penalty must be a number > 0, got {penalty!r}")
    if not isinstance(previous_ids, torch.Tensor) or previous_ids.dtype != torch.long \
            or previous_ids.dim() != 2 or previous_ids.shape[0] != logits.shape[0]:
        got = (f"{previous_ids.dtype} of shape {tuple(previous_ids.shape)}" if isinstance(previous_ids, torch.Tensor)
               else type(previous_ids).__name__)
        raise ValueError(f"previous_ids must be a LongTensor (B={logits.shape[0]}, S) of the tokens so far, got {got}")


def _check_allowed_ids(allowed_ids: Any) -> tuple[int, ...]:
    """`allowed_ids` as a sorted tuple of distinct ids; the range is checked against the logits."""
    if isinstance(allowed_ids, torch.Tensor):
        allowed_ids = allowed_ids.tolist()
    if isinstance(allowed_ids, (str, bytes, Mapping)) or not isinstance(allowed_ids, Iterable):
        raise TypeError(f"allowed_ids must be a collection of token ids (a set, list or range of ints), "
                        f"got {type(allowed_ids).__name__}: {allowed_ids!r:.60}")
    ids = list(allowed_ids)
    bad = [i for i in ids if isinstance(i, bool) or not isinstance(i, int) or i < 0]
    if bad:
        raise ValueError(f"allowed_ids must hold token ids (ints >= 0), got {bad[0]!r} among them")
    if not ids:
        raise ValueError("allowed_ids is empty: no token could ever be chosen; pass None to allow every token")
    return tuple(sorted(set(ids)))


@dataclass(frozen=True)
class DecodingSettings:
    """How :func:`next_token` picks a token; the values are checked here.

    >>> DecodingSettings(temperature=0.7, top_p=0.9)
    DecodingSettings(temperature=0.7, top_k=None, top_p=0.9, repetition_penalty=1.0)
    """

    temperature: float = 1.0  # 0: greedy; < 1 sharper, > 1 flatter than the model's distribution
    top_k: int | None = None  # keep the k most likely tokens; None: all
    top_p: float | None = None  # keep the smallest set whose probability reaches p; None or 1: all
    repetition_penalty: float = 1.0  # > 1 discourages tokens already in the sequence; 1: off
    # only these ids can be chosen (kept as a sorted tuple); None: all. Left out of the repr: it can hold thousands
    allowed_ids: Collection[int] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not _is_number(self.temperature) or self.temperature < 0:
            raise ValueError(f"temperature must be a number >= 0 (0 means greedy), got {self.temperature!r}")
        if self.top_k is not None and (isinstance(self.top_k, bool) or not isinstance(self.top_k, int)
                                       or self.top_k < 1):
            raise ValueError(f"top_k must be None (off) or an int >= 1, got {self.top_k!r}")
        if self.top_p is not None and (not _is_number(self.top_p) or not 0 < self.top_p <= 1):
            raise ValueError(f"top_p must be in (0, 1] (1 keeps every token), got {self.top_p!r}")
        if not _is_number(self.repetition_penalty) or self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be a number > 0 (1 is off, > 1 discourages "
                             f"repeats), got {self.repetition_penalty!r}")
        if self.allowed_ids is not None:
            object.__setattr__(self, "allowed_ids", _check_allowed_ids(self.allowed_ids))

    @property
    def is_greedy(self) -> bool:
        """Temperature 0: always the most likely token."""
        return self.temperature == 0


def allow_only(logits: torch.Tensor, allowed_ids: Sequence[int]) -> torch.Tensor:
    """Set every logit outside `allowed_ids` to ``-inf``: a format constraint (answer with digits
    only, one of a list of labels), as ``transformers``' ``prefix_allowed_tokens_fn`` does.

    Applied before temperature, top-k and top-p, so they share out the probability among the
    allowed tokens only, and greedy decoding takes the most likely allowed token.

    >>> allow_only(torch.tensor([[3.0, 1.0, 2.0]]), [1, 2]).tolist()
    [[-inf, 1.0, 2.0]]
    """
    _check_logits(logits)
    return _mask_outside(logits, _check_allowed_ids(allowed_ids))


def _mask_outside(logits: torch.Tensor, ids: tuple[int, ...]) -> torch.Tensor:
    """:func:`allow_only` for ids already checked and sorted (as :class:`DecodingSettings` keeps them),
    so that generation does not check the set again at every token."""
    V = logits.shape[-1]
    if ids[-1] >= V:
        raise ValueError(f"allowed_ids holds the id {ids[-1]}, but the vocabulary has {V} ids (0 to {V - 1})")
    keep = torch.zeros(V, dtype=torch.bool, device=logits.device)
    keep[list(ids)] = True  # (V,): True for an allowed id, the same for every row
    return logits.masked_fill(~keep, float("-inf"))  # (B, V)


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``logits / T``, so that ``softmax(logits / T)`` is the model's distribution raised to the
    power ``1/T`` and renormalised: the temperature of a Boltzmann distribution (Ackley, Hinton &
    Sejnowski, 1985), the usual reference for sampling with temperature.

    ``T -> 0`` puts all mass on the most likely token (greedy), ``T = 1`` changes nothing and
    ``T -> inf`` approaches the uniform distribution.

    >>> apply_temperature(torch.tensor([[2.0, 1.0]]), 0.5).tolist()
    [[4.0, 2.0]]
    """
    _check_temperature(logits, temperature)
    return logits / temperature


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the `k` largest logits of each row and set the others to ``-inf`` (Fan, Lewis &
    Dauphin, 2018).

    Exactly `k` survive: among equal logits at the boundary the lower id is kept (a stable sort),
    whereas ``transformers``' ``TopKLogitsWarper`` keeps every logit equal to the k-th one.

    >>> top_k_filter(torch.tensor([[1.0, 3.0, 2.0, 3.0]]), 2).tolist()
    [[-inf, 3.0, -inf, 3.0]]
    >>> top_k_filter(torch.tensor([[1.0, 2.0, 2.0]]), 2).tolist()  # a tie at the boundary: id 1 wins
    [[-inf, 2.0, 2.0]]
    """
    _check_top_k(logits, k)
    if k >= logits.shape[-1]:
        return logits
    order = torch.sort(logits, dim=-1, descending=True, stable=True).indices  # (B, V): best first
    keep = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, order[:, :k], True)  # (B, V)
    return logits.masked_fill(~keep, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filtering (Holtzman et al., 2020): keep the smallest set of most likely tokens whose
    total probability reaches `p`; set the others to ``-inf``.

    Sorted from most to least likely, a token is kept if the tokens before it hold less than `p`
    of the mass, so the most likely token is always kept and ``p = 1`` keeps every token. Equal
    probabilities are ordered by id (lower first). ``transformers``' ``TopPLogitsWarper`` keeps the
    same set, up to ties and rounding at the boundary.

    >>> probs = torch.tensor([[0.5, 0.25, 0.125, 0.125]])
    >>> top_p_filter(probs.log(), 0.75).exp().tolist()  # 0.5 + 0.25 reaches 0.75
    [[0.5, 0.25, 0.0, 0.0]]
    >>> top_p_filter(probs.log(), 0.76).exp().tolist()  # needs one 0.125 more: the lower id
    [[0.5, 0.25, 0.125, 0.0]]
    """
    _check_top_p(logits, p)
    if p == 1:
        return logits
    probs = torch.softmax(logits, dim=-1)  # (B, V)
    sorted_probs, order = torch.sort(probs, dim=-1, descending=True, stable=True)  # (B, V) each
    mass = sorted_probs.cumsum(dim=-1)  # (B, V): mass of each token and the more likely ones
    mass_before = torch.cat([torch.zeros_like(mass[:, :1]), mass[:, :-1]], dim=-1)  # (B, V): without it
    keep_sorted = mass_before < p  # (B, V); the top token has 0 before it, so it is always kept
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)  # back to id order
    return logits.masked_fill(~keep, float("-inf"))


def apply_repetition_penalty(logits: torch.Tensor, previous_ids: torch.Tensor, penalty: float) -> torch.Tensor:
    """The repetition penalty of CTRL (Keskar et al., 2019) in the form ``transformers`` uses: for
    every token id in `previous_ids` ``(B, S)``, divide its logit by `penalty` if positive,
    multiply it by `penalty` if negative. (CTRL divides every such logit, which raises a negative
    one.) With ``penalty > 1`` a repeat becomes less likely either way.

    A token counts once however often it occurred; ``penalty = 1`` changes nothing.

    >>> apply_repetition_penalty(torch.tensor([[2.0, -2.0, 2.0]]), torch.tensor([[0, 1, 1]]), 2.0).tolist()
    [[1.0, -4.0, 2.0]]
    """
    _check_penalty(logits, previous_ids, penalty)
    seen = logits.gather(-1, previous_ids)  # (B, S): the logits of tokens already in the sequence
    seen = torch.where(seen < 0, seen * penalty, seen / penalty)
    return logits.scatter(-1, previous_ids, seen)  # (B, V)


def greedy(logits: torch.Tensor) -> torch.Tensor:
    """The most likely token of each row ``(B, V) -> (B,)``; on a tie, the lowest id.

    >>> greedy(torch.tensor([[0.1, 2.0, 2.0], [5.0, 0.0, 1.0]])).tolist()
    [1, 0]
    """
    _check_logits(logits)
    return logits.argmax(dim=-1)


def sample(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One token per row ``(B, V) -> (B,)``, drawn from ``softmax(logits)``; a ``-inf`` logit is
    never drawn. The same `generator` state gives the same tokens.

    >>> g = torch.Generator().manual_seed(0)
    >>> sample(torch.tensor([[0.0, float("-inf")], [float("-inf"), 0.0]]), g).tolist()
    [0, 1]
    """
    _check_logits(logits)
    probs = torch.softmax(logits, dim=-1)  # (B, V)
    return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(-1)  # (B, 1) -> (B,)


def next_token(logits: torch.Tensor, previous_ids: torch.Tensor, settings: DecodingSettings,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """The next token of each sequence ``(B,)`` from its logits ``(B, V)`` and the tokens so far
    ``(B, S)``: repetition penalty, the allowed set, then greedy if ``temperature == 0``, else
    temperature, top-k, top-p and a sample.

    >>> logits = torch.tensor([[1.0, 3.0, 2.0]])
    >>> next_token(logits, torch.tensor([[1]]), DecodingSettings(temperature=0)).tolist()
    [1]
    >>> next_token(logits, torch.tensor([[1]]), DecodingSettings(temperature=0, repetition_penalty=2.0)).tolist()
    [2]
    >>> next_token(logits, torch.tensor([[1]]), DecodingSettings(temperature=0, allowed_ids={0, 2})).tolist()
    [2]
    """
    if not isinstance(settings, DecodingSettings):
        raise TypeError(f"settings must be a DecodingSettings, got {type(settings).__name__}")
    if settings.repetition_penalty != 1:
        logits = apply_repetition_penalty(logits, previous_ids, settings.repetition_penalty)
    if settings.allowed_ids is not None:
        logits = _mask_outside(logits, settings.allowed_ids)  # checked and sorted when settings was made
    if settings.is_greedy:
        return greedy(logits)
    logits = apply_temperature(logits, settings.temperature)
    if settings.top_k is not None:
        logits = top_k_filter(logits, settings.top_k)
    if settings.top_p is not None:
        logits = top_p_filter(logits, settings.top_p)
    return sample(logits, generator)


# --- the shared parts of generate() ----------------------------------------------------------

def prompt_batch(ids: Any, vocab_size: int) -> tuple[torch.Tensor, bool]:
    """`ids` as a batch ``(B, T)``, and whether it was one prompt (a list of ints or ``(T,)``).

    >>> prompt_batch([1, 2], 10)
    (tensor([[1, 2]]), True)
    """
    if not isinstance(ids, torch.Tensor):
        if isinstance(ids, (str, bytes)) or not isinstance(ids, Sequence) or \
                not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise TypeError(f"ids must be a LongTensor (T,) or (B, T), or a list of ints, got {ids!r:.80}")
        ids = torch.tensor(list(ids), dtype=torch.long)
    single = ids.dim() == 1
    batch = ids[None] if single else ids  # (T,) -> (1, T)
    check_batch_ids("ids", batch, vocab_size)
    return batch, single


def check_stop_ids(stop_ids: Any, vocab_size: int) -> set[int]:
    """The set of ids that end a sequence: `stop_ids` is None, one id, or a list of ids."""
    if stop_ids is None:
        return set()
    stops = [stop_ids] if isinstance(stop_ids, int) else stop_ids
    if isinstance(stops, (str, bytes)) or not isinstance(stops, Sequence) or \
            not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < vocab_size for i in stops):
        raise ValueError(f"stop_ids must be None, an id or a list of ids in [0, {vocab_size}), got {stop_ids!r:.80}")
    return set(stops)


def seeded_generator(seed: int | torch.Generator | None, device: torch.device) -> torch.Generator | None:
    """A new generator on `device` seeded with the int `seed`; a given generator or None (torch's
    global one) as it is. The same int gives the same samples."""
    if seed is None or isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, a torch.Generator or None, got {seed!r}")
    return torch.Generator(device=device).manual_seed(seed)


def collect_tokens(steps: Iterable[torch.Tensor], batch_size: int, max_new_tokens: int,
                   stops: set[int], on_token: Callable[[int, int], None] | None = None) -> list[list[int]]:
    """Take tokens ``(B,)`` from `steps` until each sequence has `max_new_tokens` of them or has
    produced one of `stops` (kept); a finished sequence takes no more. `on_token(row, id)` is
    called for each id taken, as soon as it is taken (streaming).

    >>> collect_tokens(iter(torch.tensor([[1, 5], [2, 6], [3, 7]])), 2, 3, stops={2})
    [[1, 2], [5, 6, 7]]
    """
    out: list[list[int]] = [[] for _ in range(batch_size)]
    done = [False] * batch_size
    for _, token in zip(range(max_new_tokens), steps):
        for row, t in enumerate(token.tolist()):
            if not done[row]:
                out[row].append(t)
                done[row] = t in stops
                if on_token is not None:
                    on_token(row, t)
        if all(done):
            break
    return out
