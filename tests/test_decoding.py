"""Tests for lmcourse.decoding: each rule against its definition on hand-worked distributions and
against ``transformers``' logits processors on random logits; sampling frequencies against the
filtered distribution; and lmcourse.gpt.generate_text (stop sequences, n, seeds, errors) with a
tiny character-level tokenizer.
"""

from __future__ import annotations

import pytest
import torch
from transformers.generation.logits_process import (LogitsProcessorList, RepetitionPenaltyLogitsProcessor,
                                                    TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper)

from lmcourse.decoding import (DecodingSettings, apply_repetition_penalty, apply_temperature, greedy, next_token,
                               sample, top_k_filter, top_p_filter)
from lmcourse.gpt import GPT, Completion, GPTConfig, generate_text

INF = float("inf")


def _logits(B: int, V: int, seed: int = 0, scale: float = 3.0) -> torch.Tensor:
    return scale * torch.randn(B, V, generator=torch.Generator().manual_seed(seed))  # (B, V)


def _kept(logits: torch.Tensor) -> torch.Tensor:
    return torch.isfinite(logits)


def _from_probs(*probs: float) -> torch.Tensor:
    return torch.tensor([probs]).log()  # (1, V): logits whose softmax is `probs`


# --- top-p --------------------------------------------------------------------------------------

@pytest.mark.parametrize("p,expected", [
    (1e-9, [0]),  # a tiny p keeps the argmax
    (0.5, [0]),  # 0.5 alone reaches 0.5
    (0.5001, [0, 1]),
    (0.75, [0, 1]),  # 0.5 + 0.25 reaches 0.75 exactly
    (0.76, [0, 1, 2]),  # one of the two 0.125s is needed: the lower id
    (0.875, [0, 1, 2]),
    (0.9, [0, 1, 2, 3]),
    (1.0, [0, 1, 2, 3]),
])
def test_top_p_keeps_the_smallest_set_that_reaches_p(p, expected):
    out = top_p_filter(_from_probs(0.5, 0.25, 0.125, 0.125), p)
    assert _kept(out)[0].nonzero().flatten().tolist() == expected
    kept_logits = out[_kept(out)]
    assert torch.equal(kept_logits, _from_probs(0.5, 0.25, 0.125, 0.125)[_kept(out)])  # unchanged values


def test_top_p_orders_by_probability_not_by_id_and_breaks_ties_by_id():
    out = top_p_filter(_from_probs(0.125, 0.5, 0.125, 0.25), 0.76)
    assert _kept(out)[0].tolist() == [True, True, False, True]
    uniform = top_p_filter(torch.zeros(1, 4), 0.5)  # four tokens of 0.25: two are enough
    assert _kept(uniform)[0].tolist() == [True, True, False, False]


def test_top_p_set_is_minimal_on_random_logits():
    logits = _logits(50, 40, seed=3)
    probs = logits.softmax(-1)
    for p in (0.1, 0.5, 0.9, 0.99):
        keep = _kept(top_p_filter(logits, p))
        for row in range(50):
            kept = probs[row][keep[row]]
            assert float(kept.sum()) >= p - 1e-6  # reaches p
            assert float(kept.sum() - kept.min()) < p  # without its least likely token it would not
            dropped = torch.cat([probs[row][~keep[row]], torch.zeros(1)])
            assert float(kept.min()) >= float(dropped.max())  # and they are the most likely ones


@pytest.mark.parametrize("p", [0.05, 0.3, 0.5, 0.8, 0.95, 0.999])
def test_top_p_keeps_the_same_tokens_as_transformers(p):
    logits = _logits(64, 100, seed=int(p * 1000))
    expected = TopPLogitsWarper(top_p=p)(None, logits.clone())
    assert torch.equal(_kept(top_p_filter(logits, p)), _kept(expected))


# --- top-k --------------------------------------------------------------------------------------

