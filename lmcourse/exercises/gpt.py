"""Checkers for Chapter 6 (GPT): the bottom-right causal mask of a KV cache; the core the reader
writes (a KV-cache step, the sampling loop) is checked in :mod:`lmcourse.exercises.gpt_core`,
registered on import of this module.

The oracle is a trusted reference, not the reader's formula restated: the mask is read off
PyTorch's attention with its lower-right causal bias (``torch.nn.attention.bias.causal_lower_right``).

>>> _torch_lower_right_mask(2, 4).astype(int).tolist()  # 2 new queries after 2 cached keys
[[1, 1, 1, 0], [1, 1, 1, 1]]
"""

from __future__ import annotations

import numpy as np
import torch

from lmcourse.exercises import gpt_core  # noqa: F401  (registers gpt.kv_cache_step and gpt.sample_tokens)
from lmcourse.exercises.core import Case, Exercise, register

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
