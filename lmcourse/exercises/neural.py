"""Checkers for Chapter 3a (word embeddings and the feed-forward language model): the skip-gram
negative-sampling loss of one pair, the windows of previous tokens a feed-forward model reads, and
nearest neighbours by cosine similarity.

The oracles restate each definition directly with loops and NumPy, independent of
`lmcourse.embeddings` and `lmcourse.feedforward`.
"""

from __future__ import annotations

import math

import numpy as np

from lmcourse.exercises.core import Case, Exercise, register

# --- neural.sgns_loss ------------------------------------------------------------------------


def _log_sigmoid(x: float) -> float:
    """log(1 / (1 + exp(-x))), written so that it neither overflows nor loses precision."""
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


def _sgns_loss(center_vec: np.ndarray, context_vec: np.ndarray, negative_vecs: np.ndarray) -> float:
    v = [float(x) for x in np.asarray(center_vec, dtype=float)]
    dot = lambda u: sum(a * b for a, b in zip(u, v))  # noqa: E731 - a one-line helper
    loss = -_log_sigmoid(dot([float(x) for x in np.asarray(context_vec, dtype=float)]))
    for u in np.asarray(negative_vecs, dtype=float).reshape(-1, len(v)):
        loss -= _log_sigmoid(-dot([float(x) for x in u]))
    return loss


def _sgns_no_minus_on_noise(center_vec, context_vec, negative_vecs):
    v = np.asarray(center_vec, dtype=float)
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    return float(-np.log(sig(context_vec @ v)) - np.log(sig(np.asarray(negative_vecs) @ v)).sum())


def _sgns_mean_over_noise(center_vec, context_vec, negative_vecs):
    v = np.asarray(center_vec, dtype=float)
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    return float(-np.log(sig(context_vec @ v)) - np.log(sig(-(np.asarray(negative_vecs) @ v))).mean())


def _sgns_positive_only(center_vec, context_vec, negative_vecs):
    v = np.asarray(center_vec, dtype=float)
    return float(np.log1p(np.exp(-(context_vec @ v))))


def _sgns_full_softmax(center_vec, context_vec, negative_vecs):
    v = np.asarray(center_vec, dtype=float)
    scores = np.concatenate([[context_vec @ v], np.asarray(negative_vecs) @ v])
    return float(-(scores[0] - np.log(np.exp(scores).sum())))


def _sgns_naive(center_vec, context_vec, negative_vecs):
    v = np.asarray(center_vec, dtype=float)
    with np.errstate(over="ignore", divide="ignore"):
        sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731 - overflows to 0 for large negative x: -log(0) = inf
        return float(-np.log(sig(context_vec @ v)) - np.log(sig(-(np.asarray(negative_vecs) @ v))).sum())


def _sgns_negates_in_place(center_vec, context_vec, negative_vecs):
    negative_vecs *= -1  # changes the caller's array
    v = np.asarray(center_vec, dtype=float)
    return float(np.logaddexp(0, -(context_vec @ v)) + np.logaddexp(0, -(negative_vecs @ v)).sum())


def _sgns_as_array(center_vec, context_vec, negative_vecs):
    return np.array([_sgns_loss(center_vec, context_vec, negative_vecs)])


def _sgns_cases() -> list[Case]:
    rng = np.random.default_rng(3)
    cases = [
        Case((np.array([1.0, 0.5]), np.array([0.5, 1.0]), np.array([[-1.0, 0.0], [0.0, 1.0]])),
             label="the worked example of Section 3a.2: v=(1,0.5), u_o=(0.5,1), noise (-1,0) and (0,1)"),
        Case((np.zeros(3), np.ones(3), np.ones((2, 3))), label="a zero centre vector, two noise words"),
        Case((np.array([2.0, 1.0]), np.array([2.0, 1.0]), np.array([[-1.0, 0.5], [0.3, 0.3], [1.0, -2.0]])),
             label="three noise words in 2-D"),
    ]
    for dim, k in ((5, 5), (50, 15)):
        cases.append(Case((rng.normal(size=dim), rng.normal(size=dim), rng.normal(size=(k, dim))),
                          label=f"random vectors, C={dim}, K={k}"))
    cases.append(Case((np.array([30.0, 0.0]), np.array([-2.0, 0.0]), np.array([[1.0, 0.0]])),
                      label="large scores (the positive score is -60): take care not to overflow"))
    cases.append(Case((np.array([40.0, 0.0]), np.array([-20.0, 0.0]), np.array([[20.0, 0.0], [-1.0, 0.0]])),
                      label="very large scores (-800 for the context word, +800 for a noise word): "
                            "exp(800) overflows, so -log(sigmoid(x)) computed naively gives inf"))
    return cases


