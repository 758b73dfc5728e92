"""Checkers for Chapter 9 (applications): a BM25 term score, reading a label's probability from a
chat model's next-token distribution, reciprocal rank fusion, and the error-cost threshold of a
spam filter.

The oracles are the package's production code: BM25 is :class:`lmcourse.apps.retrieval.BM25Index`
(``bm25s`` underneath) run on a real collection built so that the case's counts hold, the label
probabilities are :func:`lmcourse.apps.prompting.label_distribution`, the fusion is
:func:`lmcourse.apps.retrieval.reciprocal_rank_fusion` and the threshold
:func:`lmcourse.apps.spam.cheapest_threshold`.

>>> texts = _bm25_collection(tf=2, df=3, num_passages=4, length=5, average_length=4)
>>> [t.split().count("term") for t in texts], sum(len(t.split()) for t in texts) / 4
([2, 1, 1, 0], 4.0)
"""

from __future__ import annotations

import math

import numpy as np

from lmcourse.apps import prompting, retrieval, spam
from lmcourse.exercises.core import Case, Exercise, register

# --- apps.bm25_term_score --------------------------------------------------------------------


def _bm25_collection(tf: int, df: int, num_passages: int, length: int, average_length: float) -> list[str]:
    """Passages whose counts are the case's: passage 0 has `length` words, `tf` of them "term";
    passages 1 to df - 1 hold "term" once; the lengths add up to ``num_passages * average_length``."""
    total = round(num_passages * average_length)
    rest = total - length
    others = [rest // (num_passages - 1) + (1 if k < rest % (num_passages - 1) else 0) for k in range(num_passages - 1)]
    assert total == num_passages * average_length and min(others) >= 1, "a case must describe a real collection"
    texts = [" ".join(["term"] * tf + ["filler"] * (length - tf))]
    for k, size in enumerate(others, start=1):
        texts.append(" ".join((["term"] if k < df else []) + ["filler"] * (size - (k < df))))
    return texts


def _bm25_oracle(tf, df, num_passages, length, average_length, k1=1.5, b=0.75):
    texts = _bm25_collection(tf, df, num_passages, length, average_length)
    index = retrieval.BM25Index(texts, [f"p{k}" for k in range(len(texts))], k1=k1, b=b)
    return float(index.scores("term")[0])


def _bm25_wrong(tf, df, n, length, avg, k1=1.5, b=0.75, *, idf="lucene", saturate=True, normalise=True):
    if idf == "plain":
        weight = math.log(n / df)
    elif idf == "robertson":
        weight = math.log((n - df + 0.5) / (df + 0.5))
    else:
        weight = math.log(1 + (n - df + 0.5) / (df + 0.5))
    if not saturate:
        return weight * tf
    norm = (1 - b + b * length / avg) if normalise else 1.0
    return weight * tf / (tf + k1 * norm)


_BM25_CASES = [
    Case((1, 1, 3, 7, 8), label="the word once, in one passage of 3; the passage shorter than average"),
    Case((3, 2, 10, 20, 10), label="3 times in a passage twice the average length"),
    Case((2, 5, 5, 4, 6), label="a word in every passage (a small idf)"),
    Case((1, 2, 4, 3, 6), {"k1": 1.2, "b": 0.5}, label="k1 1.2 and b 0.5"),
    Case((4, 3, 6, 10, 5), {"k1": 2.0, "b": 0.0}, label="b 0: no length normalisation"),
    Case((8, 1, 8, 8, 8), {"k1": 0.0}, label="k1 0: the count does not matter, only whether the word occurs"),
]

register(Exercise(
    name="apps.bm25_term_score",
    cases=_BM25_CASES,
    oracle=_bm25_oracle,
    hint="Two factors. The idf is ln(1 + (num_passages - df + 0.5) / (df + 0.5)), Lucene's version, never "
         "negative. The count factor is tf / (tf + k1 * (1 - b + b * length / average_length)): it saturates as "
         "tf grows, and a long passage needs more occurrences for the same score. Return their product as a float.",
    nudge="idf = ln(1 + (N - df + 0.5) / (df + 0.5)); score = idf * tf / (tf + k1 * (1 - b + b * length / avgdl)).",
    wrong_answers={"uses ln(N / df) for the idf": lambda *a, **k: _bm25_wrong(*a, **k, idf="plain"),
                   "uses Robertson's idf (negative for common words)": lambda *a, **k: _bm25_wrong(*a, **k,
                                                                                                 idf="robertson"),
                   "forgets the saturation (idf * tf)": lambda *a, **k: _bm25_wrong(*a, **k, saturate=False),
                   "forgets the length normalisation": lambda *a, **k: _bm25_wrong(*a, **k, normalise=False)},
))

# --- apps.label_probabilities ----------------------------------------------------------------


def _label_oracle(logprobs, label_ids):
    return prompting.label_distribution(logprobs, label_ids)


def _logprob_case(seed: int, vocab: int, label_ids: list[int], label: str, peaked: float = 1.0) -> Case:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=vocab) * peaked
    logprobs = logits - np.logaddexp.reduce(logits)  # a real next-token distribution, as log-probabilities
    return Case((logprobs, label_ids), label=label)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def _unshifted_softmax(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):  # 0 / 0 is the point of this wrong answer
        return np.exp(x) / np.exp(x).sum()


