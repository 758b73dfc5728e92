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
from collections import Counter
from types import SimpleNamespace

import numpy as np

from lmcourse.apps import chatbot, prompting, retrieval, spam
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

# --- apps.rouge_n (Chapter 9b) ---------------------------------------------------------------


class _Words:
    """rouge-score's tokenizer interface for words already split: the text is split on spaces."""

    def tokenize(self, text: str) -> list[str]:
        return text.split()


def _rouge_oracle(prediction, reference, n):
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer([f"rouge{n}"], tokenizer=_Words())
    return scorer.score(" ".join(reference), " ".join(prediction))[f"rouge{n}"].fmeasure


def _ngrams(words, n):
    return [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]


def _rouge_wrong(prediction, reference, n, *, clip=True, distinct=False, kind="f1"):
    pred, ref = _ngrams(prediction, n), _ngrams(reference, n)
    if distinct:
        pred, ref = sorted(set(pred)), sorted(set(ref))
    if not pred or not ref:
        return 0.0
    overlap = sum((Counter(pred) & Counter(ref)).values()) if clip else sum(gram in ref for gram in pred)
    precision, recall = overlap / len(pred), overlap / len(ref)
    if kind == "precision":
        return precision
    if kind == "recall":
        return recall
    if kind == "mean":
        return (precision + recall) / 2
    return 0.0 if overlap == 0 else 2 * precision * recall / (precision + recall)


def _words(text: str) -> list[str]:
    return text.split()


_ROUGE_CASES = [
    Case((_words("the cat lay on the mat"), _words("the cat sat on the mat"), 1), label="exercise 7 (a): one word changed"),
    Case((_words("the mat sat on the cat"), _words("the cat sat on the mat"), 2), label="the same words, swapped"),
    Case((_words("the cat"), _words("the cat sat on the mat"), 1), label="a short summary: precision 1, recall low"),
    Case((_words("the the the the"), _words("the cat sat on the mat"), 1),
         label="a word repeated more often than in the reference (clipped counts)"),
    Case((_words("a b a b"), _words("a b a b a b"), 2), label="repeated bigrams"),
    Case((_words("the cat"), _words("the cat sat on the mat"), 3), label="trigrams of a summary shorter than 3 words"),
]

register(Exercise(
    name="apps.rouge_n",
    cases=_ROUGE_CASES,
    oracle=_rouge_oracle,
    hint="List the n-grams of both word lists (tuples of n consecutive words; a list shorter than n has none). "
         "Count them with collections.Counter; the overlap is the sum over n-grams of the smaller of the two "
         "counts (a summary that repeats 'the' four times gets credit for as many as the reference holds). "
         "Precision = overlap / predicted n-grams, recall = overlap / reference n-grams, and F1 their harmonic "
         "mean; return 0.0 when the overlap is 0.",
    nudge="overlap = sum((Counter(pred_ngrams) & Counter(ref_ngrams)).values()); F1 = 2PR / (P + R).",
    wrong_answers={"counts every predicted n-gram found in the reference (no clipping)":
                   lambda p, r, n: _rouge_wrong(p, r, n, clip=False),
                   "compares sets of n-grams (ignores repeats)": lambda p, r, n: _rouge_wrong(p, r, n, distinct=True),
                   "returns the recall (ROUGE's original definition)":
                   lambda p, r, n: _rouge_wrong(p, r, n, kind="recall"),
                   "returns the precision": lambda p, r, n: _rouge_wrong(p, r, n, kind="precision"),
                   "averages precision and recall": lambda p, r, n: _rouge_wrong(p, r, n, kind="mean")},
))

# --- apps.exchanges_kept (Chapter 9b) --------------------------------------------------------


class _CharTokens:
    """A tokenizer for counting: every character is one token and the chat template adds nothing, so a
    message of n characters costs n tokens."""

    eos_id = 0

    def apply_chat_template(self, messages, add_generation_prompt=False):
        return "".join(m["content"] for m in messages)

    def encode(self, text):
        return [1] * len(text)


def _kept_oracle(system_tokens, exchange_tokens, question_tokens, context_tokens, reply_tokens):
    """:class:`lmcourse.apps.chatbot.ChatSession`'s own rule, run on messages of the given sizes."""
    model = SimpleNamespace(transformer_config=SimpleNamespace(context_length=context_tokens))
    session = chatbot.ChatSession(model, _CharTokens(), system="s" * system_tokens, context_tokens=context_tokens,
                                  max_reply_tokens=reply_tokens)
    for size in exchange_tokens:  # the question and the answer of each exchange, together `size` tokens
        session.history += [{"role": "user", "content": "u" * (size - size // 2)},
                            {"role": "assistant", "content": "a" * (size // 2)}]
    session._make_room({"role": "user", "content": "q" * question_tokens})
    return len(session.history) // 2


def _kept_wrong(system, exchanges, question, context, reply, *, keep_reply=True, newest_first=True, greedy=False,
                slack=0):
    budget = context - (reply if keep_reply else 0) - system - question + slack
    if greedy:  # keeps every exchange that still fits, skipping a long one in the middle
        kept = 0
        for size in reversed(exchanges):
            if size <= budget:
                budget, kept = budget - size, kept + 1
        return kept
    order = list(reversed(exchanges)) if newest_first else list(exchanges)
    kept = 0
    for size in order:
        if size > budget:
            break
        budget, kept = budget - size, kept + 1
    return kept


_KEPT_CASES = [
    Case((50, [150] * 6, 40, 1000, 200), label="exercise 8: six exchanges of 150, four fit"),
    Case((20, [100, 30, 20], 10, 200, 50), label="the oldest, longest exchange goes"),
    Case((20, [30, 300, 30], 10, 400, 50), label="a long exchange in the middle: it and all older ones go"),
    Case((100, [10, 10], 50, 200, 50), label="only the system prompt and the question fit"),
    Case((1, [50, 20, 40], 9, 150, 30), label="a budget met exactly"),
    Case((1, [51, 20, 40], 9, 150, 30), label="one token over the budget"),
]

register(Exercise(
    name="apps.exchanges_kept",
    cases=_KEPT_CASES,
    oracle=_kept_oracle,
    hint="The reply needs its own room: the budget for the prompt is context_tokens - reply_tokens, and the "
         "system prompt and the new question always stay. Then keep exchanges from the newest backwards while "
         "they fit; the first one that does not fit is dropped together with everything older (a conversation "
         "with a hole in the middle would read as a different conversation). Return how many are kept.",
    nudge="room = context - reply - system - question; walk the exchanges from the newest, stop at the first "
          "that does not fit.",
    wrong_answers={"forgets to leave room for the reply": lambda *a: _kept_wrong(*a, keep_reply=False),
                   "drops the newest exchanges first": lambda *a: _kept_wrong(*a, newest_first=False),
                   "skips a long exchange and keeps older ones": lambda *a: _kept_wrong(*a, greedy=True),
                   "lets the history run one token over the budget": lambda *a: _kept_wrong(*a, slack=1),
                   "drops an exchange that exactly fits": lambda *a: _kept_wrong(*a, slack=-1)},
))
