"""Checkers for Chapter 11 (challenges): the WEAT effect size, the expected calibration error, a
canary's exposure and the n-gram overlap used to detect benchmark contamination.

The oracles are the package's production code: :func:`lmcourse.challenges.weat_effect_size`,
:func:`lmcourse.challenges.expected_calibration_error`, :func:`lmcourse.challenges.canary_rank`
followed by :func:`lmcourse.challenges.exposure`, and :func:`lmcourse.challenges.ngram_overlap`.

>>> _exposure_oracle(np.array([-1.0, -3.0, -1.0, -2.0]), 0)  # a tie at -1.0 ranks the secret 2nd: log2 4 - log2 2
1.0
"""

from __future__ import annotations

import math
import string

import numpy as np

from lmcourse.challenges import (canary_rank, expected_calibration_error, exposure, ngram_overlap, normalized_words,
                                 weat_effect_size)
from lmcourse.exercises.core import Case, Exercise, register

# --- challenges.weat_effect_size ---------------------------------------------------------------


def _word_vectors(rng: np.random.Generator, rows: int, width: int, lean: np.ndarray | None = None) -> np.ndarray:
    """`rows` random vectors of lengths between 0.5 and 3, pushed along `lean` if given."""
    vectors = rng.normal(size=(rows, width)) + (0.0 if lean is None else lean)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True) * rng.uniform(0.5, 3.0, size=(rows, 1))


def _weat_sets(seed: int, width: int, sizes: tuple[int, int, int, int], lean: float = 0.0) -> tuple:
    """X, Y, A, B of the given sizes; X leans towards A's direction and Y towards B's by `lean`."""
    rng = np.random.default_rng(seed)
    a_dir, b_dir = rng.normal(size=width), rng.normal(size=width)
    A = _word_vectors(rng, sizes[2], width, a_dir)
    B = _word_vectors(rng, sizes[3], width, b_dir)
    X = _word_vectors(rng, sizes[0], width, lean * a_dir)
    Y = _word_vectors(rng, sizes[1], width, lean * b_dir)
    return X, Y, A, B


def _weat_in_place(X, Y, A, B):
    """The right effect size, but the caller's word vectors are normalised in place: their data is changed."""
    for vectors in (X, Y, A, B):
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return weat_effect_size(X, Y, A, B)


def _weat_wrong(X, Y, A, B, *, ddof=1, cosine=True, spread="all", standardise=True, flip=False):
    def rows(m):
        m = np.asarray(m, dtype=float)
        return m / np.linalg.norm(m, axis=1, keepdims=True) if cosine else m

    X, Y, A, B = rows(X), rows(Y), rows(A), rows(B)
    s_x = (X @ A.T).mean(1) - (X @ B.T).mean(1)
    s_y = (Y @ A.T).mean(1) - (Y @ B.T).mean(1)
    difference = s_x.mean() - s_y.mean()
    if flip:
        difference = -difference
    if not standardise:
        return float(difference)
    if spread == "x":
        std = np.std(s_x, ddof=ddof)
    elif spread == "pooled":
        std = math.sqrt(((len(s_x) - 1) * np.var(s_x, ddof=1) + (len(s_y) - 1) * np.var(s_y, ddof=1))
                        / (len(s_x) + len(s_y) - 2))
    else:
        std = np.std(np.concatenate([s_x, s_y]), ddof=ddof)
    return float(difference / std)