@pytest.mark.parametrize("k", [1, 2, 5, 39, 40, 100])
def test_top_k_keeps_exactly_k_and_equals_transformers_without_ties(k):
    logits = _logits(20, 40, seed=k)
    out = top_k_filter(logits, k)
    assert torch.equal(_kept(out).sum(-1), torch.full((20,), min(k, 40)))
    assert torch.equal(out[_kept(out)], logits[_kept(out)])
    assert torch.equal(_kept(out), _kept(TopKLogitsWarper(top_k=k)(None, logits.clone())))
    smallest_kept = out.masked_fill(~_kept(out), INF).min(-1).values  # (B,)
    assert bool((logits.masked_fill(_kept(out), -INF).max(-1).values <= smallest_kept).all())


def test_top_k_ties_keep_the_lower_ids_where_transformers_keeps_all_tied():
    logits = torch.tensor([[1.0, 2.0, 2.0, 2.0, 0.0]])
    assert _kept(top_k_filter(logits, 2))[0].tolist() == [False, True, True, False, False]
    assert _kept(TopKLogitsWarper(top_k=2)(None, logits.clone()))[0].tolist() == [False, True, True, True, False]


# --- temperature, greedy, repetition penalty ------------------------------------------------------

@pytest.mark.parametrize("T", [0.3, 1.0, 2.5])
def test_temperature_raises_the_distribution_to_the_power_one_over_t(T):
    logits = _logits(4, 30, seed=1)
    probs = logits.softmax(-1)
    scaled = apply_temperature(logits, T).softmax(-1)
    powered = probs ** (1 / T) / (probs ** (1 / T)).sum(-1, keepdim=True)
    torch.testing.assert_close(scaled, powered, atol=1e-6, rtol=1e-4)
    torch.testing.assert_close(apply_temperature(logits, T), TemperatureLogitsWarper(T)(None, logits.clone()))


def test_temperature_towards_zero_approaches_greedy():
    logits = _logits(8, 30, seed=2)
    top = greedy(logits)
    mass_on_top = [float(apply_temperature(logits, T).softmax(-1).gather(-1, top[:, None]).min())
                   for T in (1.0, 0.3, 0.1, 0.01, 0.001)]
    assert mass_on_top == sorted(mass_on_top) and mass_on_top[-1] > 0.999
    g = torch.Generator().manual_seed(0)
    assert torch.equal(sample(apply_temperature(logits, 1e-4), g), top)


def test_greedy_takes_the_first_of_equal_maxima():
    assert greedy(torch.tensor([[0.0, 3.0, 3.0], [2.0, -1.0, 2.0]])).tolist() == [1, 0]


def test_repetition_penalty_by_hand():
    logits = torch.tensor([[2.0, -2.0, 0.0, 4.0, -1.0]])
    previous = torch.tensor([[0, 1, 1, 2, 0]])  # repeats count once; token 3 and 4 are new
    out = apply_repetition_penalty(logits, previous, 2.0)
    assert out.tolist() == [[1.0, -4.0, 0.0, 4.0, -1.0]]  # positive halved, negative doubled
    assert torch.equal(apply_repetition_penalty(logits, previous, 1.0), logits)


@pytest.mark.parametrize("penalty", [0.7, 1.2, 3.0])
def test_repetition_penalty_equals_transformers(penalty):
    logits = _logits(6, 50, seed=4)
    previous = torch.randint(0, 50, (6, 30), generator=torch.Generator().manual_seed(5))
    expected = RepetitionPenaltyLogitsProcessor(penalty=penalty)(previous, logits.clone())
    assert torch.equal(apply_repetition_penalty(logits, previous, penalty), expected)


