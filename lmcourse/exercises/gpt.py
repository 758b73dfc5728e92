"""Checkers for Chapter 6 (GPT): learning BPE merges, softmax with a temperature, the repetition
penalty (``transformers``' form of CTRL's), and the bottom-right causal mask of a KV cache; the
core the reader writes (a KV-cache step, the sampling loop) is checked in
:mod:`lmcourse.exercises.gpt_core`, registered on import of this module.

The oracles are trusted references, not the reader's formula restated: the merges are those
:class:`lmcourse.bpe.BasicBPE` learns (the book's BPE, tested against the ``tokenizers``
library), the temperature and repetition-penalty rules are ``transformers``' own logits
processors (``TemperatureLogitsWarper``, ``RepetitionPenaltyLogitsProcessor``),
and the mask is read off PyTorch's attention with its lower-right causal bias
(``torch.nn.attention.bias.causal_lower_right``).

>>> _torch_lower_right_mask(2, 4).astype(int).tolist()  # 2 new queries after 2 cached keys
[[1, 1, 1, 0], [1, 1, 1, 1]]
>>> _bpe_merges("aaabdaaabac", 3)  # the worked example of Section 6.2: aa, ab, then aa+ab
[(97, 97), (97, 98), (256, 257)]
"""

from __future__ import annotations

import functools
import warnings
from collections import Counter

import numpy as np
import torch

from lmcourse import bpe
from lmcourse.exercises import gpt_core  # noqa: F401  (registers gpt.kv_cache_step and gpt.sample_tokens)
from lmcourse.exercises.core import Case, Exercise, register

# --- gpt.learn_merges ------------------------------------------------------------------------


def _bpe_merges(text: str, num_merges: int) -> list[tuple[int, int]]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a case must not run out of pairs: that would change the question
        tokenizer = bpe.BasicBPE().train(text, 256 + num_merges, special_tokens=(), progress=False)
    return [tuple(pair) for pair in tokenizer.merges]


def _merge_no_skip(ids, pair, new_id):
    """Wrong: after a merge, moves on by one place instead of two, so the pair's second id is kept too."""
    out = []
    for i, token in enumerate(ids):
        out.append(new_id if i + 1 < len(ids) and (token, ids[i + 1]) == tuple(pair) else token)
    return out


def _merge_right_to_left(ids, pair, new_id):
    """Wrong: replaces from the right, so 'aaa' with (a, a) becomes a, new instead of new, a."""
    return bpe.merge(ids[::-1], pair[::-1], new_id)[::-1]


def _learn_merges_wrong(text: str, num_merges: int, *, tie: str = "smallest", merge=bpe.merge,
                        recount_from_text: bool = False, first_id: int = 256) -> list[tuple[int, int]]:
    ids = list(text.encode("utf-8"))
    merges = []
    for k in range(num_merges):
        source = list(text.encode("utf-8")) if recount_from_text else ids
        counts = Counter(zip(source, source[1:]))
        if tie == "first seen":
            pair = max(counts, key=counts.get)  # the first of the most frequent pairs, in the order first seen
        else:
            pair = min(counts, key=lambda p: (-counts[p], p))
        merges.append(pair)
        ids = merge(ids, pair, first_id + k)
    return merges


_MERGE_TEXTS = [
    ("aaabdaaabac", 3, "'aaabdaaabac', 3 merges (the worked example: a tie at the second merge)"),
    ("low lower lowest newer wider", 6, "'low lower lowest newer wider', 6 merges"),
    ("aaaaaaa bbb aaaa", 4, "'aaaaaaa bbb aaaa', 4 merges (runs of one letter: merges must not overlap)"),
    ("zyzyzy xwxwxw zyxw zyxw", 5, "'zyzyzy xwxwxw zyxw zyxw', 5 merges (a tie between pairs seen in a different "
                                   "order than their ids)"),
    ("naïve café, crème brûlée", 4, "'naïve café, crème brûlée', 4 merges (accented letters are two UTF-8 bytes)"),
    ("the cat sat on the mat; the cat ate the rat", 12, "a short sentence, 12 merges"),
]


register(Exercise(
    name="gpt.learn_merges",
    cases=[Case((text, n), label=label) for text, n, label in _MERGE_TEXTS],
    oracle=_bpe_merges,
    hint="Start from the text's UTF-8 bytes. Then, num_merges times: count every adjacent pair of the CURRENT ids "
         "(after the merges so far), take the most frequent pair (on a tie, the smallest pair, comparing (left, right) "
         "as tuples), give it the next new id (256, 257, ...), and replace it in the ids from left to right without "
         "overlaps ('aaa' with (a, a) becomes new, a). Return the pairs in the order they were learned.",
    nudge="Recount the pairs of the CURRENT ids before every merge; a tie goes to the smallest (left, right) pair.",
    wrong_answers={"breaks ties by the pair seen first": functools.partial(_learn_merges_wrong, tie="first seen"),
                   "keeps the second id of each merged pair": functools.partial(_learn_merges_wrong, merge=_merge_no_skip),
                   "merges from right to left": functools.partial(_learn_merges_wrong, merge=_merge_right_to_left),
                   "counts pairs of the original text every time": functools.partial(_learn_merges_wrong,
                                                                                       recount_from_text=True),
                   "numbers new tokens from 255": functools.partial(_learn_merges_wrong, first_id=255),
                   "pairs as NumPy arrays": lambda text, n: [np.array(p) for p in _bpe_merges(text, n)]},
    rel_tol=0.0, abs_tol=0.0,
))