register(Exercise(
    name="challenges.weat_effect_size",
    cases=[Case((np.array([[3.0, 0.0], [2.0, 2.0]]), np.array([[0.5, 0.5], [0.0, 4.0]]), np.array([[2.0, 0.0]]),
                 np.array([[0.0, 0.5]])), label="2-D: X at 0 and 45 degrees, Y at 45 and 90, A along x, B along y"),
           Case((np.array([[1.0, 0.0], [2.0, 1.0], [1.0, 3.0]]), np.array([[0.0, 2.0], [-1.0, 1.0]]),
                 np.array([[3.0, 1.0], [1.0, 0.0]]), np.array([[0.0, 1.0]])),
                label="2-D, sets of sizes 3, 2, 2 and 1, no vector of length 1"),
           Case(_weat_sets(1, 5, (4, 6, 3, 5)), label="width 5, |X| 4, |Y| 6, |A| 3, |B| 5, no planted lean"),
           Case(_weat_sets(2, 50, (8, 8, 8, 8), lean=0.3), label="width 50, 8 words a set, X leans to A"),
           Case(_weat_sets(3, 20, (3, 5, 6, 2), lean=-0.4), label="width 20, |X| 3, |Y| 5, |A| 6, |B| 2, X leans to B"),
           Case(_weat_sets(4, 10, (7, 2, 2, 4), lean=1.0), label="width 10, |X| 7, |Y| 2, a strong lean")],
    oracle=weat_effect_size,
    hint="Scale every row to length 1 first, so that dot products are cosines. For each target word w "
         "(the rows of X, then of Y), s(w) = mean cosine with the rows of A - mean cosine with the rows of B: "
         "(W @ A.T).mean(1) - (W @ B.T).mean(1). The effect size is (mean of s over X - mean of s over Y) "
         "divided by the sample standard deviation (ddof=1) of s over the words of X and Y together.",
    nudge="(s_x.mean() - s_y.mean()) / np.std(np.concatenate([s_x, s_y]), ddof=1), with s from cosines.",
    wrong_answers={"uses the population standard deviation (ddof=0)": lambda *a: _weat_wrong(*a, ddof=0),
                   "gives the raw difference of means, not divided by the std": lambda *a: _weat_wrong(
                       *a, standardise=False),
                   "uses dot products instead of cosines": lambda *a: _weat_wrong(*a, cosine=False),
                   "takes the std over X's words only": lambda *a: _weat_wrong(*a, spread="x"),
                   "divides by the pooled within-group std (Cohen's d)": lambda *a: _weat_wrong(*a, spread="pooled"),
                   "flips the sign (Y minus X)": lambda *a: _weat_wrong(*a, flip=True),
                   "normalises the caller's vectors in place": _weat_in_place},
))

# --- challenges.expected_calibration_error -----------------------------------------------------


def _answers(seed: int, count: int, skew: float) -> tuple[np.ndarray, np.ndarray]:
    """`count` confidences and outcomes; a right answer has probability confidence ** skew (1: calibrated)."""
    rng = np.random.default_rng(seed)
    confidences = rng.beta(4.0, 1.5, size=count)
    return confidences, rng.random(count) < confidences ** skew


def _ece_bins(confidences, correct, bins, closed_right=False):
    """(mean confidence, accuracy, count) of every non-empty bin."""
    conf, right = np.asarray(confidences, dtype=float), np.asarray(correct, dtype=float)
    edges = np.arange(bins + 1) / bins
    index = np.clip(np.searchsorted(edges, conf, side="left" if closed_right else "right") - 1, 0, bins - 1)
    return [(conf[index == b].mean(), right[index == b].mean(), int(np.sum(index == b)))
            for b in range(bins) if np.any(index == b)]


def _ece_wrong(confidences, correct, bins=10, *, weighted=True, largest=False, closed_right=False, signed=False):
    rows = _ece_bins(confidences, correct, bins, closed_right)
    n = sum(count for _, _, count in rows)
    gaps = [(acc - conf) if signed else abs(acc - conf) for conf, acc, _ in rows]
    if largest:
        return float(max(gaps))
    if not weighted:
        return float(np.mean(gaps))
    return float(sum(count / n * gap for (_, _, count), gap in zip(rows, gaps)))


def _ece_no_bins(confidences, correct, bins=10):
    return float(abs(np.mean(np.asarray(confidences, dtype=float)) - np.mean(np.asarray(correct, dtype=float))))


