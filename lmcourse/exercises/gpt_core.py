"""Checkers for the core of Chapter 6 that the reader writes: one KV-cache step of attention, and
the sampling loop of generation (temperature, top-k, an end token, a seeded generator).

The oracles are trusted references, not the reader's code restated: a cached step must equal
the matching row of full causal attention over the whole sequence, computed by PyTorch's
``scaled_dot_product_attention`` (cached decoding equals recomputation); a sampling loop must
draw the same ids as the book's ``DecoderLM.generate`` (built on :mod:`lmcourse.decoding`) on a
tiny GPT for the same seed, and ``temperature=0`` must be greedy.

>>> out, keys, values = _full_attention_step(torch.ones(1, 1, 3, 2), torch.ones(1, 1, 3, 2),
...                                          torch.arange(6.0).view(1, 1, 3, 2), 1)
>>> out.tolist(), keys.shape  # the second query reads the first two values: their mean
([[[[1.0, 2.0]]]], (1, 1, 2, 2))
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from lmcourse.exercises.core import Case, Exercise, register
from lmcourse.gpt import GPT, GPTConfig

# --- gpt.kv_cache_step -----------------------------------------------------------------------


def _full_attention_step(q_all: torch.Tensor, k_all: torch.Tensor, v_all: torch.Tensor,
                         t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What a cached step at position t must give: row t of causal attention over the whole
    sequence (B, H, T, D), and the cache holding positions 0..t."""
    full = F.scaled_dot_product_attention(q_all, k_all, v_all, is_causal=True)  # (B, H, T, D)
    return (full[:, :, t:t + 1].numpy(), k_all[:, :, :t + 1].numpy(), v_all[:, :, :t + 1].numpy())


def _step_case(seed: int, B: int, H: int, T: int, D: int, t: int, label: str) -> Case:
    """A case cut from one whole random sequence; its answer is `_full_attention_step` at t."""
    g = torch.Generator().manual_seed(seed)
    q_all, k_all, v_all = (torch.randn(B, H, T, D, generator=g, dtype=torch.float64) * 2 for _ in range(3))
    args = (q_all[:, :, t:t + 1], k_all[:, :, t:t + 1], v_all[:, :, t:t + 1], k_all[:, :, :t], v_all[:, :, :t])
    return Case(tuple(x.clone() for x in args), label=label)


def _sequence_of(case: Case) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    q, k, v, past_k, past_v = case.args
    t = past_k.shape[-2]
    q_all = torch.cat([torch.zeros_like(past_k), q], dim=-2)  # earlier queries do not matter to row t
    return q_all, torch.cat([past_k, k], dim=-2), torch.cat([past_v, v], dim=-2), t


_STEP_CASES = [
    _step_case(1, 1, 1, 1, 4, 0, "the first token: an empty cache (past of length 0), one head of size 4"),
    _step_case(2, 1, 1, 4, 4, 3, "one head of size 4, 3 cached positions"),
    _step_case(3, 2, 4, 10, 8, 9, "batch 2, 4 heads of size 8, 9 cached positions"),
    _step_case(4, 1, 2, 33, 64, 32, "2 heads of size 64 (the scale matters), 32 cached positions"),
    _step_case(5, 3, 3, 7, 16, 6, "batch 3, 3 heads of size 16, 6 cached positions"),
]


def _oracle_step(q, k, v, past_k, past_v):
    case = Case((q, k, v, past_k, past_v))
    q_all, k_all, v_all, t = _sequence_of(case)
    return _full_attention_step(q_all, k_all, v_all, t)


