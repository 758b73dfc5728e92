"""Checkers for Chapter 1 (Background): the chain rule, perplexity, entropy rate, OOV rate, and
converting a word-level perplexity to bits per character.

Each oracle is an independent, trusted computation (the package's own tested code or a direct
formula); each wrong answer is a mistake readers really make.
"""

from __future__ import annotations

import math

import numpy as np

from lmcourse.exercises.core import Case, Exercise, register
from lmcourse.markov import MarkovSource
from lmcourse.metrics import bits_per_char, perplexity
from lmcourse.text import build_vocab_from_iterator

# --- background.sentence_logprob -------------------------------------------------------------

_BIGRAMS = {
    ("<s>", "the"): 0.6, ("<s>", "a"): 0.4,
    ("the", "cat"): 0.5, ("the", "dog"): 0.3, ("the", "mat"): 0.2,
    ("a", "cat"): 0.7, ("a", "dog"): 0.3,
    ("cat", "sat"): 0.6, ("cat", "</s>"): 0.4,
    ("dog", "sat"): 0.5, ("dog", "</s>"): 0.5,
    ("sat", "on"): 0.8, ("sat", "</s>"): 0.2,
    ("on", "the"): 0.9, ("on", "a"): 0.1,
    ("mat", "</s>"): 1.0,
}


def _sentence_logprob(words: list[str], bigram_probs: dict) -> float:
    tokens = ["<s>", *words, "</s>"]
    return sum(math.log(bigram_probs.get(pair, 0.0)) if bigram_probs.get(pair, 0.0) > 0 else -math.inf
               for pair in zip(tokens, tokens[1:]))


def _forgets_end(words, bigram_probs):
    tokens = ["<s>", *words]
    return sum(math.log(bigram_probs[pair]) for pair in zip(tokens, tokens[1:]))


def _product_not_log(words, bigram_probs):
    tokens = ["<s>", *words, "</s>"]
    return math.prod(bigram_probs[pair] for pair in zip(tokens, tokens[1:]))


def _pads_in_place(words, bigram_probs):
    words.insert(0, "<s>")  # changes the caller's list
    words.append("</s>")
    return _sentence_logprob(words[1:-1], bigram_probs)


def _floor_not_inf(words, bigram_probs):
    tokens = ["<s>", *words, "</s>"]
    return sum(math.log(bigram_probs.get(pair, 1e-12)) for pair in zip(tokens, tokens[1:]))


def _log10(words, bigram_probs):
    tokens = ["<s>", *words, "</s>"]
    return sum(math.log10(bigram_probs[pair]) for pair in zip(tokens, tokens[1:]))


register(Exercise(
    name="background.sentence_logprob",
    cases=[Case((s.split(), _BIGRAMS), label=f"words={s.split()!r}") for s in
           ["the cat sat", "a dog", "the cat sat on the mat", "a cat sat on a dog sat on the mat"]]
    + [Case((["the", "cat", "sat", "on", "a", "mat"], _BIGRAMS), label="a sentence with an unseen bigram (a, mat)"),
       Case(([], _BIGRAMS), label="the empty sentence: (<s>, </s>) is not in the table")],
    oracle=_sentence_logprob,
    hint="Wrap the words in <s> ... </s>, then add the natural log of P(word | previous word) for every "
         "pair, including the final (last word, </s>). A pair missing from the table has probability 0, "
         "so its log is -math.inf.",
    nudge="Every pair counts, including (<s>, first word) and (last word, </s>), and a missing pair means -inf.",
    wrong_answers={"forgets </s>": _forgets_end, "multiplies probabilities": _product_not_log,
                   "uses log10": _log10, "changes its input (pads the caller's list)": _pads_in_place,
                   "a tiny probability instead of -inf for a missing pair": _floor_not_inf},
))

# --- background.perplexity -------------------------------------------------------------------

_rng = np.random.default_rng(1)
_PPL_CASES = [
    Case(([math.log(0.25)] * 8,), label="eight tokens, each with probability 1/4"),
    Case(([math.log(0.5), math.log(0.125)],), label="two tokens with probabilities 1/2 and 1/8"),
    Case((np.log(_rng.dirichlet(np.ones(50), size=1)[0]).tolist(),), label="50 random log-probabilities"),
    Case((np.log(_rng.uniform(0.01, 1.0, size=1000)).tolist(),), label="1000 random log-probabilities"),
    Case(([0.0, 0.0, 0.0],), label="three certain tokens (log-probability 0)"),
]


def _ppl_of_sum(log_probs):
    return math.exp(-sum(log_probs))