_LABEL_CASES = [
    _logprob_case(1, 10, [3, 7], "two labels in a vocabulary of 10"),
    _logprob_case(2, 50, [12, 4, 30], "three labels, not in id order"),
    _logprob_case(3, 49152, [4259, 6460], "SmolLM2's vocabulary size, two label words", peaked=3.0),
    _logprob_case(4, 20, [0, 19, 5, 11], "four labels"),
    Case((np.array([-0.5, -1000.0, -1001.0, -2.0]), [1, 2]),
         label="labels the model finds very unlikely (exp underflows to 0 without care)"),
]

register(Exercise(
    name="apps.label_probabilities",
    cases=_LABEL_CASES,
    oracle=_label_oracle,
    hint="Take the log-probabilities at the label ids only, then renormalise over them: a softmax of the "
         "picked log-probabilities, so the result sums to 1. Subtract their maximum before exp (or use "
         "np.logaddexp.reduce), or labels the model finds very unlikely come out as 0 / 0. Return a NumPy "
         "array, one probability per label, in the order of label_ids.",
    nudge="A softmax over logprobs[label_ids] only (subtract the max before exp); the result sums to 1.",
    wrong_answers={"does not renormalise (exp of the picked log-probabilities)":
                   lambda lp, ids: np.exp(lp[ids]),
                   "renormalises without subtracting the maximum": lambda lp, ids: _unshifted_softmax(lp[ids]),
                   "sorts the labels by id": lambda lp, ids: _softmax(lp[sorted(ids)]),
                   "divides the log-probabilities by their sum": lambda lp, ids: lp[ids] / lp[ids].sum(),
                   "a softmax over the whole vocabulary, then picks": lambda lp, ids: _softmax(_softmax(lp))[ids]},
))

# --- apps.reciprocal_rank_fusion -------------------------------------------------------------


def _rrf_oracle(rankings, constant=60):
    everything = {i for ranking in rankings for i in ranking}
    return [(i, s) for i, s in retrieval.reciprocal_rank_fusion(rankings, k=len(everything), constant=constant)]


def _rrf_wrong(rankings, constant=60, *, start=1, shared_only=False, by_rank=False):
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, i in enumerate(ranking, start=start):
            scores[i] = scores.get(i, 0.0) + (-rank if by_rank else 1.0 / (constant + rank))
    if shared_only:
        scores = {i: s for i, s in scores.items() if all(i in r for r in rankings)}
    return sorted(scores.items(), key=lambda item: -item[1])


_RRF_CASES = [
    Case(([["a", "b", "c"], ["c", "a", "d"]],), label="two rankings that share two passages"),
    Case(([["x", "y", "z"]],), label="a single ranking: the fused ranking is the same"),
    Case(([["p1", "p2", "p3", "p4"], ["p4", "p3", "p2", "p1"], ["p2", "p9"]],), label="three rankings, one short"),
    Case(([["a", "b"], ["c", "d"]],), {"constant": 0}, label="no passage in common, constant 0"),
    Case(([["q", "r", "s", "t", "u"], ["u", "v"]],), {"constant": 10}, label="constant 10"),
]