def _step_wrong(q, k, v, past_k, past_v, *, scale: bool = True, prepend: bool = False, own_key: bool = True,
                keys_axis: bool = True):
    keys = torch.cat([k, past_k] if prepend else [past_k, k], dim=-2)  # (B, H, t + 1, D)
    values = torch.cat([v, past_v] if prepend else [past_v, v], dim=-2)
    read_k, read_v = (keys, values) if own_key or past_k.shape[-2] == 0 else (past_k, past_v)
    scores = q @ read_k.transpose(-2, -1)  # (B, H, 1, D) @ (B, H, D, S) -> (B, H, 1, S)
    if scale:
        scores = scores / math.sqrt(q.shape[-1])
    weights = torch.softmax(scores, dim=-1 if keys_axis else -2)
    return weights @ read_v, keys, values  # (B, H, 1, S) @ (B, H, S, D) -> (B, H, 1, D)


register(Exercise(
    name="gpt.kv_cache_step",
    cases=_STEP_CASES,
    oracle=_oracle_step,
    hint="Append the new key and value to the cache along the positions axis (dim=-2), AFTER the cached ones: "
         "keys = torch.cat([past_k, k], dim=-2), the same for values. Then the new query attends to every key "
         "(no mask is needed: the cache holds only earlier positions and this one): scores q @ keys.transpose(-2, -1) "
         "divided by sqrt(D), a softmax over the keys (the last axis), and the weighted sum of the values. Return "
         "(output, keys, values) as a tuple.",
    nudge="Append k and v after the cached ones (dim=-2), then softmax(q k^T / sqrt(D)) over the keys times the values.",
    wrong_answers={"forgets the 1/sqrt(D) scale": lambda *a: _step_wrong(*a, scale=False),
                   "puts the new key before the cached ones (causal order lost)": lambda *a: _step_wrong(*a, prepend=True),
                   "attends only to the cached keys, not its own": lambda *a: _step_wrong(*a, own_key=False),
                   "softmax over the query axis": lambda *a: _step_wrong(*a, keys_axis=False),
                   "returns a list, not a tuple": lambda *a: list(_step_wrong(*a)),
                   "returns zeros": lambda q, k, v, pk, pv: (torch.zeros_like(q), torch.cat([pk, k], -2),
                                                             torch.cat([pv, v], -2))},
))

# --- gpt.sample_tokens -----------------------------------------------------------------------


class _TinyLM:
    """A tiny random GPT in float64 as a function: ids ``(1, T)`` -> logits ``(1, T, V)``. Copies of
    it are itself (the checker copies every input), so comparing it before and after is cheap."""

    def __init__(self, seed: int, vocab_size: int) -> None:
        config = GPTConfig(vocab_size=vocab_size, context_length=64, emb_dim=32, num_heads=2, num_layers=2,
                           dropout=0.0)
        with torch.random.fork_rng(devices=[]):  # leaves torch's global random numbers as they were
            torch.manual_seed(seed)
            self.model = GPT(config).double().eval()
        with torch.no_grad():
            self.model.decoder.weight.mul_(4.0)  # sharper than at initialisation: greedy and top-k then matter
        self.vocab_size = vocab_size

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.model(ids)

    def __deepcopy__(self, memo: dict) -> _TinyLM:
        return self

    def __repr__(self) -> str:
        return f"<a tiny GPT, V={self.vocab_size}>"


def _generate(model: _TinyLM, prompt: list[int], max_new_tokens: int, temperature: float = 1.0,
              top_k: int | None = None, end_id: int | None = None, seed: int = 0) -> list[int]:
    """The book's own generation (lmcourse.decoding's rules inside DecoderLM.generate)."""
    return model.model.generate(list(prompt), max_new_tokens, temperature=temperature, top_k=top_k,
                                stop_ids=end_id, seed=seed, use_cache=False)


