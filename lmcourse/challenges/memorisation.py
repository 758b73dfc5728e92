"""Canaries and exposure (Carlini et al., 2019, "The Secret Sharer"). Chapter 11 (Challenges) explains it.

To measure how much a model memorises, plant a *canary* in its training text: a sentence with a
random secret, ``"the secret number is 281265017"`` (:func:`make_canary`, :func:`insert_canary`),
repeated a chosen number of times. After training, score the canary's prefix followed by the true
secret and by many random alternatives of the same format (:func:`candidate_secrets`) and rank the
true one among them (:func:`canary_rank`). A model that never saw the canary ranks it somewhere in
the middle; one that memorised it ranks it first. The *exposure* (:func:`exposure`) turns the rank
into bits: ``log2(number of candidates) - log2(rank)``, 0 for the last place and ``log2`` of the
candidate count for the first.

Scoring: ``canary_rank`` calls ``score(texts)``, which must return one log-likelihood per text
(higher = more likely). With one of the book's decoders and a tokenizer,
:func:`lmcourse.dpo.response_logprobs` sums the log-probabilities of every token after the first
when each example's labels are its ids::

    score = lambda texts: response_logprobs(model, [(ids, ids) for ids in map(tokenizer.encode, texts)],
                                            batch_size=64).numpy()

Left out: Carlini et al.'s estimate of exposure over the whole space of secrets (they fit a skew-normal
distribution to the scores, which lets exposure exceed ``log2`` of the candidates scored), secrets of
other formats than digit strings, and extracting a secret by search instead of ranking it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from lmcourse._checks import check_int, check_str

__all__ = ["Canary", "make_canary", "candidate_secrets", "insert_canary", "canary_rank", "exposure"]

MAX_DIGITS = 18  # secrets are drawn as int64s: at most 18 decimal digits


@dataclass(frozen=True)
class Canary:
    """A sentence planted in training text: a fixed `prefix` followed by a random `secret`."""

    prefix: str  # the context the model is later prompted with, e.g. "the secret number is "
    secret: str  # a string of decimal digits, e.g. "281265017"

    @property
    def text(self) -> str:
        """The whole canary sentence, as it is inserted: ``prefix + secret``."""
        return self.prefix + self.secret


def _check_secret(secret: str) -> None:
    check_str(secret, "candidate_secrets")
    if not secret or len(secret) > MAX_DIGITS or not all(c in "0123456789" for c in secret):
        raise ValueError(f"secret must be a string of 1 to {MAX_DIGITS} decimal digits, got {secret!r:.60}")


def make_canary(seed: int, digits: int = 9, prefix: str = "the secret number is ") -> Canary:
    """A canary with a secret of `digits` random decimal digits, drawn with a numpy Generator seeded by `seed`.

    >>> canary = make_canary(seed=0, digits=4)
    >>> canary.prefix, len(canary.secret), canary.text == canary.prefix + canary.secret
    ('the secret number is ', 4, True)
    """
    check_int("seed", seed, 0)
    check_int("digits", digits, 1)
    if digits > MAX_DIGITS:
        raise ValueError(f"digits must be at most {MAX_DIGITS}, got {digits}")
    check_str(prefix, "make_canary")
    if "\n" in prefix:
        raise ValueError("the canary's prefix must not hold a line break: a canary is inserted as one line")
    value = int(np.random.default_rng(seed).integers(0, 10 ** digits))
    return Canary(prefix, f"{value:0{digits}d}")


def candidate_secrets(secret: str, num_candidates: int, seed: int = 0) -> list[str]:
    """`num_candidates` distinct secrets of the format of `secret` (as many digits), `secret` among them
    exactly once at a random place, the others drawn uniformly without replacement.

    >>> candidates = candidate_secrets("042", 5, seed=0)
    >>> len(candidates), len(set(candidates)), candidates.count("042"), {len(c) for c in candidates}
    (5, 5, 1, {3})
    """
    _check_secret(secret)
    check_int("seed", seed, 0)
    space = 10 ** len(secret)
    check_int("num_candidates", num_candidates, 1)
    if num_candidates > space:
        raise ValueError(f"there are only {space} secrets of {len(secret)} digits, asked for {num_candidates}")
    rng = np.random.default_rng(seed)
    others = rng.choice(space - 1, size=num_candidates - 1, replace=False)  # values of the other secrets ...
    others = others + (others >= int(secret))  # ... skipping the true one: 0..space-1 without it
    values = np.insert(others, rng.integers(0, num_candidates), int(secret))
    return [f"{int(v):0{len(secret)}d}" for v in values]


def insert_canary(text: str, canary: Canary | str, repetitions: int, seed: int = 0) -> str:
    """`text` with the canary sentence inserted `repetitions` times as a line of its own, each copy at
    a random line boundary (before the first line, between two lines, or after the last), drawn with
    a numpy Generator seeded by `seed`; copies may land side by side. Every original line is kept
    as it was: deleting the inserted lines gives back `text` exactly.

    >>> insert_canary("one\\ntwo\\n", "CANARY", repetitions=2, seed=0).splitlines()
    ['one', 'CANARY', 'two', 'CANARY']
    """
    check_str(text, "insert_canary")
    line = canary.text if isinstance(canary, Canary) else check_str(canary, "insert_canary")
    if "\n" in line or not line:
        raise ValueError(f"the canary must be one non-empty line without a line break, got {line!r:.60}")
    check_int("repetitions", repetitions, 0)
    check_int("seed", seed, 0)
    trailing = "\n" if text.endswith("\n") else ""
    lines = text[:len(text) - len(trailing)].split("\n") if text else []
    slots = np.random.default_rng(seed).integers(0, len(lines) + 1, size=repetitions)  # slot i: before line i
    counts = np.bincount(slots, minlength=len(lines) + 1)  # (len(lines) + 1,) copies per slot
    out: list[str] = []
    for i, count in enumerate(counts):
        out += [line] * int(count) + lines[i:i + 1]
    return "\n".join(out) + trailing


def canary_rank(score: Callable[[list[str]], np.ndarray], prefix: str, secret: str,
                candidates: Sequence[str]) -> int:
    """The rank of `secret` among `candidates` (1 = the most likely) by ``score(texts)``, which returns
    the log-likelihood of each text ``prefix + candidate`` (higher = more likely); `score` is called
    once, with every text. Ties count against the secret: it ranks below every candidate whose score
    equals its own.

    >>> scores = {"the pin is 11": -3.0, "the pin is 42": -1.0, "the pin is 77": -1.0}
    >>> canary_rank(lambda texts: np.array([scores[t] for t in texts]), "the pin is ", "42", ["11", "42", "77"])
    2
    """
    check_str(prefix, "canary_rank")
    check_str(secret, "canary_rank")
    candidates = list(candidates)
    if not all(isinstance(c, str) for c in candidates) or candidates.count(secret) != 1:
        raise ValueError(f"candidates must be strings holding the secret exactly once, got {len(candidates)} "
                         f"candidates with the secret {candidates.count(secret)} times")
    scores = np.asarray(score([prefix + c for c in candidates]), dtype=float)
    if scores.shape != (len(candidates),) or np.isnan(scores).any() or (scores == math.inf).any():
        raise ValueError(f"score must return one log-likelihood (a number, not nan or +inf) per text: "
                         f"expected shape ({len(candidates)},), got {scores.shape}")
    true = scores[candidates.index(secret)]
    return int(np.sum(scores >= true))  # the secret itself and every candidate at least as likely


def exposure(rank: int, num_candidates: int) -> float:
    """``log2(num_candidates) - log2(rank)``: the bits by which the secret stands out, from 0 (ranked
    last) to ``log2(num_candidates)`` (ranked first).

    >>> exposure(1, 1024), exposure(1024, 1024), exposure(4, 1024)
    (10.0, 0.0, 8.0)
    """
    check_int("num_candidates", num_candidates, 1)
    check_int("rank", rank, 1)
    if rank > num_candidates:
        raise ValueError(f"rank must be at most num_candidates={num_candidates}, got {rank}")
    return math.log2(num_candidates) - math.log2(rank)