def _ppl_base2(log_probs):
    return 2 ** (-sum(log_probs) / len(log_probs))


def _ppl_negates_in_place(log_probs):
    for i, x in enumerate(log_probs):
        log_probs[i] = -x  # changes the caller's list
    return math.exp(sum(log_probs) / len(log_probs))


def _ppl_as_array(log_probs):
    return np.exp(-np.mean(log_probs, keepdims=True))  # an array of one number, not a number


def _ppl_mean_prob(log_probs):
    return 1 / (sum(math.exp(x) for x in log_probs) / len(log_probs))


register(Exercise(
    name="background.perplexity",
    cases=_PPL_CASES,
    oracle=perplexity,
    hint="Average the negative log-probabilities over the tokens first, then undo the natural log "
         "with math.exp. Perplexity is a per-token quantity.",
    nudge="Perplexity is exp of the AVERAGE negative log-probability per token.",
    wrong_answers={"exp of the total, not the mean": _ppl_of_sum, "2 ** instead of exp for natural logs": _ppl_base2,
                   "inverse of the mean probability": _ppl_mean_prob,
                   "changes its input (negates the list in place)": _ppl_negates_in_place,
                   "returns an array of one number": _ppl_as_array},
))

# --- background.entropy_rate -----------------------------------------------------------------


def _markov_entropy_rate(transition: list[list[float]]) -> float:
    return MarkovSource(np.asarray(transition, dtype=float)).entropy_rate(base=2)


def _row_average(transition):
    p = np.asarray(transition, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.nansum(np.where(p > 0, p * np.log2(p), 0.0), axis=1)
    return float(h.mean())


def _stationary_entropy(transition):
    pi = MarkovSource(np.asarray(transition, dtype=float)).stationary
    return float(-np.sum(pi[pi > 0] * np.log2(pi[pi > 0])))


def _entropy_rate_complex(transition):
    P = np.asarray(transition, dtype=float)
    values, vectors = np.linalg.eig(P.T)
    pi = vectors[:, np.argmin(np.abs(values - 1))]  # forgets np.real: a complex number comes back
    pi = pi / pi.sum()
    logs = np.log2(P, out=np.zeros_like(P), where=P > 0)
    return complex(-(pi[:, None] * P * logs).sum())


def _entropy_rate_nats(transition):
    return _markov_entropy_rate(transition) * math.log(2)


def _markov_cases() -> list[Case]:
    rng = np.random.default_rng(7)
    cases = [
        Case(([[0.5, 0.5], [0.5, 0.5]],), label="a fair coin: two symbols, every row (1/2, 1/2)"),
        Case(([[0.9, 0.1], [0.5, 0.5]],), label="two symbols: [[0.9, 0.1], [0.5, 0.5]]"),
        Case(([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.5, 0.0, 0.5]],), label="three symbols with zeros in the rows"),
    ]
    for size in (4, 8):
        rows = rng.dirichlet(np.full(size, 0.5), size=size)
        cases.append(Case((rows.round(12).tolist(),), label=f"a random {size}x{size} chain"))
    return cases


register(Exercise(
    name="background.entropy_rate",
    cases=_markov_cases(),
    oracle=_markov_entropy_rate,
    hint="Find the stationary distribution pi (pi P = pi, sum 1), then weight each row's entropy "
         "-sum_j P[i, j] log2 P[i, j] by pi[i]. Terms with P[i, j] = 0 contribute 0.",
    nudge="Weight each row's entropy (in bits) by how often the chain visits that state.",
    wrong_answers={"rows weighted equally": _row_average, "entropy of the stationary distribution": _stationary_entropy,
                   "natural log instead of bits": _entropy_rate_nats,
                   "returns a complex number (forgets np.real)": _entropy_rate_complex},
))

# --- background.oov_rate ---------------------------------------------------------------------


def _oov_rate(train_tokens: list[str], test_tokens: list[str], vocab_size: int) -> float:
    vocab = build_vocab_from_iterator([train_tokens], max_tokens=vocab_size)
    return sum(token not in vocab for token in test_tokens) / len(test_tokens)


def _oov_types(train_tokens, test_tokens, vocab_size):
    vocab = build_vocab_from_iterator([train_tokens], max_tokens=vocab_size)
    types = set(test_tokens)
    return sum(t not in vocab for t in types) / len(types)


def _oov_all_train_words(train_tokens, test_tokens, vocab_size):
    seen = set(train_tokens)
    return sum(t not in seen for t in test_tokens) / len(test_tokens)


