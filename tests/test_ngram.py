"""Tests for lmcourse.ngram: counting, MLE, add-k, interpolation, stupid backoff, Kneser-Ney.

Known answers worked by hand on tiny corpora, properties checked on random corpora with hypothesis
(every model is a distribution for every context), oracle comparisons with NLTK's nltk.lm where its
definitions coincide with ours, and held-out perplexities on the book's wiki corpus.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lmcourse.ngram import (MLE, AddK, Evaluation, Interpolated, KneserNey, ModifiedKneserNey,
                            NGramCounts, NotADistributionError, StupidBackoff, modified_discounts,
                            unseen_share)

# --- helpers and oracles ------------------------------------------------------------------------


def padded(sentence, order):
    return ["<s>"] * (order - 1) + list(sentence) + ["</s>"]


def brute_counts(sentences, n, order=None, min_count=1):
    """Counter of n-grams ending at every predicted token, written the slow obvious way."""
    order = order or n
    freq = Counter(w for s in sentences for w in s)
    counter = Counter()
    for s in sentences:
        s = [w if freq[w] >= min_count else "<unk>" for w in s]
        p = padded(s, order)
        for t in range(order - 1, len(p)):
            counter[tuple(p[t - n + 1: t + 1])] += 1
    return counter


def our_everygrams(sentences, order):
    """Every k-gram (k = 1..order) ending at a predicted token, per sentence: what NGramCounts counts.
    Fed to NLTK's fit, it makes NLTK's counts equal to ours."""
    out = []
    for s in sentences:
        p = padded(s, order)
        out.append([tuple(p[t - k + 1: t + 1]) for t in range(order - 1, len(p)) for k in range(1, order + 1)])
    return out


CAT = [["the", "cat", "sat"], ["the", "dog", "sat"], ["a", "cat", "ran"]]
# padded for a bigram model: <s> the cat sat </s> | <s> the dog sat </s> | <s> a cat ran </s>
# 12 predicted tokens; prediction vocabulary: <unk> </s> cat sat the a dog ran (8 entries)

FRANCISCO = ([["san", "francisco", "is", "big"], ["san", "francisco", "is", "far"],
              ["in", "san", "francisco"], ["to", "san", "francisco"],
              ["my", "glasses", "are", "new"], ["his", "glasses", "are", "old"], ["reading", "glasses"]])

ALL_MODELS = [
    lambda n: MLE(n),
    lambda n: AddK(n, k=1.0),
    lambda n: AddK(n, k=0.5),
    lambda n: Interpolated(n, lambdas=[0.1] + [0.9 / n] * n),
    lambda n: KneserNey(n),
    lambda n: KneserNey(n, discount=0.3),
    lambda n: ModifiedKneserNey(n),
]


# --- counting -----------------------------------------------------------------------------------

def test_vocab_and_counts_known_answer():
    c = NGramCounts(CAT, order=2)
    assert c.vocab.get_itos() == ["<unk>", "<s>", "</s>", "cat", "sat", "the", "a", "dog", "ran"]
    assert c.num_tokens == 12 and c.num_sentences == 3
    assert c.count(("cat",)) == 2 and c.count(("</s>",)) == 3 and c.count(("<s>",)) == 0
    assert c.count(("<s>", "the")) == 2 and c.count(("sat", "</s>")) == 2 and c.count(("cat", "the")) == 0
    assert c.count(("zebra",)) == 0 and c.count("cat") == 2
    assert c.counts(1) == {("cat",): 2, ("sat",): 2, ("the",): 2, ("a",): 1, ("dog",): 1,
                           ("ran",): 1, ("</s>",): 3}
    assert c.count_of_counts(2) == {1: 8, 2: 2}
    assert c.continuation_count("cat") == 2  # after "the" and "a"
    assert c.continuation_count("the") == 1  # only after <s>
    assert c.continuation_count("</s>") == 2  # after "sat" and "ran"
    assert c.num_entries == 7 + 10
    with pytest.raises(ValueError, match="order 3"):
        c.continuation_count(("the", "cat"))
    with pytest.raises(ValueError, match="n must be"):
        c.counts(3)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.sampled_from("abcd"), max_size=6), min_size=1, max_size=6)
       .filter(lambda ss: any(ss)), st.integers(1, 4), st.integers(1, 2))
def test_counts_match_brute_force(sents, order, min_count):
    if not any(w for s in sents for w in s if Counter(x for t in sents for x in t)[w] >= min_count):
        min_count = 1
    c = NGramCounts(sents, order=order, min_count=min_count)
    for n in range(1, order + 1):
        expected = brute_counts(sents, n, order, min_count)
        assert c.counts(n) == dict(expected)
        assert c.count_of_counts(n) == dict(Counter(expected.values()))
        assert sum(c.raw_counts(n)) == c.num_tokens
        if n < order:  # N1+(. g): distinct words before g among the (n+1)-grams
            longer = brute_counts(sents, n + 1, order, min_count)
            for g in expected:
                assert c.continuation_count(g) == sum(1 for h in longer if h[1:] == g)
    assert c.num_entries == sum(len(brute_counts(sents, n, order, min_count)) for n in range(1, order + 1))


def test_min_count_gives_unk_real_counts():
    c = NGramCounts([["a", "b", "a"], ["a", "c"]], order=2, min_count=2)
    assert c.vocab.get_itos() == ["<unk>", "<s>", "</s>", "a"]
    assert c.count(("<unk>",)) == 2 and c.count(("b",)) == 2  # b and c are <unk>
    assert c.count(("a", "<unk>")) == 2


def test_unseen_share_by_hand_and_by_order():
    train = [["a", "b", "c"], ["b", "c"]]
    test = [["a", "b", "d"], ["c", "b"]]
    # bigrams of test: <s>a a b b d d</s> | <s>c c b b</s>; seen: <s>a, a b -> 5 of 7 unseen
    assert unseen_share(train, test, 2) == pytest.approx(5 / 7)
    # unigrams: a b d </s> c b </s>; only d unseen
    assert unseen_share(train, test, 1) == pytest.approx(1 / 7)
    shares = [unseen_share(train, test, n) for n in (1, 2, 3)]
    assert shares == sorted(shares)
    # min_count=2 maps "a" (seen once) to "<unk>" in training, and "a" and "d" to "<unk>" in the test:
    # test: <unk> b <unk> </s> | c b </s>, every unigram seen; bigrams <s> <unk>, <unk> b seen -> 5/7
    assert unseen_share(train, test, 1, min_count=2) == 0.0
    assert unseen_share(train, test, 2, min_count=2) == pytest.approx(5 / 7)
    counts = NGramCounts(train, order=3, min_count=2)  # the method reuses counts of a higher order
    assert [counts.unseen_share(test, n) for n in (1, 2)] == [0.0, pytest.approx(5 / 7)]
    with pytest.raises(ValueError, match="at least one test sentence"):
        counts.unseen_share([], 2)
    with pytest.raises(ValueError, match="n must be an int from 1 to 3"):
        counts.unseen_share(test, 4)


# --- hand-worked known answers, model by model -------------------------------------------------

def test_mle_known_answers():
    lm = MLE(order=2).fit(CAT)
    assert lm.prob("cat", ("the",)) == 0.5
    assert lm.prob("the", ("<s>",)) == pytest.approx(2 / 3)
    assert lm.prob("</s>", ("sat",)) == 1.0
    assert lm.prob("dog", ("cat",)) == 0.0 and lm.logprob("dog", ("cat",)) == -math.inf
    # a context never seen ("zebra" is <unk>): the longest seen suffix, here the unigram estimate
    assert lm.prob("cat", ("zebra",)) == pytest.approx(2 / 12)
    assert lm.prob("cat", ()) == pytest.approx(2 / 12)
    assert lm.prob("<s>", ("the",)) == 0.0


def test_add_k_known_answers():
    lm = AddK(order=2, k=1.0).fit(CAT)  # Laplace: (c + 1) / (c(h) + 8)
    assert lm.prob("cat", ("the",)) == pytest.approx(2 / 10)
    assert lm.prob("dog", ("cat",)) == pytest.approx(1 / 10)
    assert lm.prob("</s>", ("sat",)) == pytest.approx(3 / 10)
    assert lm.prob("cat", ("zebra",)) == pytest.approx(1 / 8)  # unseen context: uniform
    assert lm.prob("zebra", ("the",)) == pytest.approx(1 / 10)  # unknown word: <unk>'s share
    half = AddK(order=2, k=0.5).fit(CAT)  # (c + 0.5) / (c(h) + 4)
    assert half.prob("cat", ("the",)) == pytest.approx(1.5 / 6)
    assert half.prob("</s>", ("sat",)) == pytest.approx(2.5 / 6)
    assert half.prob("ran", ()) == pytest.approx(1.5 / 16)  # unigram level: (1 + .5) / (12 + 4)


def test_interpolated_known_answers():
    lm = Interpolated(order=2, lambdas=[0.1, 0.3, 0.6]).fit(CAT)
    # 0.1 * 1/8 + 0.3 * P(cat) + 0.6 * P(cat | the) = 0.0125 + 0.3 * 2/12 + 0.6 * 1/2
    assert lm.prob("cat", ("the",)) == pytest.approx(0.3625)
    assert lm.prob("zebra", ("the",)) == pytest.approx(0.0125)  # only the uniform floor
    # unseen context: the bigram estimate is the unigram one, so it gets 0.3 + 0.6
    assert lm.prob("cat", ("zebra",)) == pytest.approx(0.0125 + 0.9 * 2 / 12)
    assert lm.prob("<s>", ("the",)) == 0.0


def test_kneser_ney_known_answers():
    lm = KneserNey(order=2, discount=0.75).fit(CAT)
    # Continuation counts N1+(. w) over the 10 bigram types: the 1, a 1, cat 2, dog 1, sat 2,
    # ran 1, </s> 2; 7 words have one, so the unigram level keeps 0.75 * 7/10 for the uniform 1/8.
    floor = 0.75 * 7 / 10 / 8
    p1 = {"cat": 1.25 / 10 + floor, "the": 0.25 / 10 + floor, "sat": 1.25 / 10 + floor, "<unk>": floor}
    for w, p in p1.items():
        assert lm.prob(w, ()) == pytest.approx(p)
    # P(cat | the) = (1 - .75)/2 + (.75 * 2 / 2) * P1(cat): "the" has count 2 and 2 followers
    assert lm.prob("cat", ("the",)) == pytest.approx(0.125 + 0.75 * p1["cat"])
    assert lm.prob("sat", ("the",)) == pytest.approx(0.75 * p1["sat"])
    assert lm.prob("cat", ("zebra",)) == pytest.approx(p1["cat"])  # unseen context: all to order 1
    assert lm.prob("zebra", ("the",)) == pytest.approx(0.75 * floor)


def test_kneser_ney_francisco():
    """"francisco" is frequent but follows only "san"; "glasses" is rarer but follows 3 words."""
    kn = KneserNey(order=2).fit(FRANCISCO)
    c = kn.counts
    assert (c.count(("francisco",)), c.continuation_count("francisco")) == (4, 1)
    assert (c.count(("glasses",)), c.continuation_count("glasses")) == (3, 3)
    # 24 bigram types, 15 words with a continuation count, 16 in the prediction vocabulary
    assert c.num_types(2) == 24
    floor = 0.75 * 15 / 24 / 16
    assert kn.prob("francisco", ()) == pytest.approx(0.25 / 24 + floor)
    assert kn.prob("glasses", ()) == pytest.approx(2.25 / 24 + floor)
    # after "new" (seen once, before </s>) both are new continuations: 0.75 of the mass goes to P1
    assert kn.prob("glasses", ("new",)) == pytest.approx(0.75 * (2.25 / 24 + floor))
    assert kn.prob("francisco", ("new",)) == pytest.approx(0.75 * (0.25 / 24 + floor))
    assert kn.prob("glasses", ("new",)) > 3 * kn.prob("francisco", ("new",))
    # raw frequencies rank them the other way round
    mle = MLE(order=1).fit(FRANCISCO)
    assert mle.prob("francisco") == pytest.approx(4 / 31) and mle.prob("glasses") == pytest.approx(3 / 31)
    interp = Interpolated(order=2, lambdas=[0.1, 0.4, 0.5]).fit(FRANCISCO)
    assert interp.prob("francisco", ("new",)) > interp.prob("glasses", ("new",))


def test_modified_discounts_formula_and_fallbacks():
    y = 100 / 180
    assert modified_discounts(100, 40, 20, 10) == pytest.approx(
        (1 - 2 * y * 40 / 100, 2 - 3 * y * 20 / 40, 3 - 4 * y * 10 / 20))
    assert modified_discounts(5, 0, 0, 0) == (1.0, 1.0, 1.0)  # D1 = 1; D2, D3 undefined: fall back
    assert modified_discounts(0, 0, 0, 0) == (0.75, 0.75, 0.75)
    d1, d2, d3 = modified_discounts(10, 1, 50, 1)  # D2 would be negative
    assert d2 == d1 and 0 < d3 <= 3


def test_modified_kneser_ney_discounts_come_from_count_of_counts():
    lm = ModifiedKneserNey(order=3).fit(FRANCISCO * 3 + CAT)
    c = lm.counts
    top = c.count_of_counts(3)
    assert lm.discounts[3] == modified_discounts(*(top.get(r, 0) for r in (1, 2, 3, 4)))
    for k in (1, 2):
        cont = c.count_of_counts(k, continuation=True)
        assert lm.discounts[k] == modified_discounts(*(cont.get(r, 0) for r in (1, 2, 3, 4)))


def test_modified_kneser_ney_with_equal_discounts_is_kneser_ney():
    class Equal(ModifiedKneserNey):
        def _level_discounts(self, counts):
            return (0.6, 0.6, 0.6)

    data = FRANCISCO + CAT
    a, b = Equal(3).fit(data), KneserNey(3, discount=0.6).fit(data)
    for ctx in [(), ("san",), ("in", "san"), ("the", "cat"), ("zebra", "is")]:
        assert np.allclose(a.distribution(ctx), b.distribution(ctx), rtol=0, atol=1e-15)


def test_stupid_backoff_known_answers_and_not_a_distribution():
    lm = StupidBackoff(order=3, alpha=0.4).fit(CAT)
    assert lm.score("sat", ("the", "cat")) == 1.0  # c(the cat sat) / c(the cat)
    assert lm.score("ran", ("the", "cat")) == pytest.approx(0.4 * 1 / 2)  # backs off to c(cat ran)/c(cat)
    assert lm.score("dog", ("a", "cat")) == pytest.approx(0.4 * 0.4 * 1 / 12)
    assert lm.score("zebra", ("the", "cat")) == 0.0
    # sat 1 + ran 0.4 * 1/2 + (the, cat, a, dog, </s>) 0.4 * 0.4 * (2+2+1+1+3)/12 = 1.32: not a distribution
    assert lm.scores(("the", "cat")).sum() == pytest.approx(1.32)
    for call in (lambda: lm.prob("sat", ("the", "cat")), lambda: lm.perplexity(CAT),
                 lambda: lm.logprob("sat"), lambda: lm.distribution(()), lambda: lm.evaluate(CAT),
                 lambda: lm.token_logprobs(CAT), lambda: lm.generate()):
        with pytest.raises(NotADistributionError, match="not probabilities"):
            call()
    with pytest.raises(TypeError, match="sum to 1.320"):  # says by how much, for that context
        lm.prob("sat", ("the", "cat"))
    assert np.allclose(lm.token_scores([["the", "cat", "ran"]]),
                       [lm.score("the", ("<s>", "<s>")), lm.score("cat", ("<s>", "the")), lm.score("ran", ("the", "cat")),
                        lm.score("</s>", ("cat", "ran"))])


# --- properties on random corpora ---------------------------------------------------------------

WORDS = st.sampled_from(["a", "b", "c", "d", "e"])
CONTEXT_WORDS = st.sampled_from(["a", "b", "c", "d", "e", "<s>", "<unk>", "zebra", "</s>"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sents=st.lists(st.lists(WORDS, max_size=7), min_size=1, max_size=6).filter(lambda ss: any(ss)),
       order=st.integers(1, 4), model=st.sampled_from(range(len(ALL_MODELS))), min_count=st.integers(1, 2),
       contexts=st.lists(st.lists(CONTEXT_WORDS, max_size=5), min_size=1, max_size=4),
       test=st.lists(st.lists(st.sampled_from(["a", "b", "c", "zebra"]), max_size=5), min_size=1, max_size=3))
def test_every_model_is_a_distribution_for_any_context(sents, order, model, min_count, contexts, test):
    lm = ALL_MODELS[model](order).fit(sents, min_count=min_count)
    itos = lm.vocab.get_itos()
    for ctx in contexts + [[]]:
        dist = lm.distribution(ctx)
        assert dist.shape == (len(itos),) and np.all(dist >= 0)
        assert dist.sum() == pytest.approx(1.0, abs=1e-9)
        assert dist[itos.index("<s>")] == 0.0
        assert np.array_equal(dist, [lm.prob(w, ctx) for w in itos])
        if not isinstance(lm, MLE):
            assert np.all(dist[np.arange(len(itos)) != 1] > 0)  # smoothed: nothing impossible
    expected = [lm.logprob(w, p[:t]) for s in test for p in [padded(s, order)]
                for t, w in enumerate(p) if t >= order - 1]
    got = lm.token_logprobs(test)
    assert got.shape == (len(expected),)
    assert np.allclose(got, expected, rtol=0, atol=1e-12)  # -inf (MLE) must match -inf too


@settings(max_examples=30, deadline=None)
@given(sents=st.lists(st.lists(WORDS, max_size=7), min_size=1, max_size=6).filter(lambda ss: any(ss)),
       valid=st.lists(st.lists(st.sampled_from(["a", "b", "c", "zebra"]), max_size=6), min_size=1, max_size=4),
       order=st.integers(1, 4))
def test_tuned_interpolation_is_a_distribution_and_beats_fixed_weights(sents, valid, order):
    lm = Interpolated(order).fit(sents).tune(valid)
    assert lm.lambdas.shape == (order + 1,) and lm.lambdas.sum() == pytest.approx(1.0)
    for ctx in [(), ("a",), ("zebra", "b", "a")]:
        assert lm.distribution(ctx).sum() == pytest.approx(1.0, abs=1e-9)
    # EM maximises held-out likelihood: no worse than the equal weights it starts from
    equal = Interpolated(order, lambdas=[1 / (order + 1)] * (order + 1)).fit(sents)
    assert lm.token_logprobs(valid).sum() >= equal.token_logprobs(valid).sum() - 1e-9


def test_context_longer_than_order_uses_its_last_words():
    for lm in (MLE(2).fit(CAT), KneserNey(2).fit(CAT), Interpolated(3, [0.1, 0.2, 0.3, 0.4]).fit(CAT)):
        keep = lm.order - 1
        long = ("zebra", "a", "the", "cat")
        assert lm.prob("sat", long) == lm.prob("sat", long[-keep:])
        assert np.array_equal(lm.distribution(long), lm.distribution(long[-keep:]))


def test_unknown_words_are_unk():
    lm = KneserNey(3).fit(CAT, min_count=2)  # a, dog, ran are <unk> with real counts
    assert lm.counts.count(("<unk>",)) == 3
    assert lm.prob("zebra", ("the", "cat")) == lm.prob("<unk>", ("the", "cat"))
    assert lm.prob("cat", ("zebra", "dog")) == lm.prob("cat", ("<unk>", "<unk>"))
    assert lm.prob("<unk>", ("<s>", "the")) > lm.prob("<unk>", ("the", "cat")) > 0  # "<s> the <unk>" was seen
    ev = lm.evaluate([["the", "zebra", "sat"]])
    assert ev.num_oov == 1 and ev.num_tokens == 4


# --- oracle comparisons with NLTK ---------------------------------------------------------------
# Conventions differ, so each comparison states what it makes equal:
# - nltk's padded_everygram_pipeline pads *both* ends with order-1 symbols, so for a trigram model it
#   counts "w </s> </s>" and, at lower orders, "<s> <s>" and "</s> </s>"; we pad the right end with
#   one "</s>" and count only n-grams that end at a predicted token. Highest-order counts agree for
#   every context that does not end in "</s>", which is every context we have.
# - nltk's vocabulary holds "<s>" (so Laplace divides by one more word than ours) and "<UNK>".
# - nltk's MLE gives 0 to every word after an unseen context; ours uses the longest seen suffix.
# - nltk.lm.KneserNeyInterpolated (3.10): default discount 0.1 (ours 0.75); its unigram level is
#   N1+(. w) / N1+(. .) with no discount and no uniform term, so a word without a continuation count
#   (any word unseen in training) gets probability 0 and perplexity is infinite
#   (https://github.com/nltk/nltk/issues/3211); it once used a uniform unigram level instead
#   (https://github.com/nltk/nltk/issues/2599, fixed in https://github.com/nltk/nltk/pull/2659);
#   it recomputes continuation counts by scanning every higher-order n-gram at each call, which makes
#   scoring and generation very slow (https://github.com/nltk/nltk/issues/3317).

nltk_lm = pytest.importorskip("nltk.lm")
from nltk.lm.preprocessing import padded_everygram_pipeline  # noqa: E402

ORACLE_TRAIN = CAT + FRANCISCO + [["the", "cat", "is", "big"], ["a", "dog", "is", "in", "san", "francisco"]]


def our_contexts(lm):
    """Every context of the highest order that occurred in training, as tuples of str."""
    itos = lm.vocab.get_itos()
    rows = {tuple(r[:-1]) for r in lm.counts.ngram_ids(lm.order).tolist()}
    return [tuple(itos[i] for i in r) for r in sorted(rows)]


@pytest.mark.parametrize("order", [2, 3])
def test_mle_matches_nltk(order):
    ours = MLE(order).fit(ORACLE_TRAIN)
    train, vocab = padded_everygram_pipeline(order, ORACLE_TRAIN)
    theirs = nltk_lm.MLE(order)
    theirs.fit(train, vocab)
    words = [w for w in ours.vocab.get_itos() if w not in ("<s>", "<unk>")]
    contexts = our_contexts(ours)
    assert len(contexts) > 20
    for ctx in contexts:
        for w in words:
            assert ours.prob(w, ctx) == pytest.approx(theirs.score(w, ctx), abs=1e-15)
    if order == 3:  # a one-word context made of a real word: bigram counts agree too
        for v in ("cat", "san", "is"):
            for w in words:
                assert ours.prob(w, (v,)) == pytest.approx(theirs.score(w, (v,)), abs=1e-15)


@pytest.mark.parametrize("order,k", [(2, 1.0), (3, 1.0), (3, 0.5)])
def test_add_k_matches_nltk_lidstone(order, k):
    ours = AddK(order, k=k).fit(ORACLE_TRAIN)
    train, _ = padded_everygram_pipeline(order, ORACLE_TRAIN)
    # Leave "<s>" out of nltk's vocabulary: it maps to "<UNK>", which (no word is unknown in
    # training) stands for "<s>" exactly, and nltk's |V| (words, "</s>", "<UNK>") equals ours.
    theirs = nltk_lm.Laplace(order) if k == 1 else nltk_lm.Lidstone(k, order)
    theirs.fit(train, [w for s in ORACLE_TRAIN for w in s] + ["</s>"])
    assert len(theirs.vocab) == len(ours.vocab) - 1
    words = [w for w in ours.vocab.get_itos() if w != "<s>"]
    unseen = ("</s>",) if order == 2 else ("glasses", "san")  # a context neither has seen
    for ctx in our_contexts(ours) + [unseen]:
        for w in words + ["zebra"]:
            assert ours.prob(w, ctx) == pytest.approx(theirs.score(w, ctx), abs=1e-15)


def test_kneser_ney_matches_nltk_above_the_unigram_level():
    """Fed our n-grams, nltk's counts equal ours; then at every order above 1 both compute
    P(w | h) = alpha(w, h) + gamma(h) P(w | h') with the same alpha and gamma (nltk's estimator
    exposes them), and they differ only in the unigram level, checked separately by formula."""
    order, D = 3, 0.75
    ours = KneserNey(order, discount=D).fit(ORACLE_TRAIN)
    theirs = nltk_lm.KneserNeyInterpolated(order, discount=D)
    theirs.fit(our_everygrams(ORACLE_TRAIN, order), [w for s in ORACLE_TRAIN for w in padded(s, order)])
    words = [w for w in ours.vocab.get_itos() if w not in ("<s>", "<unk>")]
    trigram_contexts = our_contexts(ours)
    bigram_contexts = sorted({ctx[1:] for ctx in trigram_contexts})
    checked = 0
    for ctx in trigram_contexts + bigram_contexts:
        for w in words:
            alpha, gamma = theirs.estimator.alpha_gamma(w, ctx)
            assert ours.prob(w, ctx) == pytest.approx(alpha + gamma * ours.prob(w, ctx[1:]), abs=1e-14)
            checked += 1
    assert checked > 500
    # unseen context: both pass everything to the next order down
    assert ours.prob("cat", ("zebra", "the")) == ours.prob("cat", ("the",))
    # unigram level: nltk's N1+(. w) / T vs ours (N1+(. w) - D) / T + D * types / T / |V|
    c = ours.counts
    total, types, size = c.num_types(2), len(c.continuation_counts(1)), len(ours.vocab) - 1
    for w in words:
        assert theirs.score(w) == pytest.approx(c.continuation_count(w) / total, abs=1e-15)
        assert ours.prob(w) == pytest.approx(theirs.score(w) - D / total + D * types / total / size, abs=1e-15)
    assert theirs.score("zebra") == 0.0 and ours.prob("zebra") > 0  # nltk issue 3211


# --- perplexity, evaluation, generation ---------------------------------------------------------

def test_mle_perplexity_is_inf_without_warnings_and_add_k_is_finite():
    test = [["the", "zebra", "sat"], ["a", "cat", "sat"]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert MLE(2).fit(CAT).perplexity(test) == math.inf
        ev = MLE(2).fit(CAT).evaluate(test)
        assert ev.total_nll == math.inf and ev.bits_per_token == math.inf
        assert math.isfinite(AddK(2).fit(CAT).perplexity(test))


def test_evaluate_fields():
    lm = KneserNey(3).fit(ORACLE_TRAIN)
    test = [["the", "zebra", "sat"], ["san", "francisco", "is", "far"], []]
    ev = lm.evaluate(test)
    assert isinstance(ev, Evaluation)
    assert ev.num_tokens == 3 + 4 + 3 and ev.num_oov == 1
    logp = lm.token_logprobs(test)
    assert ev.total_nll == pytest.approx(-logp.sum())
    assert ev.perplexity == pytest.approx(math.exp(-logp.mean()))
    assert ev.bits_per_token == pytest.approx(math.log2(ev.perplexity))
    assert lm.perplexity(test) == ev.perplexity
    # a perfectly predictable corpus has perplexity close to 1 under MLE
    assert MLE(2).fit([["a", "b"]] * 5).perplexity([["a", "b"]]) == pytest.approx(1.0)


def test_generate_is_reproducible_and_stops():
    lm = KneserNey(3).fit(ORACLE_TRAIN)
    a, b = lm.generate(max_words=20, seed=3), lm.generate(max_words=20, seed=3)
    assert a == b
    assert {tuple(lm.generate(max_words=20, seed=s)) for s in range(10)} != {tuple(a)}
    for s in range(20):
        out = lm.generate(max_words=6, seed=s, context=("the",))
        assert 1 <= len(out) <= 6 and (out[-1] == "</s>" or len(out) == 6)
        assert "</s>" not in out[:-1] and "<s>" not in out
        assert set(out) <= set(lm.vocab.get_itos())
    assert lm.generate(max_words=0) == []
    # MLE after "san" can only say "francisco"
    assert MLE(2).fit(FRANCISCO).generate(max_words=2, seed=1, context=("san",)) == ["francisco", "is"] or \
        MLE(2).fit(FRANCISCO).generate(max_words=1, seed=1, context=("san",)) == ["francisco"]


def test_num_parameters():
    lm = KneserNey(2).fit(CAT)
    assert lm.num_parameters == 7 + 10 == lm.counts.num_entries


# --- the wiki corpus: held-out perplexity ranks the models --------------------------------------

@pytest.fixture(scope="module")
def wiki():
    from lmcourse.data import load_corpus, sentences
    from lmcourse.text import get_tokenizer

    tok = get_tokenizer("basic_english")
    corpus = load_corpus("wiki")
    split = {name: [tok(s) for s in sentences(getattr(corpus, name))] for name in ("train", "valid", "test")}
    return split


def test_kneser_ney_wins_on_held_out_wiki_text(wiki):
    train, valid, test = wiki["train"], wiki["valid"], wiki["test"]
    ppl = {
        "add-1": AddK(3, k=1.0).fit(train).perplexity(test),
        "interpolated": Interpolated(3).fit(train).tune(valid).perplexity(test),
        "kn": KneserNey(3).fit(train).perplexity(test),
        "mkn": ModifiedKneserNey(3).fit(train).perplexity(test),
    }
    assert MLE(3).fit(train).perplexity(test) == math.inf
    assert ppl["mkn"] < ppl["kn"] < ppl["interpolated"] < ppl["add-1"]
    assert 400 < ppl["kn"] < 800 and ppl["add-1"] > 5000  # add-one wastes mass on unseen trigrams
    assert 0.5 < unseen_share(train, test, 3) < 0.9 and unseen_share(train, test, 1) < 0.1


# --- bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [MLE, AddK, Interpolated, KneserNey, ModifiedKneserNey, StupidBackoff])
@pytest.mark.parametrize("order", [0, -1, 2.5, "3", True, None])
def test_bad_order(make, order):
    with pytest.raises(ValueError, match="order must be an int >= 1"):
        make(order=order)


@pytest.mark.parametrize("make", [MLE, AddK, Interpolated, KneserNey, ModifiedKneserNey, StupidBackoff])
def test_bad_training_data(make):
    for empty in ([], [[], []], iter([])):
        with pytest.raises(ValueError, match="corpus is empty"):
            make(order=2).fit(empty)
    with pytest.raises(TypeError, match="not a list of tokens"):
        make(order=2).fit(["the cat sat", "a dog"])
    with pytest.raises(TypeError, match="got one str"):
        make(order=2).fit("the cat sat")
    with pytest.raises(TypeError, match="tokens must be str"):
        make(order=2).fit([["the", 3, "sat"]])
    with pytest.raises(ValueError, match="add these markers themselves"):
        make(order=2).fit([["<s>", "the", "cat"]])
    with pytest.raises(ValueError, match="min_count"):
        make(order=2).fit(CAT, min_count=0)


@pytest.mark.parametrize("make", [MLE, AddK, Interpolated, KneserNey, ModifiedKneserNey, StupidBackoff])
def test_use_before_fit(make):
    lm = make(order=2)
    for call in (lambda: lm.vocab, lambda: lm.num_parameters,
                 lambda: lm.score("a") if isinstance(lm, StupidBackoff) else lm.prob("a"),
                 lambda: (lm.token_scores if isinstance(lm, StupidBackoff) else lm.token_logprobs)(CAT)):
        with pytest.raises(RuntimeError, match=r"call \.fit\(\.\.\.\) first"):
            call()


def test_bad_queries():
    lm = KneserNey(2).fit(CAT)
    with pytest.raises(TypeError, match="not a str"):
        lm.prob("cat", "the")
    with pytest.raises(TypeError, match="context words must be str"):
        lm.prob("cat", (1,))
    with pytest.raises(TypeError, match="word must be a str"):
        lm.prob(3, ("the",))
    with pytest.raises(TypeError, match="not a list of tokens"):
        lm.perplexity(["the cat sat"])
    with pytest.raises(ValueError, match="max_words"):
        lm.generate(max_words=-1)
    with pytest.raises(ValueError, match="no sentences"):
        lm.evaluate([])


@pytest.mark.parametrize("k", [0, -1.0, float("nan"), float("inf"), "1", True])
def test_bad_k(k):
    with pytest.raises(ValueError, match="k must be a positive number"):
        AddK(2, k=k)


@pytest.mark.parametrize("lambdas", [[0.5, 0.5], [0.2, 0.2, 0.2, 0.2], [0.5, 0.5, 0.5], [1.2, -0.1, -0.1]])
def test_bad_lambdas(lambdas):
    with pytest.raises(ValueError, match="lambdas"):
        Interpolated(2, lambdas=lambdas)


def test_interpolated_needs_weights():
    lm = Interpolated(2).fit(CAT)
    with pytest.raises(RuntimeError, match=r"\.tune\(valid_sentences\)"):
        lm.prob("cat", ("the",))
    with pytest.raises(ValueError, match="at least one"):
        lm.tune([])


@pytest.mark.parametrize("discount", [0, -0.5, 1.5, float("nan"), "0.75"])
def test_bad_discount(discount):
    with pytest.raises(ValueError, match=r"discount must be in \(0, 1\]"):
        KneserNey(3, discount=discount)


@pytest.mark.parametrize("alpha", [0, 1.5, -1])
def test_bad_alpha(alpha):
    with pytest.raises(ValueError, match="alpha"):
        StupidBackoff(3, alpha=alpha)
