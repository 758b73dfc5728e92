"""The Chapter 11 checkers' oracles against hand-worked values and references written here (not the
package's): each checker passes the reference, reports a stub as unwritten and fails every
registered wrong answer."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

import lmcourse.exercises.challenges  # noqa: F401  (registers the chapter's checkers)
from lmcourse.exercises import CHAPTER_MODULES, REGISTRY, evaluate
from lmcourse.exercises.progress import _chapter_number
from tests.exercise_contract import check_exercise_contract

NAMES = ["challenges.weat_effect_size", "challenges.expected_calibration_error", "challenges.canary_exposure",
         "challenges.ngram_overlap"]


def _oracle(name: str):
    return REGISTRY[name].oracle


# --- references written here, independent of the package ----------------------------------------


def _weat_effect_size(X: np.ndarray, Y: np.ndarray, A: np.ndarray, B: np.ndarray) -> float:
    """Cosines one pair at a time; the sample standard deviation written out."""
    def cos(u: np.ndarray, v: np.ndarray) -> float:
        return float(np.dot(u, v) / math.sqrt(np.dot(u, u) * np.dot(v, v)))

    def s(w: np.ndarray) -> float:
        return sum(cos(w, a) for a in A) / len(A) - sum(cos(w, b) for b in B) / len(B)

    s_x, s_y = [s(x) for x in X], [s(y) for y in Y]
    both = s_x + s_y
    mean = sum(both) / len(both)
    std = math.sqrt(sum((v - mean) ** 2 for v in both) / (len(both) - 1))
    return (sum(s_x) / len(s_x) - sum(s_y) / len(s_y)) / std


def _expected_calibration_error(confidences, correct, bins: int = 10) -> float:
    """Each answer into bin min(int(c * bins), bins - 1), then the weighted gaps."""
    groups: dict[int, list[tuple[float, bool]]] = {}
    for c, right in zip(confidences, correct):
        groups.setdefault(min(int(c * bins), bins - 1), []).append((float(c), bool(right)))
    n = len(confidences)
    return sum(len(g) / n * abs(sum(r for _, r in g) / len(g) - sum(c for c, _ in g) / len(g))
               for g in groups.values())


def _canary_exposure(scores: np.ndarray, secret_index: int) -> float:
    true = scores[secret_index]
    rank = 1 + sum(1 for i, score in enumerate(scores) if i != secret_index and score >= true)
    return math.log2(len(scores)) - math.log2(rank)


def _words(text: str) -> list[str]:
    """Lower-cased words with every character that is neither a word character nor a space removed."""
    return re.sub(r"[^\w\s]", "", text.lower()).split()


def _ngram_overlap(text: str, reference: str, n: int = 8) -> float:
    def grams(words: list[str]) -> list[tuple[str, ...]]:
        return list(zip(*(words[i:] for i in range(n))))

    known = set(grams(_words(reference)))
    mine = grams(_words(text))
    return sum(g in known for g in mine) / len(mine)


REFERENCES = {"challenges.weat_effect_size": _weat_effect_size,
              "challenges.expected_calibration_error": _expected_calibration_error,
              "challenges.canary_exposure": _canary_exposure, "challenges.ngram_overlap": _ngram_overlap}


def test_weat_by_hand():
    # s over X: 1 (along A) and 0 (45 degrees); over Y: 0 and -1 (along B); lengths do not matter
    X, Y = np.array([[3.0, 0.0], [2.0, 2.0]]), np.array([[0.5, 0.5], [0.0, 4.0]])
    got = _oracle("challenges.weat_effect_size")(X, Y, np.array([[2.0, 0.0]]), np.array([[0.0, 0.5]]))
    assert got == pytest.approx(1.0 / math.sqrt(2 / 3))  # (0.5 - (-0.5)) / std(1, 0, 0, -1)


def test_ece_by_hand():
    # bins [0, 0.5): 0.2, 0.3, accuracy 1/2, gap 0.25; [0.5, 1]: 0.5, 0.9, 0.7, 1.0, accuracy 3/4, gap 0.025
    got = _oracle("challenges.expected_calibration_error")([0.5, 0.9, 0.2, 0.7, 1.0, 0.3],
                                                           [False, True, False, True, True, True], bins=2)
    assert got == pytest.approx(2 / 6 * 0.25 + 4 / 6 * 0.025)


def test_exposure_by_hand():
    exposure = _oracle("challenges.canary_exposure")
    assert exposure(np.array([-2.0, -1.0, -1.0, -1.0, -5.0]), 1) == pytest.approx(math.log2(5 / 3))  # rank 3
    assert exposure(np.array([-3.0, -1.0, -2.0, -4.0]), 1) == 2.0 and exposure(np.array([-3.0, -1.0]), 0) == 0.0


def test_ngram_overlap_by_hand():
    overlap = _oracle("challenges.ngram_overlap")
    assert overlap("The cat sat on the mat.", "Yesterday the cat sat on a mat", n=3) == 0.5  # 2 of 4
    assert overlap("the the the cat, THE DOG!", "The dog barked", n=1) == pytest.approx(5 / 6)  # repeats count


def test_ece_edges_also_pass_with_linspace_bins():
    """The edge values in the cases land alike whether the bins come from np.linspace or from k / bins."""
    def linspace_ece(confidences, correct, bins=10):
        conf, right = np.asarray(confidences, dtype=float), np.asarray(correct, dtype=float)
        index = np.minimum(np.digitize(conf, np.linspace(0, 1, bins + 1)) - 1, bins - 1)
        return float(sum(np.mean(index == b) * abs(right[index == b].mean() - conf[index == b].mean())
                         for b in range(bins) if np.any(index == b)))

    assert evaluate("challenges.expected_calibration_error", linspace_ece).passed


def test_registered_in_chapter_11():
    assert CHAPTER_MODULES[-1] == "challenges" and _chapter_number("challenges") == "11"
    assert sorted(n for n in REGISTRY if n.startswith("challenges.")) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_reference_passes_stub_unwritten_and_every_wrong_answer_fails(name):
    check_exercise_contract(name, REFERENCES[name])