# --- gpt.softmax_with_temperature ------------------------------------------------------------


def _transformers_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    from transformers import TemperatureLogitsWarper

    scores = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    rows = scores.reshape(-1, scores.shape[-1])  # (B, V): the warper works on a batch
    warped = TemperatureLogitsWarper(temperature)(None, rows.clone())
    return torch.softmax(warped, dim=-1).reshape(scores.shape).numpy()


def _temperature_times(logits, temperature):
    z = np.asarray(logits, dtype=float) * temperature
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _temperature_unstable(logits, temperature):
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(np.asarray(logits, dtype=float) / temperature)
        return e / e.sum(axis=-1, keepdims=True)


def _temperature_on_probabilities(logits, temperature):
    z = np.asarray(logits, dtype=float)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    p = e / e.sum(axis=-1, keepdims=True)
    return p / temperature


def _temperature_wrong_axis(logits, temperature):
    z = np.asarray(logits, dtype=float) / temperature
    e = np.exp(z - z.max())
    return e / e.sum()


def _temperature_in_place(logits, temperature):
    logits /= temperature  # changes the caller's array
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _temperature_cases() -> list[Case]:
    rng = np.random.default_rng(6)
    return [
        Case((np.array([2.0, 1.0, 0.0]), 1.0), label="logits [2, 1, 0] at T = 1 (a plain softmax)"),
        Case((np.array([2.0, 1.0, 0.0]), 0.5), label="logits [2, 1, 0] at T = 0.5 (sharper)"),
        Case((np.array([2.0, 1.0, 0.0]), 2.0), label="logits [2, 1, 0] at T = 2 (flatter)"),
        Case((rng.normal(size=50) * 3, 0.7), label="50 random logits at T = 0.7"),
        Case((rng.normal(size=(4, 20)) * 2, 1.5), label="a batch (4, 20) of logits at T = 1.5: one softmax per row"),
        Case((np.array([1000.0, 990.0, 0.0]), 0.1), label="large logits [1000, 990, 0] at T = 0.1 (exp overflows "
                                                            "unless the maximum is subtracted first)"),
    ]


register(Exercise(
    name="gpt.softmax_with_temperature",
    cases=_temperature_cases(),
    oracle=_transformers_temperature,
    hint="DIVIDE the logits by T, then take a softmax along the last axis (each row of a batch on its own). For a "
         "softmax that does not overflow, subtract each row's maximum before np.exp (keepdims=True keeps the shapes "
         "broadcastable); this changes nothing mathematically.",
    wrong_answers={"multiplies the logits by T": _temperature_times,
                   "no maximum subtracted (overflows)": _temperature_unstable,
                   "divides the probabilities by T": _temperature_on_probabilities,
                   "one softmax over the whole batch": _temperature_wrong_axis,
                   "changes its input (divides logits in place)": _temperature_in_place},
    nudge="Divide the logits by T, then a softmax of each row with its maximum subtracted first.",
))

# --- gpt.repetition_penalty ------------------------------------------------------------------


def _transformers_repetition_penalty(logits: np.ndarray, previous_ids: list[int], penalty: float) -> np.ndarray:
    from transformers import RepetitionPenaltyLogitsProcessor

    scores = torch.as_tensor(np.asarray(logits, dtype=np.float64))[None]  # (1, V)
    ids = torch.as_tensor(list(previous_ids), dtype=torch.long)[None]  # (1, S)
    return RepetitionPenaltyLogitsProcessor(penalty)(ids, scores.clone())[0].numpy()


def _penalty_divides_all(logits, previous_ids, penalty):
    out = np.array(logits, dtype=float)
    seen = sorted(set(previous_ids))
    out[seen] = out[seen] / penalty
    return out


def _penalty_per_occurrence(logits, previous_ids, penalty):
    out = np.array(logits, dtype=float)
    for i in previous_ids:
        out[i] = out[i] / penalty if out[i] > 0 else out[i] * penalty
    return out


def _penalty_subtracts(logits, previous_ids, penalty):
    out = np.array(logits, dtype=float)
    seen = sorted(set(previous_ids))
    out[seen] = out[seen] - penalty
    return out


def _penalty_unseen(logits, previous_ids, penalty):
    out = np.array(logits, dtype=float)
    unseen = np.ones(len(out), dtype=bool)
    unseen[list(previous_ids)] = False
    out[unseen] = np.where(out[unseen] > 0, out[unseen] / penalty, out[unseen] * penalty)
    return out


def _penalty_in_place(logits, previous_ids, penalty):
    for i in sorted(set(previous_ids)):
        logits[i] = logits[i] / penalty if logits[i] > 0 else logits[i] * penalty  # changes the caller's array
    return logits


