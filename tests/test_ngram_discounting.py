"""Tests for Chapter 2's discounting evidence and its bridge to neural models: Kneser-Ney with an
estimated discount per order (worked by hand), Church & Gale's held-out counts and Good-Turing
(against brute-force counting), the softmax bigram (against the count ratios), and the longest
training run of a sample (against a brute-force search)."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest

from lmcourse.ngram import KneserNey, estimated_discount
from lmcourse.ngram.goodturing import good_turing_counts, heldout_counts
from lmcourse.ngram.novelty import TrainingText
from lmcourse.ngram.softmax_bigram import bigram_count_matrix, fit_softmax_bigram

CAT = [["the", "cat", "sat"], ["the", "dog", "sat"], ["a", "cat", "ran"]]


def test_estimated_discount_formula():
    assert estimated_discount(8, 2) == pytest.approx(2 / 3)
    assert estimated_discount(0, 5) == 0.75  # no singletons: the formula gives 0, which discounts nothing
    assert estimated_discount(0, 0) == 0.75


def test_kneser_ney_estimated_discounts_by_hand():
    # Bigrams of CAT: (<s> the) and (sat </s>) twice, 8 others once: D = 8 / (8 + 2 * 2) = 2/3.
    # Continuation counts: cat, sat, </s> have 2 left neighbours; the, dog, a, ran have 1:
    # D = 4 / (4 + 2 * 3) = 0.4. Unigram level: 10 bigram types, 7 words with a left neighbour,
    # 8 predictable entries (<unk> </s> cat sat the a dog ran):
    # P1(cat) = (2 - 0.4) / 10 + 0.4 * 7 / 10 / 8 = 0.195.
    lm = KneserNey(order=2, discount="estimate").fit(CAT)
    assert lm.discounts[2] == pytest.approx((2 / 3,) * 3)
    assert lm.discounts[1] == pytest.approx((0.4,) * 3)
    assert lm.prob("cat") == pytest.approx(0.195)
    # after "the" (cat once, dog once): (1 - 2/3) / 2 + (2/3 * 2 / 2) * P1(cat)
    assert lm.prob("cat", ("the",)) == pytest.approx(1 / 6 + 2 / 3 * 0.195)
    assert lm.prob("sat", ("the",)) == pytest.approx(2 / 3 * 0.195)
    assert lm.distribution(("the",)).sum() == pytest.approx(1.0)


def test_kneser_ney_rejects_other_strings():
    with pytest.raises(ValueError, match=r"discount must be in \(0, 1\]"):
        KneserNey(2, discount="estimated")


def random_corpus(seed, sentences=60, vocab=6, longest=7):
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(vocab)]
    return [[rng.choice(words) for _ in range(rng.randint(1, longest))] for _ in range(sentences)]


def brute_bigrams(sentences, known):
    out = Counter()
    for s in sentences:
        p = ["<s>"] + [w if w in known else "<unk>" for w in s] + ["</s>"]
        out.update(zip(p, p[1:]))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_heldout_counts_match_brute_force(seed):
    train, held = random_corpus(seed), random_corpus(seed + 100, vocab=8)
    known = {w for s in train for w in s}
    a, b = brute_bigrams(train, known), brute_bigrams(held, known)
    table = heldout_counts(train, held, n=2, max_r=5)
    for r in range(1, 6):
        grams = [g for g, c in a.items() if c == r]
        assert table.num_ngrams[r] == len(grams)
        if grams:
            assert table.heldout_mean[r] == pytest.approx(np.mean([b[g] for g in grams]))
    possible = (len(known) + 2) ** 2  # contexts: words, <unk>, <s>; predictions: words, <unk>, </s>
    assert table.num_ngrams[0] == possible - len(a)
    assert table.heldout_mean[0] == pytest.approx(sum(c for g, c in b.items() if g not in a) / (possible - len(a)))
    assert table.gap == pytest.approx(table.r - table.heldout_mean, nan_ok=True)


def test_good_turing_by_hand():
    assert good_turing_counts({1: 10, 2: 4, 3: 2}, max_r=4).tolist()[:3] == pytest.approx([0.8, 1.5, 0.0])
    assert np.isnan(good_turing_counts({1: 10, 2: 4, 3: 2}, max_r=4)[3])  # N_4 = 0


def test_bigram_count_matrix_matches_brute_force():
    words = ["<s>", "</s>", "<unk>", "w0", "w1", "w2"]
    data = random_corpus(1)
    matrix = bigram_count_matrix(data, words)
    expected = brute_bigrams(data, set(words))
    for (v, w), c in expected.items():
        assert matrix[words.index(v), words.index(w)] == c
    assert matrix.sum() == sum(expected.values())


def test_softmax_bigram_recovers_counts_and_add_k():
    counts = np.array([[5, 1, 2], [1, 1, 8], [3, 3, 3]])
    mle = counts / counts.sum(axis=1, keepdims=True)
    assert np.abs(fit_softmax_bigram(counts, steps=400, lr=0.5) - mle).max() < 1e-5
    sparse = np.array([[5, 0, 2], [0, 0, 8], [0, 0, 0]])  # a row with no counts is left out
    k = 0.5
    add_k = (sparse[:2] + k) / (sparse[:2] + k).sum(axis=1, keepdims=True)
    assert np.abs(fit_softmax_bigram(sparse, steps=400, lr=0.5, pseudo_count=k)[:2] - add_k).max() < 1e-5
    plain = fit_softmax_bigram(sparse, steps=200, lr=0.5)
    decayed = fit_softmax_bigram(sparse, steps=200, lr=0.5, weight_decay=0.01)
    assert decayed[0, 1] > 10 * plain[0, 1]  # L2 on the logits gives the unseen pair some mass
    assert fit_softmax_bigram(sparse, steps=5)[2] == pytest.approx([1 / 3] * 3)


def brute_longest(words, sentences):
    words = [w for w in words if w != "</s>"]
    best = ()
    for i in range(len(words)):
        for j in range(i + 1, len(words) + 1):
            span = words[i:j]
            found = any(s[k:k + len(span)] == span for s in sentences for k in range(len(s)))
            if found and j - i > len(best):
                best = tuple(span)
    return best


@pytest.mark.parametrize("seed", range(6))
def test_longest_run_matches_brute_force(seed):
    train = random_corpus(seed, sentences=15, vocab=4)
    sample = random_corpus(seed + 50, sentences=1, vocab=5, longest=12)[0] + ["</s>"]
    assert len(TrainingText(train).longest_run(sample)) == len(brute_longest(sample, train))
    assert TrainingText(train).contains(list(TrainingText(train).longest_run(sample)))
