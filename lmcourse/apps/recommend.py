"""Recommending articles from reading histories (Chapter 9b): simulated readers of the wiki corpus,
three recommenders, and hit rate@k.

There are no reading logs offline, so :func:`simulate_histories` makes them, by a rule stated in
full: each article has a popularity (Zipf weights ``1 / rank ** zipf`` over a seeded random order
of the articles); a reader opens an article drawn by popularity, then at each step either (with
probability `jump`) opens a fresh one drawn by popularity, a new interest, or follows the current
one to one of its `neighbours` most similar unread articles, drawn by popularity. Similar means
cosine of the *tf-idf* vectors of the articles' words (:func:`tfidf_vectors`), never of MiniLM
embeddings, so that the embedding recommender is not scored against its own notion of similarity.
The tf-idf recommender shares the simulator's notion: its score is an optimistic reference, not a
fair competitor. Nobody reads an article twice.

Each reader's last article is held out (:func:`hold_out_last`); a recommender sees the rest and
ranks the unread articles: :class:`PopularityRecommender` (most read in the training histories),
:class:`SimilarityRecommender` (cosine to the mean of the history's article vectors, MiniLM's from
:func:`article_embeddings` or tf-idf's). :func:`hit_rate` is the share of readers whose held-out
article is in the top `k`, with Wilson's interval.

Left out: real logs, implicit feedback and ratings, collaborative filtering (matrix factorisation),
and the ordering of a history (a sequence model would read it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from lmcourse._checks import check_positive_int
from lmcourse.intervals import rate_interval

__all__ = ["tfidf_vectors", "article_embeddings", "simulate_histories", "hold_out_last", "PopularityRecommender",
           "SimilarityRecommender", "hits_at_k", "hit_rate"]


def _unit_rows(vectors: Any, what: str) -> np.ndarray:
    matrix = np.asarray(vectors.detach().cpu() if hasattr(vectors, "detach") else vectors, dtype=np.float64)
    if matrix.ndim != 2 or not matrix.size:
        raise ValueError(f"{what} must be a non-empty (N, D) matrix, one row per article, got shape {matrix.shape}")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)  # (N, 1)
    if (norms == 0).any():
        raise ValueError(f"every row of {what} must be non-zero (a cosine needs a direction)")
    return matrix / norms


def tfidf_vectors(texts: Sequence[str]) -> np.ndarray:
    """Unit-length tf-idf vectors ``(N, V)`` of the articles' words (scikit-learn's English stop words
    dropped, sublinear term frequency, words in at least two articles): what the simulated readers'
    notion of similar articles is built on.

    >>> v = tfidf_vectors(["cats purr and cats nap", "dogs bark, cats purr", "dogs bark and dogs run"])
    >>> (v @ v.T).round(2).tolist()
    [[1.0, 0.68, 0.0], [0.68, 1.0, 0.68], [0.0, 0.68, 1.0]]
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    if isinstance(texts, str) or len(texts) < 2 or not all(isinstance(t, str) for t in texts):
        raise ValueError("texts must be a list of at least two strings, one per article")
    return TfidfVectorizer(stop_words="english", sublinear_tf=True, min_df=2).fit_transform(texts).toarray()


def article_embeddings(articles: Sequence[Sequence[str]], model: Any, tokenizer: Any,
                       max_paragraphs: int | None = 10) -> np.ndarray:
    """One unit vector per article ``(N, C)``: the mean of the MiniLM vectors of its first
    `max_paragraphs` paragraphs (None: all), renormalised. MiniLM reads 256 tokens, about a
    paragraph, so an article is read paragraph by paragraph. `model` and `tokenizer` come from
    :func:`lmcourse.bert.load_minilm`."""
    from lmcourse.bert import sentence_embeddings

    if isinstance(articles, str) or not articles or any(isinstance(a, str) or not a for a in articles):
        raise ValueError("articles must be a non-empty list of articles, each a non-empty list of paragraphs")
    kept = [list(paragraphs[:max_paragraphs]) for paragraphs in articles]
    vectors = sentence_embeddings(model, tokenizer, [p for paragraphs in kept for p in paragraphs])  # (P, C)
    vectors = vectors.cpu().numpy()
    owner = np.repeat(np.arange(len(kept)), [len(paragraphs) for paragraphs in kept])  # (P,): article of each row
    sums = np.zeros((len(kept), vectors.shape[1]))
    np.add.at(sums, owner, vectors)  # (N, C): the sum of each article's paragraph vectors
    return _unit_rows(sums, "the article vectors")


