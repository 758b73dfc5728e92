"""The Chapter 9 checkers' oracles against hand-worked values and formulas written here; that each
checker passes a reference written here, reports a stub as unwritten and fails every registered
wrong answer."""

import math

import numpy as np
import pytest

import lmcourse.exercises.apps  # noqa: F401  (registers the chapter's checkers)
from lmcourse.exercises import REGISTRY
from lmcourse.exercises.apps import _bm25_collection
from lmcourse.exercises.progress import _chapter_number
from tests.exercise_contract import check_exercise_contract

NAMES = ["apps.bm25_term_score", "apps.label_probabilities", "apps.reciprocal_rank_fusion", "apps.cheapest_threshold",
         "apps.rouge_n", "apps.exchanges_kept"]


def _oracle(name):
    return REGISTRY[name].oracle


# --- references written here, independent of the package ----------------------------------------


def _bm25_term_score(tf, df, num_passages, length, average_length, k1=1.5, b=0.75):
    idf = math.log(1 + (num_passages - df + 0.5) / (df + 0.5))
    return idf * tf / (tf + k1 * (1 - b + b * length / average_length))


def _label_probabilities(logprobs, label_ids):
    picked = np.array([logprobs[i] for i in label_ids], dtype=float)
    shifted = np.exp(picked - picked.max())
    return shifted / shifted.sum()


def _reciprocal_rank_fusion(rankings, constant=60):
    order, scores = [], {}
    for ranking in rankings:
        for position, passage in enumerate(ranking):
            if passage not in scores:
                order.append(passage)
                scores[passage] = 0.0
            scores[passage] += 1 / (constant + position + 1)
    return sorted(((p, scores[p]) for p in order), key=lambda item: -item[1])


def _cheapest_threshold(scores, labels, false_positive, false_negative):
    best_t, best_cost = math.inf, false_negative * sum(labels)
    for t in sorted(set(scores), reverse=True):
        cost = sum(false_positive for s, y in zip(scores, labels) if s >= t and y == 0) + sum(
            false_negative for s, y in zip(scores, labels) if s < t and y == 1)
        if cost < best_cost:
            best_t, best_cost = t, cost
    return float(best_t), float(best_cost)


def _rouge_n(prediction, reference, n):
    def grams(words):
        return [" ".join(words[i:i + n]) for i in range(len(words) - n + 1)]
    predicted, wanted = grams(prediction), grams(reference)
    remaining, overlap = list(wanted), 0
    for gram in predicted:  # each reference n-gram can be matched once
        if gram in remaining:
            remaining.remove(gram)
            overlap += 1
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(predicted), overlap / len(wanted)
    return 2 * precision * recall / (precision + recall)


def _exchanges_kept(system_tokens, exchange_tokens, question_tokens, context_tokens, reply_tokens):
    room = context_tokens - reply_tokens - system_tokens - question_tokens
    kept = 0
    for size in reversed(exchange_tokens):
        if size > room:
            break
        room -= size
        kept += 1
    return kept


REFERENCES = {"apps.bm25_term_score": _bm25_term_score, "apps.label_probabilities": _label_probabilities,
              "apps.reciprocal_rank_fusion": _reciprocal_rank_fusion, "apps.cheapest_threshold": _cheapest_threshold,
              "apps.rouge_n": _rouge_n, "apps.exchanges_kept": _exchanges_kept}


def test_bm25_oracle_reads_a_real_collection_and_equals_the_formula():
    for case in REGISTRY["apps.bm25_term_score"].cases:
        tf, df, n, length, average = case.args
        texts = _bm25_collection(tf, df, n, length, average)
        assert len(texts) == n and texts[0].split().count("term") == tf and len(texts[0].split()) == length
        assert sum("term" in t.split() for t in texts) == df and sum(len(t.split()) for t in texts) == n * average
        assert _oracle("apps.bm25_term_score")(*case.args, **case.kwargs) == pytest.approx(
            _bm25_term_score(*case.args, **case.kwargs), rel=1e-5)  # bm25s stores float32 scores


def test_label_probabilities_by_hand():
    got = _oracle("apps.label_probabilities")(np.log([0.1, 0.3, 0.2, 0.4]), [3, 1])
    np.testing.assert_allclose(got, [0.4 / 0.7, 0.3 / 0.7])
    underflow = next(c for c in REGISTRY["apps.label_probabilities"].cases if "underflow" in c.label)
    np.testing.assert_allclose(_oracle("apps.label_probabilities")(*underflow.args), [math.e / (1 + math.e), 1 / (1 + math.e)])


def test_fusion_and_threshold_by_hand():
    fused = _oracle("apps.reciprocal_rank_fusion")([["a", "b", "c"], ["c", "a", "d"]])
    assert [p for p, _ in fused] == ["a", "c", "b", "d"]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)
    assert _oracle("apps.cheapest_threshold")([0.1, 0.4, 0.6, 0.9], [0, 1, 0, 1], 10, 1) == (0.9, 1.0)


def test_rouge_and_memory_by_hand():
    cat, swapped = "the cat sat on the mat".split(), "the mat sat on the cat".split()
    assert _oracle("apps.rouge_n")("the cat lay on the mat".split(), cat, 1) == pytest.approx(5 / 6)  # exercise 7
    assert _oracle("apps.rouge_n")("the cat lay on the mat".split(), cat, 2) == pytest.approx(0.6)
    assert _oracle("apps.rouge_n")(swapped, cat, 1) == pytest.approx(1.0)
    assert _oracle("apps.rouge_n")(swapped, cat, 2) == pytest.approx(0.8)
    # exercise 8: 1000 tokens, 200 for the reply, a 50-token system prompt, exchanges of 150, a 40-token question
    assert _oracle("apps.exchanges_kept")(50, [150] * 6, 40, 1000, 200) == 4


def test_chapter_label():
    assert _chapter_number("apps") == "9"


@pytest.mark.parametrize("name", NAMES)
def test_reference_passes_stub_unwritten_and_every_wrong_answer_fails(name):
    check_exercise_contract(name, REFERENCES[name])