def test_next_token_applies_the_rules_in_transformers_order():
    logits = _logits(16, 50, seed=6)
    previous = torch.randint(0, 50, (16, 10), generator=torch.Generator().manual_seed(7))
    settings = DecodingSettings(temperature=0.7, top_k=20, top_p=0.8, repetition_penalty=1.5)
    processors = LogitsProcessorList([RepetitionPenaltyLogitsProcessor(1.5), TemperatureLogitsWarper(0.7),
                                      TopKLogitsWarper(20), TopPLogitsWarper(0.8)])
    allowed = _kept(processors(previous, logits.clone()))
    for seed in range(20):
        token = next_token(logits, previous, settings, torch.Generator().manual_seed(seed))
        assert bool(allowed.gather(-1, token[:, None]).all())
    greedy_settings = DecodingSettings(temperature=0, repetition_penalty=1.5)
    assert torch.equal(next_token(logits, previous, greedy_settings), greedy(apply_repetition_penalty(logits, previous, 1.5)))


def test_sampling_frequencies_match_the_filtered_distribution():
    logits = torch.tensor([[2.0, 1.5, 1.0, 0.5, 0.0, -0.5, -1.0]])
    filtered = top_p_filter(top_k_filter(logits, 5), 0.9)  # keeps 0..3 (5 first, then 0.9 of the mass)
    probs = filtered.softmax(-1)[0]
    n = 20_000
    draws = sample(filtered.expand(n, -1), torch.Generator().manual_seed(0))  # (n,)
    counts = torch.bincount(draws, minlength=7).double()
    assert counts[~_kept(filtered)[0]].sum() == 0  # a filtered token is never drawn
    kept = _kept(filtered)[0]
    expected = n * probs[kept].double()
    chi2 = float(((counts[kept] - expected) ** 2 / expected).sum())
    assert chi2 < 18.5  # chi-square with 3 degrees of freedom: P(chi2 > 18.5) < 0.0004


def test_settings_and_rules_refuse_bad_values():
    with pytest.raises(ValueError, match="temperature must be a number >= 0"):
        DecodingSettings(temperature=-0.1)
    with pytest.raises(ValueError, match="top_k must be None"):
        DecodingSettings(top_k=0)
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\]"):
        DecodingSettings(top_p=1.5)
    with pytest.raises(ValueError, match="repetition_penalty must be a number > 0"):
        DecodingSettings(repetition_penalty=0)
    with pytest.raises(ValueError, match="logits must be"):
        top_k_filter(torch.zeros(5), 2)
    with pytest.raises(TypeError, match="floating-point"):
        greedy(torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="for T = 0 use greedy"):
        apply_temperature(torch.zeros(1, 3), 0)
    with pytest.raises(ValueError, match="previous_ids must be a LongTensor"):
        apply_repetition_penalty(torch.zeros(2, 3), torch.zeros(3, 1, dtype=torch.long), 1.2)


# --- generate_text ------------------------------------------------------------------------------

CHARS = "abcdefgh .,\n"


class CharTokenizer:
    """One token per character of CHARS."""

    def encode(self, text: str) -> list[int]:
        return [CHARS.index(c) for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(CHARS[i] for i in ids)


@pytest.fixture(scope="module")
def model() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig.tiny(vocab_size=len(CHARS), context_length=16))


def test_generate_text_matches_generate_and_is_reproducible(model):
    tok = CharTokenizer()
    completions = generate_text("abc", model=model, tokenizer=tok, max_tokens=30, n=3, seed=4)
    assert all(isinstance(c, Completion) and c.finish_reason == "length" and c.num_tokens == 30 for c in completions)
    ids = model.generate(torch.tensor([tok.encode("abc")] * 3), 30, seed=4)
    assert [c.text for c in completions] == [tok.decode(row) for row in ids]
    assert completions == generate_text("abc", model=model, tokenizer=tok, max_tokens=30, n=3, seed=4)
    assert len({c.text for c in completions}) > 1  # n samples, not n copies


