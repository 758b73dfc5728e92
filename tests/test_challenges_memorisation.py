"""lmcourse.challenges.memorisation: canaries, candidate secrets, insertion that keeps every original
line, ranks with pessimistic ties against hand-made scores, exposure, and the scoring recipe with a
tiny GPT checked against its own per-token losses."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lmcourse.challenges.memorisation import (Canary, canary_rank, candidate_secrets, exposure, insert_canary,
                                              make_canary)


def test_make_canary_is_seeded_and_keeps_leading_zeros():
    canary = make_canary(seed=5)
    assert canary == make_canary(seed=5) and canary != make_canary(seed=6)
    assert canary.prefix == "the secret number is " and len(canary.secret) == 9 and canary.secret.isdigit()
    assert canary.text == "the secret number is " + canary.secret
    secrets = {make_canary(seed=s, digits=2, prefix="pin: ").secret for s in range(200)}
    assert all(len(s) == 2 for s in secrets) and any(s.startswith("0") for s in secrets)


@pytest.mark.parametrize("kwargs, message", [
    (dict(seed=-1), "seed must be an int >= 0"),
    (dict(seed=0, digits=0), "digits must be an int >= 1"),
    (dict(seed=0, digits=19), "digits must be at most 18"),
    (dict(seed=0, prefix="two\nlines "), "line break"),
])
def test_make_canary_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_canary(**kwargs)


@pytest.mark.parametrize("secret, num_candidates", [("281265017", 1000), ("042", 50), ("7", 10), ("7", 1),
                                                    ("123456789012345678", 20)])
def test_candidates_are_distinct_and_hold_the_secret_once(secret, num_candidates):
    candidates = candidate_secrets(secret, num_candidates, seed=3)
    assert len(candidates) == num_candidates == len(set(candidates))
    assert candidates.count(secret) == 1
    assert all(len(c) == len(secret) and c.isdigit() for c in candidates)
    assert candidates == candidate_secrets(secret, num_candidates, seed=3)


def test_candidates_can_exhaust_the_space_and_place_the_secret_anywhere():
    assert sorted(candidate_secrets("3", 10, seed=0)) == [str(d) for d in range(10)]
    places = {candidate_secrets("3", 5, seed=s).index("3") for s in range(40)}
    assert places == set(range(5))


@pytest.mark.parametrize("args, error, message", [
    (("12a", 5), ValueError, "decimal digits"),
    (("", 5), ValueError, "decimal digits"),
    ((12, 5), TypeError, "expects a str"),
    (("12", 101), ValueError, "only 100 secrets of 2 digits"),
    (("12", 0), ValueError, "num_candidates must be an int >= 1"),
])
def test_candidate_errors(args, error, message):
    with pytest.raises(error, match=message):
        candidate_secrets(*args)


@pytest.mark.parametrize("text", ["first line\nsecond\n\nfourth after a blank\n", "no final newline\nlast",
                                  "one line", "", "\n", "a\r\nb\r\n"])
@pytest.mark.parametrize("repetitions", [0, 1, 7])
def test_removing_the_inserted_lines_gives_back_the_text(text, repetitions):
    canary = Canary("my pin is ", "0451")
    out = insert_canary(text, canary, repetitions, seed=2)
    lines = out.split("\n")
    assert lines.count(canary.text) == repetitions
    assert "\n".join(line for line in lines if line != canary.text) == text
    assert out.endswith("\n") == text.endswith("\n")
    assert insert_canary(text, canary, repetitions, seed=2) == out


def test_insert_canary_spreads_copies_over_the_boundaries():
    text = "\n".join(f"line {i}" for i in range(10)) + "\n"
    positions = set()
    for seed in range(100):
        lines = insert_canary(text, "CANARY", 1, seed=seed).splitlines()
        positions.add(lines.index("CANARY"))
    assert positions == set(range(11))  # before each of 10 lines, or after the last
    assert insert_canary(text, "CANARY", 3, seed=0) != insert_canary(text, "CANARY", 3, seed=1)


def test_insert_canary_on_empty_text_gives_the_canary_lines():
    assert insert_canary("", "c", 3) == "c\nc\nc"


@pytest.mark.parametrize("canary, repetitions, error, message", [
    ("two\nlines", 1, ValueError, "one non-empty line"),
    ("", 1, ValueError, "one non-empty line"),
    ("ok", -1, ValueError, "repetitions must be an int >= 0"),
    (b"bytes", 1, TypeError, "expects a str"),
])
def test_insert_canary_errors(canary, repetitions, error, message):
    with pytest.raises(error, match=message):
        insert_canary("some text\n", canary, repetitions)


def _scorer(scores: dict[str, float]):
    calls = []

    def score(texts):
        calls.append(list(texts))
        return np.array([scores[t] for t in texts])

    return score, calls


def test_canary_rank_by_hand_with_pessimistic_ties():
    scores = {"pin 1": -5.0, "pin 2": -2.0, "pin 3": -2.0, "pin 4": -1.0, "pin 5": -math.inf}
    score, calls = _scorer(scores)
    candidates = ["1", "2", "3", "4", "5"]
    assert canary_rank(score, "pin ", "4", candidates) == 1
    assert canary_rank(score, "pin ", "2", candidates) == 3  # below 4 and below its tie 3
    assert canary_rank(score, "pin ", "3", candidates) == 3
    assert canary_rank(score, "pin ", "1", candidates) == 4
    assert canary_rank(score, "pin ", "5", candidates) == 5  # log-likelihood -inf is allowed
    assert calls[0] == ["pin 1", "pin 2", "pin 3", "pin 4", "pin 5"] and len(calls) == 5  # one call each


@pytest.mark.parametrize("secret, candidates, scores, message", [
    ("9", ["1", "2"], [0.0, 0.0], "holding the secret exactly once.*0 times"),
    ("1", ["1", "1"], [0.0, 0.0], "holding the secret exactly once.*2 times"),
    ("1", ["1", "2"], [0.0], "expected shape \\(2,\\), got \\(1,\\)"),
    ("1", ["1", "2"], [0.0, float("nan")], "not nan"),
    ("1", ["1", "2"], [0.0, math.inf], "not nan or \\+inf"),
])
def test_canary_rank_errors(secret, candidates, scores, message):
    with pytest.raises(ValueError, match=message):
        canary_rank(lambda texts: np.array(scores), "", secret, candidates)


def test_exposure_by_hand():
    assert exposure(1, 2 ** 20) == 20.0
    assert exposure(2 ** 20, 2 ** 20) == 0.0
    assert exposure(3, 12) == pytest.approx(2.0)
    assert exposure(1, 1) == 0.0


@pytest.mark.parametrize("rank, num, message", [
    (0, 10, "rank must be an int >= 1"),
    (11, 10, "rank must be at most num_candidates=10"),
    (1, 0, "num_candidates must be an int >= 1"),
    (1.0, 10, "rank must be an int >= 1"),
])
def test_exposure_errors(rank, num, message):
    with pytest.raises(ValueError, match=message):
        exposure(rank, num)


def test_scoring_recipe_with_a_tiny_gpt_matches_its_per_token_losses():
    from lmcourse.dpo import response_logprobs
    from lmcourse.gpt import GPT, GPTConfig

    alphabet = "0123456789 abcdefghijklmnopqrstuvwxyz:"
    torch.manual_seed(0)
    model = GPT(GPTConfig.tiny(vocab_size=len(alphabet)))

    def ids_of(text):  # one token per character
        return [alphabet.index(c) for c in text]

    def score(texts):  # the recipe in the module docstring
        return response_logprobs(model, [(ids, ids) for ids in map(ids_of, texts)], batch_size=3).numpy()

    texts = ["pin: 0451", "pin: 12", "the pin is 9", "pin: 0452"]  # unequal lengths: padding is masked
    one_by_one = []
    for text in texts:
        ids = torch.tensor(ids_of(text))[:, None]  # (T, 1) time first
        nll, _ = model.nll(ids[:-1], ids[1:])
        one_by_one.append(-nll.sum().item())
    assert score(texts) == pytest.approx(one_by_one, abs=1e-4)
    candidates = candidate_secrets("0451", 20, seed=0)
    scores = score([f"pin: {c}" for c in candidates])  # (20,) distinct: an untrained model has no ties
    by_score = list(np.argsort(-scores))
    assert canary_rank(score, "pin: ", "0451", candidates) == 1 + by_score.index(candidates.index("0451"))