register(Exercise(
    name="neural.sgns_loss",
    cases=_sgns_cases(),
    oracle=_sgns_loss,
    nudge="Sum -log σ(u_o·v) and -log σ(-u_k·v) over the noise words, with a form of -log σ that cannot overflow.",
    hint="The loss of one pair is -log σ(u_o·v_c) - Σ_k log σ(-u_k·v_c): the context word's score should be "
         "high, each noise word's score low (note the minus inside σ), and the noise terms are summed, not "
         "averaged. Return one float. np.logaddexp(0, -x) computes -log σ(x) without overflow.",
    wrong_answers={"no minus sign inside σ for the noise words": _sgns_no_minus_on_noise,
                   "noise terms averaged instead of summed": _sgns_mean_over_noise,
                   "only the positive pair": _sgns_positive_only,
                   "softmax over the context and noise words": _sgns_full_softmax,
                   "naive -log(sigmoid(x)): inf at large scores": _sgns_naive,
                   "changes its input (negates negative_vecs in place)": _sgns_negates_in_place,
                   "returns an array of one number, not a float": _sgns_as_array},
))

# --- neural.context_windows ------------------------------------------------------------------


def _context_windows(ids: list[int], n: int, pad_id: int) -> np.ndarray:
    rows = []
    for t in range(len(ids)):
        rows.append([ids[j] if j >= 0 else pad_id for j in range(t - n + 1, t)])
    return np.array(rows, dtype=np.int64).reshape(len(ids), n - 1)


def _windows_include_current(ids, n, pad_id):
    padded = [pad_id] * (n - 2) + list(ids)
    return np.array([padded[t:t + n - 1] for t in range(len(ids))], dtype=np.int64).reshape(len(ids), n - 1)


def _windows_newest_first(ids, n, pad_id):
    return _context_windows(ids, n, pad_id)[:, ::-1]


def _windows_pad_zero(ids, n, pad_id):
    return _context_windows(ids, n, 0)


def _windows_no_padding(ids, n, pad_id):
    out = np.full((len(ids), n - 1), pad_id, dtype=np.int64)
    for t in range(n - 1, len(ids)):
        out[t] = ids[t - n + 1:t]
    return out


def _windows_pads_in_place(ids, n, pad_id):
    ids[:0] = [pad_id] * (n - 1)  # changes the caller's list
    return np.array([ids[t:t + n - 1] for t in range(len(ids) - n + 1)], dtype=np.int64).reshape(-1, n - 1)


def _windows_float(ids, n, pad_id):
    out = np.full((len(ids), n - 1), float(pad_id))  # a float array of ids
    for t in range(len(ids)):
        for j, s in enumerate(range(t - n + 1, t)):
            if s >= 0:
                out[t, j] = ids[s]
    return out


register(Exercise(
    name="neural.context_windows",
    cases=[
        Case(([5, 6, 7, 8], 3, 2), label="ids [5, 6, 7, 8], n=3 (two previous tokens), pad_id=2"),
        Case(([10, 11, 12, 13, 14, 15], 5, 2), label="six ids, n=5, pad_id=2: the first rows are mostly padding"),
        Case(([4, 9], 4, 1), label="two ids, n=4, pad_id=1: shorter than the window"),
        Case(([3, 3, 8, 0, 5], 2, 7), label="n=2 (a bigram context, one column), pad_id=7"),
        Case((list(range(20, 40)), 4, 0), label="twenty ids, n=4, pad_id=0"),
        Case(([6, 7, 8], 4, 1), label="three ids, n=4: as many ids as the window holds"),
    ],
    nudge="Row t holds the n-1 ids BEFORE ids[t], oldest first, padded with pad_id; the result is an integer array.",
    oracle=_context_windows,
    hint="Row t holds the n-1 tokens *before* ids[t] (not ids[t] itself), oldest first, so that the model "
         "predicts ids[t] from it. Where a position would fall before the start of the list, use pad_id. "
         "The result has shape (len(ids), n-1) even when the list is shorter than the window.",
    wrong_answers={"window includes the token to predict": _windows_include_current,
                   "newest token first": _windows_newest_first, "pads with 0, not pad_id": _windows_pad_zero,
                   "first n-1 rows left as padding only": _windows_no_padding,
                   "changes its input (pads the caller's list)": _windows_pads_in_place,
                   "a float array of ids": _windows_float},
))