def test_stop_sequences_cut_the_text(model):
    tok = CharTokenizer()
    full = generate_text("abc", model=model, tokenizer=tok, max_tokens=30, seed=1)[0].text
    stop = full[12:14]  # two characters: the match spans two tokens
    at = full.find(stop)
    cut = generate_text("abc", model=model, tokenizer=tok, max_tokens=30, seed=1, stop=stop)[0]
    assert cut == Completion(full[:at], "stop", at + 2)
    other = full[at + 5]  # a second stop sequence later in the text: the earlier one wins
    assert generate_text("abc", model=model, tokenizer=tok, max_tokens=30, seed=1, stop=[other, stop])[0].text \
        == full[:min(at, full.find(other))]
    never = generate_text("abc", model=model, tokenizer=tok, max_tokens=30, seed=1, stop="zz")  # not in CHARS
    assert never == [Completion(full, "length", 30)]


def test_greedy_generate_text_is_the_argmax_chain(model):
    tok = CharTokenizer()
    [c] = generate_text("aab", model=model, tokenizer=tok, max_tokens=10, temperature=0)
    assert c.text == tok.decode(model.generate(tok.encode("aab"), 10, temperature=0))


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(prompt=""), ValueError, "prompt must be a non-empty string"),
    (dict(prompt="ab" * 10), ValueError, r"the prompt is 20 tokens long, but the model reads at most "
                                         r"context_length=16 tokens; shorten the prompt by 4 tokens"),
    (dict(n=0), ValueError, r"n must be an int >= 1"),
    (dict(temperature=-1.0), ValueError, r"temperature must be a number >= 0 \(0 means greedy\)"),
    (dict(top_p=0.0), ValueError, r"top_p must be in \(0, 1\]"),
    (dict(top_p=1.2), ValueError, r"top_p must be in \(0, 1\]"),
    (dict(top_k=0), ValueError, "top_k must be None"),
    (dict(max_tokens=0), ValueError, "max_tokens must be an int >= 1"),
    (dict(stop=""), ValueError, "stop must be None, a non-empty string"),
    (dict(tokenizer=object()), TypeError, "tokenizer must have encode"),
    (dict(model="gpt2"), TypeError, "model must be a decoder of the book"),
])
def test_generate_text_errors(model, kwargs, error, match):
    args = dict(prompt="abc", model=model, tokenizer=CharTokenizer()) | kwargs
    prompt = args.pop("prompt")
    with pytest.raises(error, match=match):
        generate_text(prompt, **args)


def test_temperature_and_top_p_defaults_are_plain_sampling(model):
    tok = CharTokenizer()
    a = generate_text("abc", model=model, tokenizer=tok, max_tokens=12, seed=2)
    b = generate_text("abc", model=model, tokenizer=tok, max_tokens=12, seed=2, temperature=1.0, top_p=1.0)
    assert a == b


# --- the shared parts of generate() --------------------------------------------------------------

def test_generation_helpers_share_one_meaning_across_models():
    from lmcourse.decoding import check_stop_ids, collect_tokens, prompt_batch, seeded_generator
    batch, single = prompt_batch(torch.tensor([[1, 2], [3, 4]]), 10)
    assert batch.shape == (2, 2) and not single
    assert prompt_batch(torch.tensor([5]), 10)[1]
    with pytest.raises(ValueError, match="outside"):
        prompt_batch([10], 10)
    with pytest.raises(TypeError, match="list of ints"):
        prompt_batch([1.5], 10)
    assert check_stop_ids(None, 5) == set() and check_stop_ids(3, 5) == {3} and check_stop_ids([1, 2], 5) == {1, 2}
    with pytest.raises(ValueError, match="stop_ids"):
        check_stop_ids([5], 5)
    g = seeded_generator(3, torch.device("cpu"))
    assert torch.equal(torch.rand(2, generator=g), torch.rand(2, generator=torch.Generator().manual_seed(3)))
    assert seeded_generator(None, torch.device("cpu")) is None and seeded_generator(g, torch.device("cpu")) is g
    with pytest.raises(ValueError, match="seed"):
        seeded_generator(-1, torch.device("cpu"))
    assert collect_tokens(iter([]), 2, 5, set()) == [[], []]
    assert collect_tokens(iter(torch.tensor([[1], [2], [3]])), 1, 0, set()) == [[]]
