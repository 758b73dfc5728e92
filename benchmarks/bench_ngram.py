"""Fit and score time of lmcourse's trigram Kneser-Ney against nltk.lm.KneserNeyInterpolated.

Both models get exactly the same data: sentences of the book's wiki corpus, tokenized with
basic_english, rare training words (fewer than 2 occurrences) and unseen test words replaced by
"<unk>" beforehand, so that "<unk>" is an ordinary word to both. NLTK is fed the n-grams that
lmcourse counts (order-1 "<s>" on the left, one "</s>" on the right), so their counts are equal.

NLTK's scoring rescans the higher-order counts at every call (nltk issue 3317), so it cannot score
the whole corpus in reasonable time; the comparison uses the first ``--train-sentences`` training
sentences and the first ``--test-sentences`` test sentences, and lmcourse is also timed on the
full corpus.

The perplexities should agree to rounding error. Above the unigram level both compute the same
interpolated formula (tests/test_ngram.py checks it term by term). At the unigram level NLTK uses
N1+(. w) / N1+(. .) with no discount, while lmcourse discounts every continuation count by D and
spreads the freed mass, D * (number of word types) / N1+(. .), uniformly over the vocabulary; when
every vocabulary entry has a continuation count, as here ("<unk>" occurs in training), the two
terms cancel. They differ only for a word never seen in training, which NLTK gives probability 0
(nltk issue 3211) and lmcourse does not. Run: `python benchmarks/bench_ngram.py`.
"""

from __future__ import annotations

import argparse
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence

from nltk.lm import KneserNeyInterpolated
from tqdm.auto import tqdm

from lmcourse.data import load_corpus, sentences
from lmcourse.ngram import KneserNey
from lmcourse.text import get_tokenizer

ORDER, DISCOUNT = 3, 0.75


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def with_unk(train: list[list[str]], test: list[list[str]], min_count: int = 2
             ) -> tuple[list[list[str]], list[list[str]]]:
    """Replace training words rarer than ``min_count``, and test words not kept, by "<unk>"."""
    freq = Counter(w for s in train for w in s)
    keep = {w for w, c in freq.items() if c >= min_count}
    def mapped(sents: list[list[str]]) -> list[list[str]]:
        return [[w if w in keep else "<unk>" for w in s] for s in sents]
    return mapped(train), mapped(test)


def padded(sentence: Sequence[str]) -> list[str]:
    return ["<s>"] * (ORDER - 1) + list(sentence) + ["</s>"]


def nltk_fit(train: list[list[str]]) -> KneserNeyInterpolated:
    """NLTK's model, fed the same k-grams (k = 1..ORDER, ending at every predicted token) we count."""
    lm = KneserNeyInterpolated(ORDER, discount=DISCOUNT)
    grams = []
    for s in train:
        p = padded(s)
        grams.append([tuple(p[t - k + 1: t + 1]) for t in range(ORDER - 1, len(p)) for k in range(1, ORDER + 1)])
    lm.fit(grams, [w for s in train for w in padded(s)])
    return lm


def nltk_perplexity(lm: KneserNeyInterpolated, test: list[list[str]]) -> float:
    nll, n = 0.0, 0
    tokens = [(p[t], tuple(p[t - ORDER + 1: t])) for s in test for p in [padded(s)] for t in range(ORDER - 1, len(p))]
    for word, context in tqdm(tokens, desc="nltk scoring", leave=False):
        score = lm.score(word, context)
        nll += -math.log(score) if score > 0 else math.inf
        n += 1
    return math.exp(nll / n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-sentences", type=int, default=3000)
    parser.add_argument("--test-sentences", type=int, default=100)
    args = parser.parse_args()

    corpus = load_corpus("wiki")
    tok = get_tokenizer("basic_english")
    full_train = [tok(s) for s in sentences(corpus.train)]
    full_test = [tok(s) for s in sentences(corpus.test)]
    train, test = with_unk(full_train[:args.train_sentences], full_test[:args.test_sentences])
    n_train, n_test = sum(map(len, train)), sum(len(s) + 1 for s in test)

    ours, ours_fit = timed(lambda: KneserNey(ORDER, DISCOUNT).fit(train))
    ours_ppl, ours_score = timed(lambda: ours.perplexity(test))
    theirs, theirs_fit = timed(lambda: nltk_fit(train))
    theirs_ppl, theirs_score = timed(lambda: nltk_perplexity(theirs, test))

    big_train, big_test = with_unk(full_train, full_test)
    big, big_fit = timed(lambda: KneserNey(ORDER, DISCOUNT).fit(big_train))
    big_ppl, big_score = timed(lambda: big.perplexity(big_test))
    n_big_train, n_big_test = sum(map(len, big_train)), sum(len(s) + 1 for s in big_test)

    print(f"Trigram Kneser-Ney, D = {DISCOUNT}; same data for both libraries "
          f"({n_train:,} training words, {n_test:,} test tokens)\n")
    print(f"{'':30} {'fit s':>8} {'score s':>9} {'total s':>9} {'test perplexity':>16}")
    for name, fit, score, ppl in [("lmcourse.ngram.KneserNey", ours_fit, ours_score, ours_ppl),
                                  ("nltk.lm.KneserNeyInterpolated", theirs_fit, theirs_score, theirs_ppl)]:
        print(f"{name:30} {fit:8.3f} {score:9.3f} {fit + score:9.3f} {ppl:16.4f}")
    ratio = (theirs_fit + theirs_score) / (ours_fit + ours_score)
    print(f"\nlmcourse is {ratio:,.0f}x faster (fit + score); "
          f"fit alone {theirs_fit / ours_fit:,.0f}x, scoring alone {theirs_score / ours_score:,.0f}x.")
    print(f"Relative difference of the perplexities: {abs(ours_ppl - theirs_ppl) / theirs_ppl:.1e} "
          f"(the definitions coincide here; see this file's docstring).")
    print(f"\nlmcourse on the whole corpus ({n_big_train:,} training words, {n_big_test:,} test tokens): "
          f"fit {big_fit:.2f} s, score {big_score:.2f} s, perplexity {big_ppl:.2f}")


if __name__ == "__main__":
    main()