register(Exercise(
    name="challenges.expected_calibration_error",
    cases=[Case(([0.5, 0.9, 0.2, 0.7, 1.0, 0.3], [False, True, False, True, True, True]), {"bins": 2},
                label="6 answers in 2 bins: 0.5 lies on the edge, 1.0 at the top"),
           Case(([0.4, 0.45, 0.8, 0.85, 0.95, 0.0, 1.0], [True, False, False, True, True, False, True]),
                label="default 10 bins, most of them empty; 0.4 and 0.8 lie on edges, 0.0 and 1.0 at the ends"),
           Case(([0.6, 0.9, 0.75, 0.3], [True, True, False, False]), {"bins": 1},
                label="bins=1: one bin holds every answer"),
           Case(_answers(1, 50, 2.0), {"bins": 5}, label="50 answers of an overconfident model, bins=5"),
           Case(_answers(2, 500, 1.0), label="500 answers of a calibrated model, default 10 bins"),
           Case(_answers(3, 200, 0.4), {"bins": 15}, label="200 answers of an underconfident model, bins=15")],
    oracle=expected_calibration_error,
    hint="Cut [0, 1] into `bins` equal-width bins [k / bins, (k + 1) / bins): a confidence c goes in bin "
         "min(int(c * bins), bins - 1), so a value on an edge joins the bin that starts there and 1.0 the last "
         "bin. For every non-empty bin, take the share of its answers that were right (accuracy) and their "
         "mean confidence; add up |accuracy - mean confidence| weighted by the bin's share of all the answers.",
    nudge="Sum (n_b / n) * |accuracy_b - mean confidence_b| over non-empty bins; bin = min(int(c * bins), bins - 1).",
    wrong_answers={"averages the gaps of the non-empty bins without weighting": lambda *a, **k: _ece_wrong(
                       *a, **k, weighted=False),
                   "gives the largest gap (the maximum calibration error)": lambda *a, **k: _ece_wrong(
                       *a, **k, largest=True),
                   "closes the bins on the right, (low, high]": lambda *a, **k: _ece_wrong(*a, **k, closed_right=True),
                   "adds signed gaps, which cancel": lambda *a, **k: _ece_wrong(*a, **k, signed=True),
                   "ignores the bins: |mean confidence - accuracy| over all answers": _ece_no_bins},
))

# --- challenges.canary_exposure ----------------------------------------------------------------


def _exposure_oracle(scores, secret_index):
    candidates = [f"{i:05d}" for i in range(len(scores))]
    rank = canary_rank(lambda texts: np.asarray(scores, dtype=float), "the secret number is ",
                       candidates[secret_index], candidates)
    return exposure(rank, len(candidates))


def _planted(seed: int, count: int, rank: int) -> tuple[np.ndarray, int]:
    """`count` scores rounded to 0.01 (ties happen), the secret given the `rank`-th highest score."""
    rng = np.random.default_rng(seed)
    scores = np.round(rng.normal(-40.0, 5.0, size=count), 2)
    secret = int(rng.integers(count))
    order = np.argsort(-scores, kind="stable")
    scores[[secret, order[rank - 1]]] = scores[[order[rank - 1], secret]]  # swap the secret's score in
    return scores, secret


def _exposure_wrong(scores, secret_index, *, strict=False, start=1, log=math.log2, ascending=False, rank_only=False):
    scores = np.asarray(scores, dtype=float)
    true = scores[secret_index]
    others = np.delete(scores, secret_index)
    if ascending:
        beats = others <= true
    else:
        beats = others > true if strict else others >= true
    rank = start + int(np.sum(beats))
    if rank_only:
        return log(rank)
    return log(len(scores)) - log(rank)


register(Exercise(
    name="challenges.canary_exposure",
    cases=[Case((np.array([-12.5, -30.1, -3.2, -18.0, -25.4, -9.9, -40.0, -22.7]), 2),
                label="8 candidates, the secret scored highest"),
           Case((np.array([-12.5, -30.1, -3.2, -18.0, -25.4, -9.9, -40.0, -22.7]), 6),
                label="8 candidates, the secret scored lowest"),
           Case((np.array([-2.0, -1.0, -1.0, -1.0, -5.0]), 1), label="5 candidates, the secret tied with 2 others"),
           Case((np.array([-7.5]), 0), label="a single candidate"),
           Case(_planted(1, 10_000, 4), label="10,000 candidates, the secret 4th (scores rounded to 0.01)"),
           Case(_planted(2, 1000, 400), label="1,000 candidates, the secret in the middle")],
    oracle=_exposure_oracle,
    hint="The rank of the secret is 1 plus the number of other candidates that score at least as high "
         "(>=: a tie counts against the secret), so 1 means it is the most likely. The exposure is "
         "log2(number of candidates) - log2(rank): log2 N when the secret ranks first, 0 when it ranks last.",
    nudge="rank = np.sum(scores >= scores[secret_index]); return math.log2(len(scores)) - math.log2(rank).",
    wrong_answers={"counts ties in the secret's favour (>)": lambda *a: _exposure_wrong(*a, strict=True),
                   "starts the rank at 0": lambda *a: _exposure_wrong(*a, start=0),
                   "uses the natural log": lambda *a: _exposure_wrong(*a, log=math.log),
                   "ranks from the lowest score": lambda *a: _exposure_wrong(*a, ascending=True),
                   "returns log2(rank) alone": lambda *a: _exposure_wrong(*a, rank_only=True)},
))