def _sample_wrong(model, prompt, max_new_tokens, temperature=1.0, top_k=None, end_id=None, seed=0, *,
                  use_temperature: bool = True, append: bool = True, reseed: bool = False,
                  keep_end: bool = True, stop: bool = True):
    g = torch.Generator().manual_seed(seed)
    ids, new = list(prompt), []
    for _ in range(max_new_tokens):
        logits = model(torch.tensor([ids]))[0, -1]  # (1, T, V) -> (V,)
        if temperature == 0:
            token = int(logits.argmax())
        else:
            if use_temperature:
                logits = logits / temperature
            if top_k is not None:
                logits = logits.masked_fill(logits < torch.topk(logits, top_k).values[-1], float("-inf"))
            if reseed:
                g = torch.Generator().manual_seed(seed)
            token = int(torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=g))
        if stop and token == end_id and not keep_end:
            break
        new.append(token)
        if append:
            ids.append(token)
        if stop and token == end_id:
            break
    return new


def _sample_then_temperature(model, prompt, max_new_tokens, temperature=1.0, top_k=None, end_id=None, seed=0):
    """Wrong: draws from the model's own distribution and applies the temperature afterwards (to nothing)."""
    return _sample_wrong(model, prompt, max_new_tokens, temperature, top_k, end_id, seed, use_temperature=False)


_LMS = {"small": _TinyLM(0, 12), "larger": _TinyLM(1, 50)}
_SAMPLE_CASES = [
    Case((_LMS["larger"], [3, 1, 4], 12), dict(temperature=1.0, seed=0), label="temperature 1, 12 new tokens, seed 0"),
    Case((_LMS["larger"], [3, 1, 4], 12), dict(temperature=0.5, seed=1), label="temperature 0.5, seed 1"),
    Case((_LMS["larger"], [7], 15), dict(temperature=1.3, top_k=5, seed=2), label="temperature 1.3, top_k 5, seed 2"),
    Case((_LMS["larger"], [2, 7, 1, 8], 10), dict(temperature=0.0), label="temperature 0: greedy, no randomness"),
    Case((_LMS["larger"], [5], 20), dict(temperature=0.8, top_k=1, seed=3), label="top_k 1 (greedy by another road)"),
    Case((_LMS["small"], [0, 1], 30), dict(temperature=1.0, end_id=0, seed=4),
         label="a vocabulary of 12 with end_id 0: stop right after it (kept)"),
    Case((_LMS["small"], [4], 30), dict(temperature=2.0, top_k=6, end_id=6, seed=5),
         label="temperature 2, top_k 6, end_id 6, seed 5"),
    Case((_LMS["larger"], [1, 2], 0), dict(seed=0), label="max_new_tokens 0: nothing"),
]

register(Exercise(
    name="gpt.sample_tokens",
    cases=_SAMPLE_CASES,
    oracle=_generate,
    hint="Make ONE generator, torch.Generator().manual_seed(seed), before the loop. At each step read the whole "
         "sequence so far (prompt plus the tokens drawn), take the logits of the LAST position, and: if temperature "
         "is 0, take the argmax; otherwise divide the logits by the temperature FIRST, then (if top_k) set every "
         "logit below the k-th largest to -inf, softmax, and draw one id with torch.multinomial(probs, 1, "
         "generator=g). Append the id to the sequence and to the output; stop after max_new_tokens ids or right "
         "after end_id (keep it). Return the new ids only, as a list of ints.",
    nudge="One seeded generator; each step: logits of the last position / temperature, top-k, softmax, "
          "torch.multinomial; append the id; stop after end_id (kept).",
    wrong_answers={"samples before applying the temperature": _sample_then_temperature,
                   "does not append the sampled token": lambda *a, **k: _sample_wrong(*a, **k, append=False),
                   "a new generator at every step": lambda *a, **k: _sample_wrong(*a, **k, reseed=True),
                   "drops the end token": lambda *a, **k: _sample_wrong(*a, **k, keep_end=False),
                   "never stops at the end token": lambda *a, **k: _sample_wrong(*a, **k, stop=False),
                   "returns the prompt too": lambda m, p, *a, **k: list(p) + _generate(m, p, *a, **k)},
    rel_tol=0.0, abs_tol=0.0, time_limit=10.0,
))
