"""Search over a collection of passages (Chapter 9): exact nearest neighbours of sentence
embeddings, BM25 over words, and the two measures of a ranking that the chapter reports.

- :class:`EmbeddingIndex` keeps one unit vector per passage and answers a query with the `k`
  passages of highest cosine similarity, by one matrix product: exact, and fast enough for the
  thousands of passages of this book (an approximate index, such as FAISS's, pays off at millions).
- :class:`BM25Index` ranks by BM25 (Robertson & Zaragoza, 2009) in Lucene's form, computed by the
  ``bm25s`` package: for each query word ``t`` in passage ``d``,
  ``idf(t) * tf / (tf + k1 * (1 - b + b * |d| / avgdl))`` with ``idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5))``.
  Words are runs of two or more letters or digits, lower-cased, with no stop words removed and no
  stemming, so the score can be checked by hand.
- :func:`reciprocal_rank_fusion` merges rankings (BM25's and the embeddings') into one: hybrid search.
- :func:`recall_at_k` and :func:`reciprocal_rank` score one ranked list against the set of relevant
  passage ids; averaged over queries they give recall@k and the mean reciprocal rank (MRR).

Left out: approximate search, re-ranking with a cross-encoder, and query expansion.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lmcourse._checks import check_int

__all__ = ["Hit", "EmbeddingIndex", "BM25Index", "reciprocal_rank_fusion", "recall_at_k", "reciprocal_rank"]

Hit = tuple[str, float]  # (passage id, score), best first in a ranking


def _check_ids(ids: Sequence[str], n: int, what: str) -> list[str]:
    if isinstance(ids, str) or not all(isinstance(i, str) for i in ids):
        raise TypeError(f"ids must be a list of strings, one per {what}")
    if len(ids) != n:
        raise ValueError(f"got {len(ids)} ids for {n} {what}s: give one id per {what}")
    if len(set(ids)) != len(ids):
        raise ValueError("ids must be unique: a ranking names each passage once")
    return list(ids)


def _check_k(k: Any, size: int) -> int:
    check_int("k", k, 1)
    return min(k, size)


class EmbeddingIndex:
    """Exact top-k search by cosine similarity over fixed passage vectors ``(N, C)``.

    >>> index = EmbeddingIndex(np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]]), ["x", "diagonal", "y"])
    >>> [(i, round(s, 2)) for i, s in index.search(np.array([0.0, 2.0]), k=2)]
    [('y', 1.0), ('diagonal', 0.8)]
    """

    def __init__(self, vectors: Any, ids: Sequence[str]) -> None:
        matrix = np.asarray(vectors.detach().cpu() if hasattr(vectors, "detach") else vectors, dtype=np.float32)
        if matrix.ndim != 2 or not matrix.size:
            raise ValueError(f"vectors must be a non-empty matrix (N, C), one row per passage, got shape "
                             f"{matrix.shape}; an index needs at least one passage")
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)  # (N, 1)
        if not np.isfinite(matrix).all() or (norms == 0).any():
            raise ValueError("every passage vector must be finite and non-zero (a cosine needs a direction)")
        self.ids = _check_ids(ids, len(matrix), "passage")
        self.vectors = matrix / norms  # (N, C), unit rows: a dot product is a cosine

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, query: Any, k: int = 10) -> list[Hit]:
        """The `k` passages most similar to one query vector ``(C,)``, best first."""
        return self.search_many(np.asarray(query, dtype=np.float32)[None], k)[0]

    def search_many(self, queries: Any, k: int = 10) -> list[list[Hit]]:
        """:meth:`search` for each row of ``(Q, C)`` query vectors, in one matrix product."""
        q = np.asarray(queries.detach().cpu() if hasattr(queries, "detach") else queries, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.vectors.shape[1]:
            raise ValueError(f"queries must be (Q, C={self.vectors.shape[1]}), as the passage vectors, got "
                             f"shape {q.shape}; embed them with the same model")
        k = _check_k(k, len(self))
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)  # (Q, C)
        scores = q @ self.vectors.T  # (Q, C) @ (C, N) -> (Q, N)
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]  # (Q, k): ties go to the earlier passage
        return [[(self.ids[j], float(row[j])) for j in order] for row, order in zip(scores, top)]


class BM25Index:
    """BM25 ranking of passages (Lucene's variant, through ``bm25s``), with ``bm25s``'s default
    ``k1 = 1.5`` and ``b = 0.75`` (Lucene and Elasticsearch use ``k1 = 1.2``).

    >>> index = BM25Index(["the cat purrs", "the dog barks", "a cat and a dog"], ["c", "d", "cd"])
    >>> [i for i, _ in index.search("which cat purrs?", k=2)]
    ['c', 'cd']
    """

    TOKEN_PATTERN = r"(?u)\b\w\w+\b"  # runs of two or more word characters, as scikit-learn and bm25s

    def __init__(self, texts: Sequence[str], ids: Sequence[str], k1: float = 1.5, b: float = 0.75) -> None:
        import bm25s

        if isinstance(texts, str) or not texts or not all(isinstance(t, str) for t in texts):
            raise ValueError("texts must be a non-empty list of strings: an index needs at least one passage")
        self.ids = _check_ids(ids, len(texts), "passage")
        self.k1, self.b = k1, b
        self._bm25 = bm25s.BM25(k1=k1, b=b, method="lucene")
        self._bm25.index(self._tokenize(texts), show_progress=False)

    def _tokenize(self, texts: Sequence[str]) -> Any:
        import bm25s

        return bm25s.tokenize(list(texts), lower=True, token_pattern=self.TOKEN_PATTERN, stopwords=None,
                              show_progress=False, allow_empty=True)

    def __len__(self) -> int:
        return len(self.ids)

    def scores(self, query: str) -> np.ndarray:
        """The BM25 score of every passage for `query`, ``(N,)``: 0 where no query word occurs."""
        words = self._tokenize([query])
        vocabulary = {i: w for w, i in words.vocab.items()}
        return np.asarray(self._bm25.get_scores([vocabulary[i] for i in words.ids[0]]), dtype=np.float64)

    def search(self, query: str, k: int = 10) -> list[Hit]:
        """The `k` passages with the highest BM25 score for `query`, best first (ties: earlier passage)."""
        if not isinstance(query, str):
            raise TypeError(f"query must be a string, got {type(query).__name__}")
        k = _check_k(k, len(self))
        scores = self.scores(query)
        top = np.argsort(-scores, kind="stable")[:k]
        return [(self.ids[j], float(scores[j])) for j in top]


def reciprocal_rank_fusion(rankings: Sequence[Sequence[Hit] | Sequence[str]], k: int = 10,
                           constant: float = 60.0) -> list[Hit]:
    """One ranking from several (Cormack, Clarke & Büttcher, 2009): a passage scores
    ``sum(1 / (constant + rank))`` over the rankings it appears in (rank from 1), so a passage
    near the top of either list rises, and scores on different scales (BM25's, cosines) need no
    calibration. Best first, ties to the passage met first; the top `k`.

    >>> [i for i, _ in reciprocal_rank_fusion([["a", "b", "c"], ["c", "a", "d"]], k=3)]
    ['a', 'c', 'b']
    """
    if not rankings:
        raise ValueError("rankings must hold at least one ranking")
    if not constant >= 0:
        raise ValueError(f"constant must be >= 0 (60 in the paper), got {constant!r}")
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, passage_id in enumerate(_ranked_ids(ranking), start=1):
            scores[passage_id] = scores.get(passage_id, 0.0) + 1.0 / (constant + rank)
    k = _check_k(k, max(len(scores), 1))
    return sorted(scores.items(), key=lambda item: -item[1])[:k]  # sorted() is stable: ties keep first-met order


def _ranked_ids(ranking: Sequence[Hit] | Sequence[str]) -> list[str]:
    return [item if isinstance(item, str) else item[0] for item in ranking]


def recall_at_k(ranking: Sequence[Hit] | Sequence[str], relevant: set[str] | frozenset[str], k: int) -> float:
    """The share of the relevant passages found among the first `k` of a ranking.

    >>> recall_at_k(["a", "b", "c"], {"c", "z"}, k=3)
    0.5
    """
    if not relevant:
        raise ValueError("relevant must name at least one passage: recall is undefined without one")
    k = _check_k(k, max(len(ranking), 1))
    return len(set(_ranked_ids(ranking)[:k]) & set(relevant)) / len(relevant)


def reciprocal_rank(ranking: Sequence[Hit] | Sequence[str], relevant: set[str] | frozenset[str]) -> float:
    """1 / (the rank of the first relevant passage), or 0 if the ranking has none.

    >>> reciprocal_rank(["a", "b", "c"], {"b"})
    0.5
    """
    if not relevant:
        raise ValueError("relevant must name at least one passage")
    for rank, passage_id in enumerate(_ranked_ids(ranking), start=1):
        if passage_id in relevant:
            return 1.0 / rank
    return 0.0