# --- challenges.ngram_overlap ------------------------------------------------------------------

_REFERENCE = ("It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
              "foolishness, it was the epoch of belief, it was the epoch of incredulity.")


def _overlap_wrong(text, reference, n=8, *, words=normalized_words, distinct=False, per_reference=False,
                   characters=False):
    if characters:
        text_w, ref_w = " ".join(normalized_words(text)), " ".join(normalized_words(reference))
    else:
        text_w, ref_w = words(text), words(reference)
    grams = [tuple(text_w[i:i + n]) for i in range(len(text_w) - n + 1)]
    known = {tuple(ref_w[i:i + n]) for i in range(len(ref_w) - n + 1)}
    if distinct:
        grams = list(set(grams))
    shared = sum(g in known for g in grams)
    if per_reference:
        return shared / len([tuple(ref_w[i:i + n]) for i in range(len(ref_w) - n + 1)])
    return shared / len(grams)


def _ascii_words(text):
    words = (w.lower().translate(str.maketrans("", "", string.punctuation)) for w in text.split())
    return [w for w in words if w]


def _words_keep_empty(text):
    return ["".join(c for c in w.lower() if c.isalnum()) for w in text.split()]


register(Exercise(
    name="challenges.ngram_overlap",
    cases=[Case(("The cat sat on the mat.", "Yesterday the cat sat on a mat"), {"n": 3},
                label="n=3: capitals and a full stop, 2 of 4 3-grams shared"),
           Case(("the the the cat, THE DOG!", "The dog barked"), {"n": 1},
                label="n=1: a word repeated in the text"),
           Case(("It was the best of times, it was the worst of times, it was the age of wisdom", _REFERENCE),
                label="default n=8: a sentence found whole in the reference, punctuation and all"),
           Case(("“Don’t go,” she said — it was the age of wisdom, it was the age of wisdom — and left.",
                 "They said: it was the age of wisdom, and dont go."), {"n": 3},
                label="n=3: curly quotes, a lone dash, a 3-gram repeated"),
           Case(("it was the best of times it was the worst of times it was the age of foolishness, "
                 "and of nothing else at all", _REFERENCE), {"n": 13},
                label="n=13: a long passage whose first 13-grams the reference holds"),
           Case(("Colorless green ideas sleep furiously, said the linguist in nineteen fifty seven.", _REFERENCE),
                label="default n=8: nothing shared")],
    oracle=ngram_overlap,
    hint="Turn each text into words: split on whitespace, lower-case each word, remove every punctuation "
         "character (unicodedata.category(c) starts with 'P', which covers curly quotes and dashes) and drop "
         "words left empty. The n-grams are the tuples words[i:i + n]. Put the reference's n-grams in a set, "
         "then count how many of the text's n-grams, repeats included, are in it, and divide by the number "
         "of the text's n-grams.",
    nudge="grams = [tuple(w[i:i + n]) for i in range(len(w) - n + 1)]; "
          "return sum(g in reference_set for g in grams) / len(grams).",
    wrong_answers={"counts distinct n-grams, not repeats": lambda *a, **k: _overlap_wrong(*a, **k, distinct=True),
                   "neither lower-cases nor removes punctuation": lambda *a, **k: _overlap_wrong(
                       *a, **k, words=str.split),
                   "removes only ASCII punctuation": lambda *a, **k: _overlap_wrong(*a, **k, words=_ascii_words),
                   "keeps the empty words a lone dash leaves": lambda *a, **k: _overlap_wrong(
                       *a, **k, words=_words_keep_empty),
                   "compares character n-grams": lambda *a, **k: _overlap_wrong(*a, **k, characters=True),
                   "divides by the reference's n-gram count": lambda *a, **k: _overlap_wrong(
                       *a, **k, per_reference=True)},
))
