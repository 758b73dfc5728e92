"""Checkers for Chapter 5 (BERT): mean pooling, the accuracy at ``[MASK]`` positions only, the
copy baseline, and cosine search.

The oracles are trusted references, not the reader's formula restated: mean pooling is
``sentence_transformers.models.Pooling``, the two masked-LM scores are :mod:`lmcourse.mlm_metrics`
(tested on hand-worked cases), and the search is scikit-learn's brute-force cosine
``NearestNeighbors``. The masked batches they are scored on come from the book's
:func:`lmcourse.mlm.mask_tokens`.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from lmcourse.exercises.core import Case, Exercise, register
from lmcourse.mlm import mask_tokens

# --- bert.mean_pool --------------------------------------------------------------------------


def _reference_mean_pool(hidden: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    from sentence_transformers.sentence_transformer.modules import Pooling

    hidden_t = torch.as_tensor(np.asarray(hidden, dtype=float))
    pooling = Pooling(hidden_t.shape[-1], pooling_mode="mean")
    features = {"token_embeddings": hidden_t, "attention_mask": torch.as_tensor(np.asarray(attention_mask))}
    return pooling(features)["sentence_embedding"].numpy()


def _plain_mean(hidden, attention_mask):
    return np.asarray(hidden, dtype=float).mean(axis=1)


def _masked_sum(hidden, attention_mask):
    return (np.asarray(hidden, dtype=float) * np.asarray(attention_mask)[..., None]).sum(axis=1)


def _first_token(hidden, attention_mask):
    return np.asarray(hidden, dtype=float)[:, 0]


def _pool_in_place(hidden, attention_mask):
    hidden *= np.asarray(attention_mask)[..., None]  # changes the caller's array
    return hidden.sum(axis=1) / np.maximum(np.asarray(attention_mask).sum(axis=1, keepdims=True), 1e-9)


def _pool_divides_by_zero(hidden, attention_mask):
    mask = np.asarray(attention_mask, dtype=float)[..., None]  # (B, T, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.asarray(hidden, dtype=float) * mask).sum(axis=1) / mask.sum(axis=1)  # 0 / 0 for an all-padding row


def _mean_pool_cases() -> list[Case]:
    rng = np.random.default_rng(7)
    return [
        Case((np.arange(12.0).reshape(1, 3, 4), np.array([[1, 1, 0]])), label="one sequence of 3 positions, the last padding"),
        Case((rng.normal(size=(2, 5, 6)), np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]])), label="(2, 5, 6), no padding and 3 pads"),
        Case((rng.normal(size=(4, 9, 8)), (np.arange(9)[None] < np.array([[9], [1], [4], [7]])).astype(int)),
             label="(4, 9, 8) with lengths 9, 1, 4, 7"),
        Case((rng.normal(size=(3, 4, 5)), np.array([[1, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]])),
             label="(3, 4, 5) whose second row is all padding: its mean is a vector of zeros, as in sentence-transformers"),
        Case((rng.normal(size=(2, 3, 4)), np.array([[True, True, False], [True, False, False]])),
             label="(2, 3, 4) with a boolean mask"),
    ]


register(Exercise(
    name="bert.mean_pool",
    cases=_mean_pool_cases(),
    oracle=_reference_mean_pool,
    hint="Average each sequence's hidden vectors over its REAL positions only: multiply by the mask (B, T, 1), sum "
         "over T, and divide by the number of real positions (the sum of the mask), not by T; like sentence-transformers, "
         "clamp that number to at least 1e-9, so that an all-padding row gives zeros rather than nan. Return (B, C).",
    wrong_answers={"averages the padding too": _plain_mean, "sums instead of averaging": _masked_sum,
                   "takes the [CLS] vector": _first_token,
                   "changes its input (masks hidden in place)": _pool_in_place,
                   "divides by zero on an all-padding row (nan)": _pool_divides_by_zero},
    nudge="Sum the vectors of the real tokens only and divide by their number (at least 1e-9, as sentence-transformers "
          "does).",
))

# --- bert.mask_accuracy ----------------------------------------------------------------------


def _reference_mask_accuracy(predictions, inputs, labels, mask_id: int) -> float:
    from lmcourse.mlm_metrics import mask_accuracy

    as_ids = functools.partial(torch.as_tensor, dtype=torch.long)
    return mask_accuracy(as_ids(np.asarray(predictions)), as_ids(np.asarray(inputs)), as_ids(np.asarray(labels)),
                         mask_id)


def _accuracy_where(predictions, inputs, labels, mask_id, where: str = "mask", as_count: bool = False):
    predictions, inputs, labels = np.asarray(predictions), np.asarray(inputs), np.asarray(labels)
    scored = labels != -100
    chosen = {"mask": scored & (inputs == mask_id), "scored": scored, "everywhere": np.ones_like(scored),
              "labels": labels == mask_id, "not copied": scored & (inputs != labels)}[where]
    hits = int((predictions == labels)[chosen].sum())
    return hits if as_count else hits / max(int(chosen.sum()), 1)


def _mlm_outputs(seed: int, shape: tuple[int, int], right: float) -> tuple[np.ndarray, ...]:
    """A masked batch (BERT's rule on random ids) and predictions that are right with probability `right`
    at the chosen positions, and copy the input at the unchanged ones."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, 1100, size=shape)
    ids[:, 0], ids[:, -1] = 101, 102  # [CLS] and [SEP]
    inputs, labels = (t.numpy() for t in mask_tokens(torch.from_numpy(ids), mask_id=103, vocab_size=1100,
                                                     special_ids=[101, 102], mask_prob=0.3,
                                                     generator=torch.Generator().manual_seed(seed)))
    predictions = np.where(rng.random(shape) < right, ids, rng.integers(1000, 1100, size=shape))
    predictions = np.where((labels != -100) & (inputs == labels), inputs, predictions)  # a model that copies
    return predictions, inputs, labels


def _mask_accuracy_cases() -> list[Case]:
    by_hand = (np.array([[0, 5, 5, 11, 9, 5, 0]]), np.array([[2, 4, 4, 11, 9, 4, 3]]),
               np.array([[-100, 5, 7, 6, 9, 8, -100]]))
    return [Case((*by_hand, 4), label="by hand: [MASK] at 3 positions (1 right), a random token and an unchanged "
                                      "one (copied): 1/3"),
            *(Case((*_mlm_outputs(seed, shape, right), 103), label=f"BERT's rule on {shape} random ids, a model "
                   f"right {right:.0%} of the time that copies unchanged tokens")
              for seed, shape, right in ((1, (4, 32), 0.3), (2, (8, 64), 0.1), (3, (16, 48), 0.6)))]


register(Exercise(
    name="bert.mask_accuracy",
    cases=_mask_accuracy_cases(),
    oracle=_reference_mask_accuracy,
    hint="Score only the positions that are predicted (labels != -100) AND that the model saw as [MASK] "
         "(inputs == mask_id): the share of them where predictions == labels. At a random or unchanged position "
         "the input differs from, or shows, the answer, so a model that copies its input is right at the "
         "unchanged 10% without any understanding. Return a float (the share, not the count).",
    wrong_answers={"scores every predicted position (the flattering accuracy)":
                   functools.partial(_accuracy_where, where="scored"),
                   "scores every position, -100 ones included": functools.partial(_accuracy_where, where="everywhere"),
                   "looks for mask_id in the labels": functools.partial(_accuracy_where, where="labels"),
                   "scores the positions whose input is not the answer (random tokens too)":
                   functools.partial(_accuracy_where, where="not copied"),
                   "returns the count, not the share": functools.partial(_accuracy_where, as_count=True)},
    nudge="Keep the positions with labels != -100 and inputs == mask_id; return the share of them predicted right.",
))

# --- bert.copy_baseline ----------------------------------------------------------------------


def _reference_copy_baseline(inputs, labels) -> float:
    from lmcourse.mlm_metrics import copy_baseline

    as_ids = functools.partial(torch.as_tensor, dtype=torch.long)
    return copy_baseline(as_ids(np.asarray(inputs)), as_ids(np.asarray(labels)))


def _copy_share(inputs, labels, where: str = "scored", as_count: bool = False):
    inputs, labels = np.asarray(inputs), np.asarray(labels)
    right = inputs == labels
    if where == "unscored count":  # a position that is not predicted "copies" its own token
        right = right | (labels == -100)
    chosen = labels != -100 if where == "scored" else np.ones_like(right)
    return int(right[chosen].sum()) if as_count else float(right[chosen].mean())


def _copy_cases() -> list[Case]:
    cases = [Case((np.array([[2, 4, 4, 11, 9, 4, 3]]), np.array([[-100, 5, 7, 6, 9, 8, -100]])),
                  label="by hand: one unchanged position of five predicted: 0.2")]
    for seed, shape in ((4, (4, 32)), (5, (8, 64)), (6, (2, 200))):
        _, inputs, labels = _mlm_outputs(seed, shape, 0.0)
        cases.append(Case((inputs, labels), label=f"BERT's rule (mask_prob 0.3) on {shape} random ids"))
    return cases


register(Exercise(
    name="bert.copy_baseline",
    cases=_copy_cases(),
    oracle=_reference_copy_baseline,
    hint="The copy baseline answers, at every predicted position (labels != -100), the token the input shows "
         "there. It is right where inputs == labels (the unchanged positions) and never at a [MASK]. Return the "
         "share of predicted positions where it is right, as a float; positions with label -100 do not count at all.",
    wrong_answers={"averages over every position, -100 ones included": functools.partial(_copy_share, where="all"),
                   "counts unpredicted positions as copied right":
                   functools.partial(_copy_share, where="unscored count"),
                   "returns the count, not the share": functools.partial(_copy_share, as_count=True)},
    nudge="Among the positions with labels != -100, the share where inputs == labels.",
))

# --- bert.top_k_cosine -----------------------------------------------------------------------


def _sklearn_top_k(query: np.ndarray, keys: np.ndarray, k: int) -> list[int]:
    from sklearn.neighbors import NearestNeighbors

    search = NearestNeighbors(n_neighbors=k, metric="cosine", algorithm="brute").fit(np.asarray(keys, dtype=float))
    return [int(i) for i in search.kneighbors(np.asarray(query, dtype=float)[None], return_distance=False)[0]]


def _dot_top_k(query, keys, k):
    return [int(i) for i in np.argsort(-(np.asarray(keys) @ np.asarray(query)), kind="stable")[:k]]


def _cosine(query, keys):
    keys, query = np.asarray(keys, dtype=float), np.asarray(query, dtype=float)
    return keys @ query / (np.linalg.norm(keys, axis=1) * np.linalg.norm(query))


def _bottom_k(query, keys, k):
    return [int(i) for i in np.argsort(_cosine(query, keys), kind="stable")[:k]]


def _top_k_unsorted(query, keys, k):
    return sorted(int(i) for i in np.argsort(-_cosine(query, keys), kind="stable")[:k])


def _top_k_normalises_in_place(query, keys, k):
    keys /= np.linalg.norm(keys, axis=1, keepdims=True)  # changes the caller's array
    return [int(i) for i in np.argsort(-(keys @ query), kind="stable")[:k]]


def _top_k_array(query, keys, k):
    return np.argsort(-_cosine(query, keys), kind="stable")[:k]


def _top_k_cases() -> list[Case]:
    rng = np.random.default_rng(11)
    keys = np.array([[1.0, 0.0], [10.0, 10.0], [0.0, 1.0], [0.9, 0.1]])
    cases = [Case((np.array([1.0, 0.0]), keys, 2), label="by hand: query (1, 0) and four keys of different lengths")]
    for n, d, k in ((20, 4, 3), (200, 16, 5), (1000, 32, 10)):
        scale = rng.uniform(0.1, 10.0, size=(n, 1))  # lengths differ, so dot products and cosines disagree
        cases.append(Case((rng.normal(size=d), rng.normal(size=(n, d)) * scale, k), label=f"{n} random keys of size {d}, k={k}"))
    cases.append(Case((np.array([0.0, 1.0]), keys, 4), label="the four keys of the first case, k=4: all of them, in order"))
    return cases


register(Exercise(
    name="bert.top_k_cosine",
    cases=_top_k_cases(),
    oracle=_sklearn_top_k,
    hint="Cosine similarity divides the dot product by BOTH lengths: q.k / (|q| |k|). Compute it for every key, "
         "then return the indices of the k largest, most similar first, as a list of ints.",
    wrong_answers={"dot product without dividing by the lengths": _dot_top_k,
                   "the k least similar": _bottom_k,
                   "the right k, but not most similar first": _top_k_unsorted,
                   "changes its input (normalises the caller's keys)": _top_k_normalises_in_place,
                   "returns a NumPy array, not a list of ints": _top_k_array},
    nudge="Rank by q.k / (|q| |k|), not by the dot product, and return a list of ints, most similar first.",
    rel_tol=0.0, abs_tol=0.0,
))