def _draw(rng: np.random.Generator, candidates: np.ndarray, weights: np.ndarray) -> int:
    """One of `candidates`, drawn in proportion to its popularity weight."""
    chosen = weights[candidates]
    return int(candidates[rng.choice(len(candidates), p=chosen / chosen.sum())])


def simulate_histories(titles: Sequence[str], vectors: Any, n_readers: int = 300, min_length: int = 3,
                       max_length: int = 8, neighbours: int = 10, jump: float = 0.2, zipf: float = 1.0,
                       seed: int = 0) -> list[list[str]]:
    """`n_readers` reading histories over the articles `titles`, by the rule of the module's docstring:
    a length uniform in ``[min_length, max_length]``, a first article by popularity, then a jump
    (probability `jump`) or a step to one of the `neighbours` unread articles of highest cosine to the
    current one (rows of `vectors`, e.g. :func:`tfidf_vectors`), each drawn by popularity. Seeded.

    >>> simulate_histories(["a", "b", "c", "d"], np.eye(4) + 0.1, n_readers=2, min_length=2, max_length=3)
    [['a', 'c'], ['c', 'b']]
    """
    unit = _unit_rows(vectors, "vectors")
    if len(titles) != len(unit) or len(set(titles)) != len(titles):
        raise ValueError(f"titles must name each of the {len(unit)} rows of vectors once, got {len(titles)} titles")
    for name, value in (("n_readers", n_readers), ("min_length", min_length), ("neighbours", neighbours)):
        check_positive_int(name, value)
    if not min_length <= max_length <= len(titles):
        raise ValueError(f"need min_length <= max_length <= the number of articles ({len(titles)}), got "
                         f"{min_length} and {max_length}")
    if not 0 <= jump <= 1 or not zipf >= 0:
        raise ValueError(f"jump must be a probability in [0, 1] and zipf >= 0, got {jump} and {zipf}")
    rng = np.random.default_rng(seed)
    popularity = np.empty(len(titles))
    popularity[rng.permutation(len(titles))] = 1.0 / np.arange(1, len(titles) + 1) ** zipf  # (N,): Zipf by rank
    similarity = unit @ unit.T  # (N, D) @ (D, N) -> (N, N): cosines
    histories = []
    for _ in range(n_readers):
        read = [_draw(rng, np.arange(len(titles)), popularity)]
        for _ in range(int(rng.integers(min_length, max_length + 1)) - 1):
            unread = np.setdiff1d(np.arange(len(titles)), read)
            if rng.random() >= jump:  # follow the current article to a similar one
                unread = unread[np.argsort(-similarity[read[-1], unread], kind="stable")[:neighbours]]
            read.append(_draw(rng, unread, popularity))
        histories.append([titles[i] for i in read])
    return histories


def hold_out_last(histories: Sequence[Sequence[str]]) -> tuple[list[list[str]], list[str]]:
    """Each history without its last article, and the last articles: what a recommender sees and
    what it should find.

    >>> hold_out_last([["a", "b", "c"], ["d", "a"]])
    ([['a', 'b'], ['d']], ['c', 'a'])
    """
    if isinstance(histories, str) or not histories:
        raise ValueError("histories must be a non-empty list of histories (lists of article titles)")
    if short := [i for i, h in enumerate(histories) if isinstance(h, str) or len(h) < 2]:
        raise ValueError(f"histories {short[:5]} have fewer than two articles: one to read and one to hold out")
    return [list(h[:-1]) for h in histories], [h[-1] for h in histories]