def _oov_first_seen(train_tokens, test_tokens, vocab_size):
    kept = set(list(dict.fromkeys(train_tokens))[:vocab_size])
    return sum(t not in kept for t in test_tokens) / len(test_tokens)


def _oov_most_common(train_tokens, test_tokens, vocab_size):
    from collections import Counter
    kept = {w for w, _ in Counter(train_tokens).most_common(vocab_size)}  # ties by first appearance
    return sum(t not in kept for t in test_tokens) / len(test_tokens)


def _oov_sorts_in_place(train_tokens, test_tokens, vocab_size):
    train_tokens.sort()  # changes the caller's list
    return _oov_rate(train_tokens, test_tokens, vocab_size)


def _oov_percent(train_tokens, test_tokens, vocab_size):
    return 100 * _oov_rate(train_tokens, test_tokens, vocab_size)


def _oov_cases() -> list[Case]:
    text = "the cat sat on the mat and the dog sat on the log while a cat ran".split()
    cases = [
        Case((text, "the dog sat on a mat".split(), 3), label="a small text, vocabulary of 3"),
        Case((text, "the dog sat on a mat".split(), 100), label="a small text, vocabulary larger than the text"),
        Case((["b", "a", "c", "a"], ["a", "b", "c", "d"], 2), label="'b' and 'c' both once: 'b' comes first alphabetically"),
        Case((["c", "b", "a", "a"], ["b", "b", "c"], 2),
             label="'c' and 'b' both once, 'c' seen first: the tie still goes to 'b' (alphabetical)"),
        Case((["a", "b", "b", "c"], ["a", "b", "c", "d"], 3), label="vocab_size equal to the number of distinct words"),
    ]
    rng = np.random.default_rng(3)
    words = [f"w{i}" for i in range(300)]
    zipf = 1 / np.arange(1, 301)
    zipf /= zipf.sum()
    train = rng.choice(words, size=3000, p=zipf).tolist()
    test = rng.choice(words, size=800, p=zipf).tolist()
    cases += [Case((train, test, v), label=f"3000 Zipf-distributed training words, vocabulary of {v}") for v in (10, 50)]
    return cases


register(Exercise(
    name="background.oov_rate",
    cases=_oov_cases(),
    oracle=_oov_rate,
    nudge="Count test TOKENS (every occurrence) outside the vocab_size most frequent training words.",
    hint="Keep the vocab_size most frequent training words (ties broken alphabetically, as "
         "build_vocab_from_iterator does), then count the test *tokens* (not distinct words) outside it.",
    wrong_answers={"counts distinct test words": _oov_types, "ignores vocab_size": _oov_all_train_words,
                   "keeps the first words seen, not the most frequent": _oov_first_seen,
                   "Counter.most_common (ties by first appearance)": _oov_most_common,
                   "changes its input (sorts train_tokens in place)": _oov_sorts_in_place,
                   "a percentage instead of a fraction": _oov_percent},
))

# --- background.bits_per_char ----------------------------------------------------------------


def _bpc_from_perplexity(perplexity_per_token: float, num_tokens: int, num_chars: int) -> float:
    return bits_per_char(num_tokens * math.log(perplexity_per_token), num_chars)


def _bpc_forgets_ratio(perplexity_per_token, num_tokens, num_chars):
    return math.log2(perplexity_per_token)


def _bpc_ratio_upside_down(perplexity_per_token, num_tokens, num_chars):
    return math.log2(perplexity_per_token) * num_chars / num_tokens


def _bpc_floor_division(perplexity_per_token, num_tokens, num_chars):
    return num_tokens * math.log2(perplexity_per_token) // num_chars


def _bpc_natural_log(perplexity_per_token, num_tokens, num_chars):
    return math.log(perplexity_per_token) * num_tokens / num_chars


register(Exercise(
    name="background.bits_per_char",
    cases=[Case((ppl, n_tok, n_chr), label=f"perplexity {ppl} over {n_tok} tokens and {n_chr} characters")
           for ppl, n_tok, n_chr in [(2.0, 10, 10), (256.0, 1000, 5600), (180.5, 24_000, 131_000),
                                     (3.2, 500_000, 500_000), (1.0, 100, 400)]],
    oracle=_bpc_from_perplexity,
    nudge="Bits per token times tokens is the text's total bits; share them over its characters.",
    hint="log2(perplexity) is bits per token; multiply by the number of tokens to get the total bits "
         "of the text, then divide by its number of characters.",
    wrong_answers={"bits per token, not per character": _bpc_forgets_ratio,
                   "ratio upside down": _bpc_ratio_upside_down, "nats instead of bits": _bpc_natural_log,
                   "floor division (//)": _bpc_floor_division},
))
