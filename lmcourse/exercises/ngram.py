"""Checkers for Chapter 2 (n-gram models): counting with padding, an add-k distribution, one EM
step for interpolation weights, and Kneser-Ney continuation counts.

The oracles restate each definition directly, independent of `lmcourse.ngram`'s vectorised code.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from lmcourse.exercises.core import Case, Exercise, register

_SENTENCES = [
    "the cat sat on the mat".split(),
    "the dog sat".split(),
    "a cat saw the dog on the mat".split(),
    ["hello"],
]

# --- ngram.count_ngrams ----------------------------------------------------------------------


def _count_ngrams(sentences: list[list[str]], n: int) -> dict[tuple[str, ...], int]:
    counts: Counter = Counter()
    for words in sentences:
        padded = ["<s>"] * (n - 1) + list(words) + ["</s>"]
        counts.update(tuple(padded[i:i + n]) for i in range(len(padded) - n + 1))
    return dict(counts)


def _no_padding(sentences, n):
    counts: Counter = Counter()
    for words in sentences:
        counts.update(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
    return dict(counts)


def _pads_end_like_start(sentences, n):
    counts: Counter = Counter()
    for words in sentences:
        padded = ["<s>"] * (n - 1) + list(words) + ["</s>"] * (n - 1)
        counts.update(tuple(padded[i:i + n]) for i in range(len(padded) - n + 1))
    return dict(counts)


def _across_sentences(sentences, n):
    stream = ["<s>"] * (n - 1) + [w for words in sentences for w in words] + ["</s>"]
    return dict(Counter(tuple(stream[i:i + n]) for i in range(len(stream) - n + 1)))


def _pads_in_place(sentences, n):
    for words in sentences:
        words[:0] = ["<s>"] * (n - 1)  # changes the caller's lists
        words.append("</s>")
    return dict(Counter(tuple(w[i:i + n]) for w in sentences for i in range(len(w) - n + 1)))


def _float_counts(sentences, n):
    return {gram: float(count) for gram, count in _count_ngrams(sentences, n).items()}


def _string_keys(sentences, n):
    return {" ".join(gram): count for gram, count in _count_ngrams(sentences, n).items()}


register(Exercise(
    name="ngram.count_ngrams",
    cases=[Case((_SENTENCES, n), label=f"four short sentences, n={n}") for n in (1, 2, 3)]
    + [Case(([["a", "a", "a"]], 2), label="one sentence 'a a a', n=2"),
       Case(([[], ["a"]], 3), label="an empty sentence and 'a', n=3: the empty one still gives (<s>, <s>, </s>)")],
    nudge="Pad each sentence on its own, n-1 '<s>' in front and one '</s>' at the end, and count whole-int tuples.",
    oracle=_count_ngrams,
    hint="Pad each sentence separately: n-1 '<s>' in front and exactly one '</s>' at the end, then count "
         "every window of n tokens as a tuple. Never let a window cross from one sentence into the next.",
    wrong_answers={"no padding": _no_padding, "n-1 '</s>' at the end": _pads_end_like_start,
                   "counts across sentence boundaries": _across_sentences,
                   "changes its input (pads the caller's sentences)": _pads_in_place,
                   "counts as floats": _float_counts, "keys are strings, not tuples": _string_keys},
))

# --- ngram.add_k_distribution ----------------------------------------------------------------


def _add_k(next_counts: dict[str, int], vocab: list[str], k: float) -> dict[str, float]:
    total = sum(next_counts.get(w, 0) for w in vocab) + k * len(vocab)
    return {w: (next_counts.get(w, 0) + k) / total for w in vocab}


def _add_k_forgets_kv(next_counts, vocab, k):
    total = sum(next_counts.values())
    return {w: (next_counts.get(w, 0) + k) / total for w in vocab}


def _add_k_only_unseen(next_counts, vocab, k):
    total = sum(next_counts.values()) + k * sum(w not in next_counts for w in vocab)
    return {w: (next_counts[w] if w in next_counts else k) / total for w in vocab}


def _add_k_adds_k_once(next_counts, vocab, k):
    total = sum(next_counts.values()) + k
    return {w: (next_counts.get(w, 0) + k) / total for w in vocab}


def _add_k_in_place(next_counts, vocab, k):
    for w in vocab:
        next_counts[w] = next_counts.get(w, 0) + k  # changes the caller's dict
    total = sum(next_counts[w] for w in vocab)
    return {w: next_counts[w] / total for w in vocab}


_VOCAB = ["the", "cat", "dog", "sat", "on", "mat", "</s>", "<unk>"]
register(Exercise(
    name="ngram.add_k_distribution",
    cases=[
        Case(({"cat": 2, "dog": 1, "mat": 1}, _VOCAB, 1.0), label="counts after 'the', k=1 (Laplace)"),
        Case(({"cat": 2, "dog": 1, "mat": 1}, _VOCAB, 0.1), label="counts after 'the', k=0.1"),
        Case(({}, _VOCAB, 0.5), label="a context never seen: no counts at all, k=0.5"),
        Case(({"sat": 7}, _VOCAB, 2.0), label="one continuation seen 7 times, k=2"),
    ],
    oracle=_add_k,
    hint="Every word of the vocabulary gets k added to its count, seen or not, so the denominator is the "
         "context's total count plus k times the vocabulary size. The result must sum to 1.",
    nudge="Every vocabulary word, seen or not, gets k added; the probabilities must sum to 1.",
    wrong_answers={"denominator without k*V": _add_k_forgets_kv, "k added only to unseen words": _add_k_only_unseen,
                   "k added to the denominator once": _add_k_adds_k_once,
                   "changes its input (adds k into the caller's counts)": _add_k_in_place},
))

# --- ngram.em_step ---------------------------------------------------------------------------


def _em_step(lambdas: list[float], component_probs: np.ndarray) -> np.ndarray:
    lam = np.asarray(lambdas, dtype=float)
    probs = np.asarray(component_probs, dtype=float)  # (N tokens, K components)
    weighted = probs * lam  # (N, K)
    posterior = weighted / weighted.sum(axis=1, keepdims=True)  # (N, K): responsibility of each component
    return posterior.mean(axis=0)


def _em_no_lambda(lambdas, component_probs):
    probs = np.asarray(component_probs, dtype=float)
    return (probs / probs.sum(axis=1, keepdims=True)).mean(axis=0)


def _em_unnormalised(lambdas, component_probs):
    probs = np.asarray(component_probs, dtype=float) * np.asarray(lambdas, dtype=float)
    return probs.mean(axis=0)


def _em_renormalised_means(lambdas, component_probs):
    mean = (np.asarray(component_probs, dtype=float) * np.asarray(lambdas, dtype=float)).mean(axis=0)
    return mean / mean.sum()


def _em_in_place(lambdas, component_probs):
    component_probs *= np.asarray(lambdas)  # changes the caller's array
    return (component_probs / component_probs.sum(axis=1, keepdims=True)).mean(axis=0)


def _em_as_list(lambdas, component_probs):
    return _em_step(lambdas, component_probs).tolist()


def _em_cases() -> list[Case]:
    rng = np.random.default_rng(11)
    cases = [
        Case(([0.5, 0.5], np.array([[0.2, 0.1], [0.0, 0.3], [0.5, 0.5]])), label="two components, three tokens"),
        Case(([0.2, 0.3, 0.5], np.array([[0.01, 0.1, 0.3]])), label="three components, one token"),
    ]
    for k in (2, 4):
        lam = rng.dirichlet(np.ones(k))
        probs = rng.uniform(0, 0.2, size=(50, k)) * rng.integers(0, 2, size=(50, k)) + 1e-4
        cases.append(Case((lam.tolist(), probs), label=f"{k} components, 50 random tokens"))
    return cases


register(Exercise(
    name="ngram.em_step",
    cases=_em_cases(),
    oracle=_em_step,
    hint="For each held-out token, the share of its probability that each component contributed, "
         "lambda_j * p_j / sum_k lambda_k * p_k, is that component's responsibility; the new lambda_j is "
         "the average responsibility over the tokens. Return an array that sums to 1.",
    nudge="Average, over the tokens, each component's share lambda_j p_j / sum_k lambda_k p_k of the token's probability.",
    wrong_answers={"forgets the old lambdas": _em_no_lambda, "no per-token normalisation": _em_unnormalised,
                   "normalises averages instead of averaging posteriors": _em_renormalised_means,
                   "changes its input (multiplies component_probs in place)": _em_in_place,
                   "returns a list, not a NumPy array": _em_as_list},
))

# --- ngram.continuation_counts ---------------------------------------------------------------


def _continuation(bigram_counts: dict[tuple[str, str], int]) -> dict[str, int]:
    left_contexts: dict[str, set[str]] = {}
    for (previous, word), count in bigram_counts.items():
        if count > 0:
            left_contexts.setdefault(word, set()).add(previous)
    return {word: len(contexts) for word, contexts in left_contexts.items()}


def _frequency(bigram_counts):
    out: Counter = Counter()
    for (_, word), count in bigram_counts.items():
        out[word] += count
    return {w: c for w, c in out.items() if c > 0}


def _right_contexts(bigram_counts):
    right: dict[str, set[str]] = {}
    for (previous, word), count in bigram_counts.items():
        if count > 0:
            right.setdefault(previous, set()).add(word)
    return {w: len(s) for w, s in right.items()}


def _deletes_zero_counts(bigram_counts):
    for pair in [p for p, c in bigram_counts.items() if c == 0]:
        del bigram_counts[pair]  # changes the caller's dict
    return _continuation(bigram_counts)


def _returns_the_sets(bigram_counts):
    left: dict[str, set[str]] = {}
    for (previous, word), count in bigram_counts.items():
        if count > 0:
            left.setdefault(word, set()).add(previous)
    return left


register(Exercise(
    name="ngram.continuation_counts",
    cases=[
        Case(({("san", "francisco"): 9, ("in", "francisco"): 1, ("the", "glasses"): 2, ("my", "glasses"): 1,
               ("his", "glasses"): 1, ("reading", "glasses"): 1},), label="'francisco' after 2 words, 'glasses' after 4"),
        Case((_count_ngrams(_SENTENCES, 2),), label="the bigram counts of four short sentences"),
        Case(({("a", "b"): 3, ("a", "c"): 0, ("b", "b"): 1},), label="a bigram stored with count 0 does not count"),
    ],
    oracle=_continuation,
    hint="The continuation count of w is the number of *distinct* words that precede it, N1+(. w): count "
         "each (previous, w) pair once, however often it occurs, and skip pairs whose count is 0.",
    nudge="Count the DISTINCT words that come before w (each pair once), skipping pairs with count 0.",
    wrong_answers={"ordinary frequency": _frequency, "counts distinct right contexts": _right_contexts,
                   "changes its input (deletes the zero counts)": _deletes_zero_counts,
                   "returns the sets of neighbours, not their sizes": _returns_the_sets},
))