class _Recommender:
    """Ranks a catalogue of articles for a history by a score per article; read articles are never recommended."""

    def __init__(self, titles: Sequence[str]) -> None:
        if isinstance(titles, str) or not titles or len(set(titles)) != len(titles):
            raise ValueError("titles must be a non-empty list of distinct article titles (the catalogue)")
        self.titles = list(titles)
        self.index = {title: i for i, title in enumerate(self.titles)}

    def _positions(self, history: Sequence[str]) -> list[int]:
        if isinstance(history, str):
            raise TypeError("a history is a list of article titles; for one article give [title]")
        if unknown := [t for t in history if t not in self.index]:
            raise ValueError(f"unknown article(s) {unknown[:5]!r}: a history may name only the catalogue's titles")
        return [self.index[t] for t in history]

    def scores(self, history: Sequence[str]) -> np.ndarray:
        """One score per article of the catalogue ``(N,)``, higher is more recommended."""
        raise NotImplementedError

    def recommend(self, history: Sequence[str], k: int = 10) -> list[str]:
        """The `k` unread articles of highest score, best first (ties: catalogue order); fewer if fewer are unread."""
        check_positive_int("k", k)
        scores = self.scores(history)
        scores[self._positions(history)] = -np.inf  # never recommend what was read
        order = np.argsort(-scores, kind="stable")[: min(k, len(self.titles) - len(set(history)))]
        return [self.titles[i] for i in order]


class PopularityRecommender(_Recommender):
    """The articles read most often in the training histories, whoever the reader. An empty history
    gets the same list (the answer to a new reader, the cold start).

    >>> pop = PopularityRecommender(["a", "b", "c"], [["b", "c"], ["c"]])
    >>> pop.recommend(["c"], k=2), pop.recommend([], k=2)
    (['b', 'a'], ['c', 'b'])
    """

    def __init__(self, titles: Sequence[str], histories: Sequence[Sequence[str]]) -> None:
        super().__init__(titles)
        if isinstance(histories, str) or not histories:
            raise ValueError("histories must be a non-empty list of training histories to count reads in")
        counts = Counter(i for history in histories for i in self._positions(history))
        self.counts = np.array([counts[i] for i in range(len(self.titles))], dtype=np.float64)  # (N,)

    def scores(self, history: Sequence[str]) -> np.ndarray:
        self._positions(history)
        return self.counts.copy()


class SimilarityRecommender(_Recommender):
    """The unread articles whose vectors (MiniLM's or tf-idf's, one row per title) have the highest
    cosine to the mean of the history's unit vectors: what this reader has read so far.

    >>> sim = SimilarityRecommender(["x", "y", "xy"], np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    >>> sim.recommend(["x"], k=2)
    ['xy', 'y']
    """

    def __init__(self, titles: Sequence[str], vectors: Any) -> None:
        super().__init__(titles)
        self.vectors = _unit_rows(vectors, "vectors")  # (N, D)
        if len(self.vectors) != len(self.titles):
            raise ValueError(f"got {len(self.vectors)} vectors for {len(self.titles)} titles: give one row per title")

    def scores(self, history: Sequence[str]) -> np.ndarray:
        positions = self._positions(history)
        if not positions:
            raise ValueError("the history is empty: a similarity recommender needs at least one read article "
                             "(use PopularityRecommender for a new reader)")
        profile = self.vectors[positions].mean(axis=0)  # (H, D) -> (D,)
        return self.vectors @ profile  # (N, D) @ (D,) -> (N,): the cosine times |profile|, same order


def hits_at_k(recommendations: Sequence[Sequence[str]], targets: Sequence[str], k: int) -> np.ndarray:
    """1.0 for each reader whose held-out target is among their first `k` recommendations, else 0.0.

    >>> hits_at_k([["a", "b"], ["c", "d"]], ["b", "a"], k=2).tolist()
    [1.0, 0.0]
    """
    check_positive_int("k", k)
    if isinstance(targets, str) or len(recommendations) != len(targets) or not targets:
        raise ValueError(f"give one list of recommendations per target (a non-empty list of titles), got "
                         f"{len(recommendations)} lists for {len(targets)} targets")
    return np.array([float(t in list(r)[:k]) for r, t in zip(recommendations, targets)])


def hit_rate(recommendations: Sequence[Sequence[str]], targets: Sequence[str], k: int) -> tuple[float, float, float]:
    """Hit rate@k, the share of readers whose held-out article is in their top `k`, with Wilson's 95%
    interval (:func:`lmcourse.intervals.rate_interval`: a hit is a yes or a no, like a right answer):
    (rate, low, high).

    >>> hit_rate([["a", "b"], ["c", "d"], ["a"], ["b"]], ["b", "a", "a", "a"], k=1)[0]
    0.25
    """
    return rate_interval(hits_at_k(recommendations, targets, k) == 1.0)
