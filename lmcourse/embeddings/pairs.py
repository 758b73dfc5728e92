"""The data of skip-gram (Chapter 3a): the vocabulary, subsampling of frequent words, the noise
distribution, each centre word's window and the (centre, context) pairs, the choices of
word2vec.c (see :mod:`lmcourse.embeddings.skipgram`). NumPy throughout, except the noise draws.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import torch

from lmcourse.text import Vocab

__all__ = ["check_corpus", "build_vocab", "flatten_corpus", "keep_probabilities", "subsample",
           "noise_distribution", "sample_negatives", "draw_windows", "skipgram_pairs"]


def check_corpus(sentences: object) -> list[Sequence[str]]:
    """The sentences as a list of token lists, or a TypeError/ValueError saying what is wrong."""
    if isinstance(sentences, (str, bytes)):
        raise TypeError("expected a list of sentences, each a list of str tokens, got one str; "
                        "tokenize first, e.g. [tok(s) for s in sentences(lines)]")
    out = list(sentences)  # type: ignore[call-overload]
    if not out:
        raise ValueError("the corpus is empty: no sentences given")
    for i, sent in enumerate(out):
        if isinstance(sent, (str, bytes)) or not isinstance(sent, Sequence):
            raise TypeError(f"sentence {i} is a {type(sent).__name__} ({sent!r:.40}), not a list "
                            f"of tokens; tokenize first, e.g. [tok(s) for s in sentences(lines)]")
        for w in sent:
            if not isinstance(w, str):
                raise TypeError(f"sentence {i} holds a token of type {type(w).__name__} "
                                f"({w!r:.40}); tokens must be str")
    if not any(out):
        raise ValueError(f"the corpus is empty: all {len(out)} sentences have no tokens")
    return out


def build_vocab(sentences: Iterable[Sequence[str]], min_count: int = 5) -> tuple[Vocab, np.ndarray]:
    """The words seen at least ``min_count`` times, most frequent first (ties alphabetical),
    and their counts as an int64 array.

    >>> vocab, counts = build_vocab([["a", "b", "a"], ["c", "a", "b"]], min_count=2)
    >>> vocab.get_itos(), counts.tolist()
    (['a', 'b'], [3, 2])
    """
    sents = check_corpus(sentences)
    freq = Counter(w for s in sents for w in s)
    kept = sorted(((w, c) for w, c in freq.items() if c >= min_count), key=lambda x: (-x[1], x[0]))
    if not kept:
        top, top_count = freq.most_common(1)[0]
        raise ValueError(f"the vocabulary is empty: none of the {len(freq)} distinct words occurs "
                         f"min_count={min_count} times (the most frequent, {top!r}, occurs "
                         f"{top_count} times); lower min_count or give more text")
    return Vocab([w for w, _ in kept]), np.array([c for _, c in kept], dtype=np.int64)


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """Probability of keeping each occurrence of a word, word2vec.c's (and gensim's) formula
    ``min(1, (sqrt(f/t) + 1) · t/f)`` with ``f = count / total``; ``sample=0`` keeps all.

    >>> keep_probabilities(np.array([900, 90, 10]), sample=0.01).round(3).tolist()
    [0.117, 0.444, 1.0]
    """
    counts = np.asarray(counts, dtype=np.float64)
    if sample <= 0:
        return np.ones_like(counts)
    f = counts / counts.sum()
    return np.minimum(1.0, (np.sqrt(f / sample) + 1) * sample / f)


def subsample(ids: np.ndarray, keep: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A boolean mask over the tokens ``ids``: token ``i`` is kept with probability
    ``keep[ids[i]]`` (see :func:`keep_probabilities`).

    >>> subsample(np.array([0, 1, 0]), np.array([0.0, 1.0]), np.random.default_rng(0)).tolist()
    [False, True, False]
    """
    return rng.random(len(ids)) < keep[ids]


def noise_distribution(counts: np.ndarray, exponent: float = 0.75) -> np.ndarray:
    """The noise distribution ``count**exponent``, normalised (word2vec's unigram^0.75).

    >>> noise_distribution(np.array([16, 1]), exponent=0.5).tolist()
    [0.8, 0.2]
    """
    weights = np.asarray(counts, dtype=np.float64) ** exponent
    return weights / weights.sum()


def sample_negatives(cumulative: torch.Tensor, shape: tuple[int, ...],
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw word ids of the given shape from the distribution whose cumulative sums are
    ``cumulative`` (V,), by inverting uniform draws (what word2vec's 1e8-entry table does).

    >>> cum = torch.tensor([0.0, 1.0, 1.0])  # all mass on word 1
    >>> sample_negatives(cum, (2, 3)).tolist()
    [[1, 1, 1], [1, 1, 1]]
    """
    uniform = torch.rand(shape, generator=generator, dtype=cumulative.dtype)
    ids = torch.searchsorted(cumulative, uniform, right=True)
    return ids.clamp_(max=len(cumulative) - 1)  # guards against rounding at the top end


def draw_windows(n: int, window: int, rng: np.random.Generator) -> np.ndarray:
    """Each centre word's window, uniform in ``1..window`` (word2vec's ``b = rand % window``)."""
    return rng.integers(1, window + 1, size=n)


def skipgram_pairs(ids: np.ndarray, sentence_ids: np.ndarray, windows: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """All (centre, context) id pairs: token ``i`` pairs with the tokens at distance
    ``1..windows[i]`` on either side that belong to the same sentence.

    Vectorised over tokens: one pass per distance, not one per pair. ``sentence_ids`` must be
    non-decreasing (sentences laid end to end). Pairs come grouped by distance, not in text order.

    >>> ids, sent = np.array([7, 8, 9, 5]), np.array([0, 0, 0, 1])
    >>> c, o = skipgram_pairs(ids, sent, windows=np.array([2, 1, 1, 1]))
    >>> sorted(zip(c.tolist(), o.tolist()))  # 7 sees 9 (window 2), 9 does not see 7
    [(7, 8), (7, 9), (8, 7), (8, 9), (9, 8)]
    """
    ids, sentence_ids, windows = map(np.asarray, (ids, sentence_ids, windows))
    if not ids.shape == sentence_ids.shape == windows.shape or ids.ndim != 1:
        raise ValueError(f"ids, sentence_ids and windows must be 1-D of the same length, got shapes "
                         f"{ids.shape}, {sentence_ids.shape}, {windows.shape}")
    centres, contexts = [], []
    for d in range(1, int(windows.max(initial=0)) + 1):
        same = sentence_ids[d:] == sentence_ids[:-d]  # (N-d,) token i and i+d in one sentence
        right = same & (windows[:-d] >= d)  # centre i sees i+d
        left = same & (windows[d:] >= d)  # centre i+d sees i
        centres += [ids[:-d][right], ids[d:][left]]
        contexts += [ids[d:][right], ids[:-d][left]]
    if not centres:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(centres), np.concatenate(contexts)


def flatten_corpus(sents: list[Sequence[str]], vocab: Vocab) -> tuple[np.ndarray, np.ndarray]:
    """Word ids of the in-vocabulary tokens laid end to end, and each one's sentence number."""
    stoi = vocab.get_stoi()
    ids, sent_ids = [], []
    for n, sent in enumerate(sents):
        row = [stoi[w] for w in sent if w in stoi]
        ids += row
        sent_ids += [n] * len(row)
    return np.array(ids, dtype=np.int64), np.array(sent_ids, dtype=np.int64)

