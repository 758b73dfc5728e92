"""Probing word vectors (Chapter 3a): nearest neighbours, similarity, analogies (3CosAdd, as
gensim's ``evaluate_word_analogies``), a 2-D picture, and how far two vector spaces agree.

:class:`WordVectors` wraps the vectors of :func:`lmcourse.embeddings.train_skipgram` and gensim's
alike, so both are probed with the same code. Shape letters: ``V`` words, ``C`` the vector width.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lmcourse.embeddings.labels import place_labels
from lmcourse.text import Vocab

__all__ = ["UnknownWordError", "WordVectors", "from_gensim", "neighbour_agreement", "AnalogyResult",
           "analogy_accuracy"]


class UnknownWordError(KeyError):
    """A word has no vector."""

    def __init__(self, word: str, min_count: int | None = None) -> None:
        hint = (f"it occurred fewer than min_count={min_count} times in training, or never; "
                if min_count is not None else "it was rare or absent in training; ")
        super().__init__(f"no vector for {word!r}: {hint}lower min_count, train on more text, or "
                         f"check the spelling and case (`word in vectors` tests it)")
        self.word = word

    def __str__(self) -> str:
        return str(self.args[0])


class WordVectors:
    """Unit-length word vectors with the probes the book uses: neighbours, similarity, analogies.

    ``matrix`` is the (V, C) float32 numpy array of L2-normalised rows (all-zero rows stay zero),
    in the order of ``words``. Wraps gensim's vectors too (:meth:`from_gensim`), so both are
    probed with the same code.

    >>> wv = WordVectors(["a", "b", "c"], np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 2.0]]))
    >>> [(w, round(s, 3)) for w, s in wv.most_similar("a", k=2)]
    [('b', 0.8), ('c', 0.0)]
    """

    def __init__(self, words: Sequence[str] | Vocab, vectors: np.ndarray,
                 counts: np.ndarray | None = None, min_count: int | None = None) -> None:
        self.vocab = words if isinstance(words, Vocab) else Vocab(list(words))
        self.words: list[str] = self.vocab.get_itos()
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(self.words):
            raise ValueError(f"vectors must be a (V, C) array with V = {len(self.words)} words, "
                             f"got shape {vectors.shape}")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)  # (V, 1)
        self.matrix: np.ndarray = vectors / np.where(norms > 0, norms, 1)  # (V, C)
        self.counts = None if counts is None else np.asarray(counts)
        self.min_count = min_count
        self._stoi = self.vocab.get_stoi()
        self.loss_history: list[float] = []
        self.seconds: float | None = None
        self.config: Any = None  # the SkipGramConfig that trained them, if any

    @classmethod
    def from_gensim(cls, keyed_vectors: object) -> WordVectors:
        """Wrap gensim's ``KeyedVectors`` (or a ``Word2Vec`` model, via its ``.wv``), keeping
        its word order, so that ``restrict_vocab`` means the same frequent words in both."""
        kv = getattr(keyed_vectors, "wv", keyed_vectors)
        if not hasattr(kv, "index_to_key") or not hasattr(kv, "vectors"):
            raise TypeError(f"expected gensim KeyedVectors or Word2Vec, got {type(keyed_vectors).__name__}")
        words = list(kv.index_to_key)
        counts = None
        if words and "count" in getattr(kv, "expandos", {}):
            counts = np.asarray(kv.expandos["count"])
        return cls(words, np.asarray(kv.vectors), counts=counts)

    # --- lookups ---
    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and word in self._stoi

    @property
    def dim(self) -> int:
        return self.matrix.shape[1]

    def index(self, word: str) -> int:
        """The row of ``word``, or :class:`UnknownWordError`."""
        if not isinstance(word, str):
            raise TypeError(f"words are str, got {type(word).__name__}: {word!r:.40}")
        try:
            return self._stoi[word]
        except KeyError:
            raise UnknownWordError(word, self.min_count) from None

    def vector(self, word: str) -> np.ndarray:
        """The unit vector of ``word`` (C,)."""
        return self.matrix[self.index(word)]

    # --- probes ---
    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two words."""
        return float(self.vector(a) @ self.vector(b))

    def _top(self, query: np.ndarray, exclude: Sequence[int], k: int, limit: int | None = None
             ) -> list[tuple[str, float]]:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        sims = self.matrix[:limit] @ query  # (V, C) @ (C,) -> (V,)
        sims[[i for i in exclude if i < len(sims)]] = -np.inf
        k = min(k, len(sims) - len(set(exclude)))
        top = np.argpartition(-sims, k - 1)[:k] if k < len(sims) else np.arange(len(sims))
        top = top[np.argsort(-sims[top], kind="stable")][:k]
        return [(self.words[i], float(sims[i])) for i in top]

    def most_similar(self, word: str, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` words of highest cosine similarity to ``word`` (itself excluded), best first."""
        i = self.index(word)
        return self._top(self.matrix[i], [i], k)

    def analogy(self, a: str, b: str, c: str, k: int = 1) -> list[tuple[str, float]]:
        """"a is to b as c is to ?" by 3CosAdd: the words nearest to ``b - a + c`` (unit
        vectors), the three inputs excluded. Scores are cosines with the normalised query.

        >>> wv = WordVectors(["man", "king", "woman", "queen"],
        ...                  np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 1, 1]]))
        >>> wv.analogy("man", "king", "woman")[0][0]
        'queen'
        """
        ia, ib, ic = self.index(a), self.index(b), self.index(c)
        query = self.matrix[ib] - self.matrix[ia] + self.matrix[ic]  # (C,)
        query = query / max(float(np.linalg.norm(query)), 1e-12)
        return self._top(query, [ia, ib, ic], k)

    # --- pictures ---
    def project_2d(self, words: Sequence[str]) -> np.ndarray:
        """PCA of the given words' vectors: centre them, project on the top two right singular
        vectors (numpy SVD). Returns (N, 2)."""
        if isinstance(words, str):
            raise TypeError("project_2d takes a list of words, got one str")
        x = self.matrix[[self.index(w) for w in words]]  # (N, C)
        if len(x) < 2:
            raise ValueError(f"project_2d needs at least 2 words, got {len(x)}")
        x = x - x.mean(axis=0)  # (N, C)
        _, _, vt = np.linalg.svd(x, full_matrices=False)  # vt: (min(N, C), C)
        out = x @ vt[:2].T  # (N, C) @ (C, 2) -> (N, 2)
        if out.shape[1] < 2:  # two words in one dimension
            out = np.pad(out, ((0, 0), (0, 2 - out.shape[1])))
        return out

    def plot_2d(self, words: Sequence[str], ax: object = None, fontsize: float = 8) -> object:
        """Scatter the words at :meth:`project_2d`'s coordinates, each labelled without overlaps
        (:func:`lmcourse.embeddings.labels.place_labels`: fix the figure's layout first); returns the axes."""
        import matplotlib.pyplot as plt

        xy = self.project_2d(words)
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 5))
        ax.scatter(xy[:, 0], xy[:, 1], s=12)
        ax.margins(0.12)  # room for the labels of the outermost points
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
        place_labels(ax, xy, list(words), fontsize=fontsize)
        return ax

    def __repr__(self) -> str:
        head = ", ".join(repr(w) for w in self.words[:5]) + (", ..." if len(self) > 5 else "")
        return f"WordVectors(size={len(self)}, dim={self.dim}, words=[{head}])"


from_gensim = WordVectors.from_gensim


def neighbour_agreement(a: WordVectors, b: WordVectors, words: Iterable[str], k: int = 10) -> float:
    """Mean of ``|N_a(w) ∩ N_b(w)| / k`` over the words in both, ``N(w)`` being the ``k`` nearest
    neighbours: 1 when the two spaces agree on every neighbourhood, about ``k/V`` by chance.

    >>> wv = WordVectors(["a", "b", "c"], np.eye(3) + 0.1)
    >>> neighbour_agreement(wv, wv, ["a", "b", "zzz"], k=1)
    1.0
    """
    shared = [w for w in words if w in a and w in b]
    if not shared:
        raise ValueError("none of the words has a vector in both spaces")
    overlaps = [len({x for x, _ in a.most_similar(w, k)} & {x for x, _ in b.most_similar(w, k)}) / k
                for w in shared]
    return float(np.mean(overlaps))


@dataclass
class AnalogyResult:
    """What :func:`analogy_accuracy` found: overall and per section of the file."""

    correct: int  # questions answered right
    answered: int  # questions whose four words are all in the (restricted) vocabulary
    total: int  # questions in the file
    sections: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (correct, answered)
    predictions: list[tuple[tuple[str, str, str, str], str]] = field(default_factory=list, repr=False)

    @property
    def accuracy(self) -> float:
        """correct / answered (nan if none answered)."""
        return self.correct / self.answered if self.answered else float("nan")

    @property
    def coverage(self) -> float:
        """answered / total."""
        return self.answered / self.total if self.total else float("nan")


def _read_analogies(path_or_lines: str | Path | Iterable[str]) -> list[tuple[str, list[str]]]:
    """(section, [a, b, c, d]) for each question line of a word2vec analogy file."""
    if isinstance(path_or_lines, (str, Path)):
        path = Path(path_or_lines)
        if not path.is_file():
            raise FileNotFoundError(f"no analogy file at {path}; gensim ships one at "
                                    f"gensim.test.utils.datapath('questions-words.txt')")
        lines: Iterable[str] = path.read_text(encoding="utf-8").splitlines()
    else:
        lines = path_or_lines
    out, section = [], None
    for n, line in enumerate(lines, start=1):
        line = line.strip()
        if not line:
            continue
        if line.startswith(":"):
            section = line[1:].strip()
            continue
        if section is None:
            raise ValueError(f"analogy line {n} ({line!r:.40}) comes before any ': section' line")
        parts = line.lower().split()
        if len(parts) != 4:
            raise ValueError(f"analogy line {n} should hold 4 words, got {len(parts)}: {line!r:.60}")
        out.append((section, parts))
    return out


def analogy_accuracy(vectors: WordVectors, path_or_lines: str | Path | Iterable[str],
                     restrict_vocab: int | None = 300_000, batch_size: int = 512) -> AnalogyResult:
    """Accuracy of 3CosAdd on a word2vec analogy file (``: section`` lines, then lines
    ``a b c d`` meaning a : b = c : d), as gensim's ``evaluate_word_analogies`` computes it.

    Words are lower-cased (gensim upper-cases both sides: the same for a lower-case vocabulary).
    A question is answered only if its four words are among the first ``restrict_vocab`` words
    (the most frequent, as gensim; None: all); the search for the answer also runs over them,
    with ``a``, ``b``, ``c`` excluded. Two conventions differ from gensim: a line that does not
    hold four words is an error here (gensim logs and skips it), and when two vocabulary words
    differ only in case, gensim excludes both spellings of an input word while we exclude one.
    ``tests/test_embeddings.py`` checks that the two agree question by question.

    >>> wv = WordVectors(["man", "king", "woman", "queen"],
    ...                  np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 1, 1]]))
    >>> r = analogy_accuracy(wv, [": royals", "man king woman queen", "man king cat dog"])
    >>> r.correct, r.answered, r.total
    (1, 1, 2)
    """
    questions = _read_analogies(path_or_lines)
    limit = len(vectors) if restrict_vocab is None else min(restrict_vocab, len(vectors))
    # lower-cased; if two words differ only in case, the first (more frequent) one wins
    stoi = {w.lower(): i for i, w in reversed(list(enumerate(vectors.words[:limit])))}
    answerable = [(s, q) for s, q in questions if all(w in stoi for w in q)]
    sections: dict[str, tuple[int, int]] = {}
    predictions = []
    correct = 0
    m = vectors.matrix[:limit]  # (R, C)
    for lo in range(0, len(answerable), batch_size):
        chunk = answerable[lo:lo + batch_size]
        idx = np.array([[stoi[w] for w in q] for _, q in chunk])  # (Q, 4)
        query = m[idx[:, 1]] - m[idx[:, 0]] + m[idx[:, 2]]  # (Q, C)
        sims = query @ m.T  # (Q, C) @ (C, R) -> (Q, R)
        rows = np.arange(len(chunk))[:, None]
        sims[rows, idx[:, :3]] = -np.inf  # exclude a, b, c
        best = sims.argmax(axis=1)  # (Q,)
        for (section, q), i in zip(chunk, best):
            guess = vectors.words[i].lower()
            ok = guess == q[3]
            correct += ok
            c, n = sections.get(section, (0, 0))
            sections[section] = (c + ok, n + 1)
            predictions.append((tuple(q), guess))
    return AnalogyResult(correct, len(answerable), len(questions), sections, predictions)