register(Exercise(
    name="apps.reciprocal_rank_fusion",
    cases=_RRF_CASES,
    oracle=_rrf_oracle,
    hint="Each ranking adds 1 / (constant + rank) to the score of every passage in it, the top passage having "
         "rank 1. A passage missing from a ranking gets nothing from it. Return every passage that appears "
         "anywhere as (id, score) pairs, best first; keep the order in which passages are first met for ties "
         "(Python's sorted is stable).",
    nudge="score[id] += 1 / (constant + rank) with ranks from 1, over every ranking; sort by score, best first.",
    wrong_answers={"counts ranks from 0": lambda r, c=60: _rrf_wrong(r, c, start=0),
                   "keeps only passages in every ranking": lambda r, c=60: _rrf_wrong(r, c, shared_only=True),
                   "adds the ranks themselves (Borda-like)": lambda r, c=60: _rrf_wrong(r, c, by_rank=True),
                   "sorts worst first": lambda r, c=60: _rrf_oracle(r, c)[::-1]},
))

# --- apps.cheapest_threshold -----------------------------------------------------------------


def _threshold_oracle(scores, labels, false_positive, false_negative):
    return spam.cheapest_threshold(scores, labels, false_positive, false_negative)


def _threshold_wrong(scores, labels, fp, fn, *, strict=False, lowest=False, with_inf=True):
    s, y = np.asarray(scores, dtype=float), np.asarray(labels)
    candidates = sorted(set(s.tolist())) + ([math.inf] if with_inf else [])
    if not lowest:
        candidates = candidates[::-1]
    best = None
    for t in candidates:
        flagged = (s > t) if strict else (s >= t)
        cost = float(fp * np.sum(flagged & (y == 0)) + fn * np.sum(~flagged & (y == 1)))
        if best is None or cost < best[1]:
            best = (float(t), cost)
    return best


def _threshold_case(seed: int, n: int, fp: float, fn: float, label: str, spam_share: float = 0.3) -> Case:
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < spam_share).astype(int)
    scores = np.clip(rng.normal(0.35 + 0.3 * labels, 0.2), 0, 1).round(3)  # spam scores higher, with overlap
    return Case((scores.tolist(), labels.tolist(), fp, fn), label=label)


_THRESHOLD_CASES = [
    Case(([0.1, 0.4, 0.6, 0.9], [0, 1, 0, 1], 10, 1), label="4 messages, a false positive costing 10"),
    Case(([0.1, 0.4, 0.6, 0.9], [0, 1, 0, 1], 1, 10), label="the same messages, a missed spam costing 10"),
    Case(([0.2, 0.5, 0.5, 0.8], [0, 0, 1, 1], 1, 1), label="a tie of scores at 0.5"),
    Case(([0.3, 0.6], [0, 0], 1, 1), label="no spam at all: flag nothing"),
    _threshold_case(1, 40, 5, 1, "40 messages, costs 5 : 1"),
    _threshold_case(2, 200, 10, 1, "200 messages, costs 10 : 1", spam_share=0.15),
]

register(Exercise(
    name="apps.cheapest_threshold",
    cases=_THRESHOLD_CASES,
    oracle=_threshold_oracle,
    hint="Try as thresholds every distinct score and also float('inf') (flag nothing). At threshold t a message "
         "is called spam when its score >= t; the cost is false_positive times the ham messages flagged plus "
         "false_negative times the spam messages not flagged. Return (threshold, cost) of the cheapest; on equal "
         "costs keep the highest threshold (go through the candidates from high to low and replace only when "
         "strictly cheaper).",
    nudge="Candidates: inf and every score, high to low; spam when score >= t; keep the first strictly cheaper one.",
    wrong_answers={"calls spam only above the threshold (>)": lambda *a: _threshold_wrong(*a, strict=True),
                   "keeps the lowest threshold on ties": lambda *a: _threshold_wrong(*a, lowest=True),
                   "never considers flagging nothing": lambda *a: _threshold_wrong(*a, with_inf=False),
                   "ignores the costs (counts errors)": lambda s, y, fp, fn: _threshold_wrong(s, y, 1, 1)},
))