# --- neural.cosine_most_similar --------------------------------------------------------------


def _cosine_most_similar(matrix: np.ndarray, words: list[str], word: str, k: int) -> list[str]:
    rows = [np.asarray(r, dtype=float) for r in np.asarray(matrix, dtype=float)]
    norm = [math.sqrt(float(r @ r)) for r in rows]
    q = words.index(word)
    scored = []
    for i, r in enumerate(rows):
        if i == q:
            continue
        cos = float(r @ rows[q]) / (norm[i] * norm[q]) if norm[i] and norm[q] else 0.0
        scored.append((-cos, i))
    return [words[i] for _, i in sorted(scored)[:k]]


def _similar_dot_product(matrix, words, word, k):
    m = np.asarray(matrix, dtype=float)
    sims = m @ m[words.index(word)]
    sims[words.index(word)] = -np.inf
    return [words[i] for i in np.argsort(-sims, kind="stable")[:k]]


def _similar_includes_itself(matrix, words, word, k):
    m = np.asarray(matrix, dtype=float)
    m = m / np.linalg.norm(m, axis=1, keepdims=True)
    sims = m @ m[words.index(word)]
    return [words[i] for i in np.argsort(-sims, kind="stable")[:k]]


def _similar_euclidean_unnormalised(matrix, words, word, k):
    m = np.asarray(matrix, dtype=float)
    dist = np.linalg.norm(m - m[words.index(word)], axis=1)
    dist[words.index(word)] = np.inf
    return [words[i] for i in np.argsort(dist, kind="stable")[:k]]


def _similar_normalises_in_place(matrix, words, word, k):
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)  # changes the caller's array
    sims = matrix @ matrix[words.index(word)]
    sims[words.index(word)] = -np.inf
    return [words[i] for i in np.argsort(-sims, kind="stable")[:k]]


def _similar_indices(matrix, words, word, k):
    return [words.index(w) for w in _cosine_most_similar(matrix, words, word, k)]


def _similar_array(matrix, words, word, k):
    return np.array(_cosine_most_similar(matrix, words, word, k))


_WORDS = ["king", "queen", "man", "woman", "paris", "france", "apple"]
_MATRIX = np.array([[0.9, 0.8, 0.1], [0.85, 0.9, 0.2], [3.0, 0.5, 0.2], [0.3, 2.0, 0.2],
                    [0.1, 0.1, 1.0], [0.2, 0.1, 0.9], [5.0, 5.0, 5.0]])


def _similar_cases() -> list[Case]:
    rng = np.random.default_rng(7)
    words = [f"w{i}" for i in range(40)]
    scales = rng.uniform(0.1, 10.0, size=(40, 1))  # rows of very different lengths
    random_matrix = rng.normal(size=(40, 8)) * scales
    return [
        Case((_MATRIX, _WORDS, "king", 2), label="seven 3-D word vectors of different lengths, 'king', k=2"),
        Case((_MATRIX, _WORDS, "paris", 3), label="seven 3-D word vectors, 'paris', k=3"),
        Case((random_matrix, words, "w5", 5), label="40 random 8-D vectors of very different lengths, k=5"),
        Case((random_matrix, words, "w0", 1), label="40 random 8-D vectors, k=1"),
        Case((_MATRIX, _WORDS, "apple", 6), label="seven words, 'apple', k=6: every other word"),
    ]


register(Exercise(
    name="neural.cosine_most_similar",
    cases=_similar_cases(),
    oracle=_cosine_most_similar,
    nudge="Divide each dot product by BOTH vectors' lengths, leave the word itself out, and return a list of str.",
    hint="Cosine similarity is the dot product of the two vectors divided by both lengths, so a long vector "
         "(a frequent word, often) is not everyone's neighbour. Leave the word itself out, and return the k "
         "other words of highest cosine as a list of str, most similar first.",
    wrong_answers={"dot product without normalising": _similar_dot_product,
                   "the word itself is included": _similar_includes_itself,
                   "Euclidean distance of unnormalised vectors": _similar_euclidean_unnormalised,
                   "changes its input (normalises the caller's matrix)": _similar_normalises_in_place,
                   "returns indices, not words": _similar_indices,
                   "returns a NumPy array, not a list": _similar_array},
))