def _repetition_cases() -> list[Case]:
    rng = np.random.default_rng(8)
    return [
        Case((np.array([2.0, -2.0, 2.0, 0.5]), [0, 1], 2.0), label="logits [2, -2, 2, 0.5], ids 0 and 1 seen, "
                                                                  "penalty 2 (by hand)"),
        Case((np.array([1.0, -1.0, 3.0]), [2, 2, 2, 1], 1.5), label="id 2 seen three times, id 1 once, penalty 1.5"),
        Case((np.array([1.0, -1.0, 3.0]), [0, 1, 2], 1.0), label="penalty 1 changes nothing"),
        Case((rng.normal(size=30) * 3, [int(i) for i in rng.integers(0, 30, size=12)], 1.3),
             label="30 random logits, 12 earlier ids with repeats, penalty 1.3"),
        Case((rng.normal(size=100) * 3, [int(i) for i in rng.integers(0, 100, size=40)], 0.8),
             label="100 random logits, penalty 0.8 (< 1: repeats become MORE likely)"),
        Case((np.array([0.0, 2.0, -1.0]), [], 1.5), label="no earlier ids: nothing changes"),
    ]


register(Exercise(
    name="gpt.repetition_penalty",
    cases=_repetition_cases(),
    oracle=_transformers_repetition_penalty,
    hint="Only the ids that occur in previous_ids change, and each changes ONCE however often it occurred. A positive "
         "logit is divided by the penalty, a negative one MULTIPLIED by it (dividing a negative logit would raise it "
         "towards 0 and make the repeat more likely). Work on a float copy: do not change the input.",
    wrong_answers={"divides negative logits too": _penalty_divides_all,
                   "penalises every occurrence": _penalty_per_occurrence,
                   "subtracts the penalty": _penalty_subtracts,
                   "penalises the tokens not seen": _penalty_unseen,
                   "changes its input (penalises logits in place)": _penalty_in_place},
    nudge="Each id seen before changes once: a positive logit divided by the penalty, a negative one multiplied.",
))

# --- gpt.causal_offset_mask ------------------------------------------------------------------


def _torch_lower_right_mask(num_queries: int, num_keys: int) -> np.ndarray:
    """Which keys each query reads, measured through torch's attention with its lower-right causal bias:
    with equal scores and one-hot values, the output's entry (i, j) is 1 / (keys query i reads) if it
    reads key j and 0 otherwise."""
    import torch.nn.functional as F
    from torch.nn.attention.bias import causal_lower_right

    L, S = num_queries, num_keys
    q, k = torch.zeros(1, 1, L, 8, dtype=torch.float64), torch.zeros(1, 1, S, 8, dtype=torch.float64)
    v = torch.eye(S, dtype=torch.float64)[None, None]  # (1, 1, S, S): key j's value is the one-hot vector e_j
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=causal_lower_right(L, S))  # (1, 1, L, S)
    return (out[0, 0] > 0).numpy()


def _mask_top_left(num_queries, num_keys):
    return np.tril(np.ones((num_queries, num_keys), dtype=bool))


def _mask_off_by_one(num_queries, num_keys):
    return np.tril(np.ones((num_queries, num_keys), dtype=bool), k=num_keys - num_queries - 1)


def _mask_blocks_cache(num_queries, num_keys):
    """Wrong: the new queries may read only the new keys (a causal mask on them), not the cached ones."""
    mask = np.zeros((num_queries, num_keys), dtype=bool)
    mask[:, num_keys - num_queries:] = np.tril(np.ones((num_queries, num_queries), dtype=bool))
    return mask


register(Exercise(
    name="gpt.causal_offset_mask",
    cases=[Case((3, 3), label="3 queries, 3 keys (no cache: the ordinary causal mask)"),
           Case((1, 5), label="1 new query after 4 cached keys"),
           Case((2, 4), label="2 new queries after 2 cached keys"),
           Case((3, 8), label="3 new queries after 5 cached keys"),
           Case((6, 7), label="6 new queries after 1 cached key"),
           Case((16, 40), label="16 new queries after 24 cached keys")],
    oracle=_torch_lower_right_mask,
    hint="The L queries are the LAST L of the S positions: query i sits at position S - L + i, and it may read every "
         "key at that position or before, i.e. key j with j <= i + (S - L). Build a boolean array of shape (L, S) "
         "that is True exactly there (np.tril has an argument for a shifted diagonal).",
    nudge="Query i is at position S - L + i and may read every key up to and including that position; return bools.",
    wrong_answers={"aligned top-left (ignores the cache)": _mask_top_left,
                   "hides each query's own key": _mask_off_by_one,
                   "hides the cached keys": _mask_blocks_cache,
                   "a mask of 0.0/1.0 floats, not booleans": lambda L, S: np.tril(np.ones((L, S)), k=S - L),
                   "a mask of 0/1 ints, not booleans": lambda L, S: np.tril(np.ones((L, S), dtype=np.int64), k=S - L)},
    rel_tol=0.0, abs_tol=0.0,
))
