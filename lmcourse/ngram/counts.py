"""Counting n-grams as integer ids: the table that every model in :mod:`lmcourse.ngram` reads.

Sentences are padded with ``order - 1`` ``"<s>"`` on the left and one ``"</s>"`` on the right.
Every token after the padding (each word and the closing ``"</s>"``) is a *predicted position*,
and an n-gram of any order k is counted once for each predicted position it ends at. So the
counts of every order come from the same tokens, ``"<s>"`` is never counted as a word, and the
counts of one order sum to the number of predicted tokens.

How the table is stored (no nested dicts of strings). Words are ids ``0 .. V-1``. Contexts are
numbered length by length, growing to the left: the context ``(u, v)`` is the pair *(word u,
number of the context (v,))* and gets the key ``u * N1 + number(v)``, where ``N1`` is how many
distinct contexts of length 1 there are. An n-gram is a pair *(context, word)* with the key
``context_number * V + word``. Keys are sorted int64 arrays (``np.unique``) and looked up with
``np.searchsorted``; they stay below ``V * (number of tokens)``, so any order fits in int64.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import chain

import numpy as np

from lmcourse.text import Vocab

__all__ = ["NGramCounts", "unseen_share", "UNK", "BOS", "EOS", "UNK_ID", "BOS_ID", "EOS_ID"]

UNK, BOS, EOS = "<unk>", "<s>", "</s>"
UNK_ID, BOS_ID, EOS_ID = 0, 1, 2  # the first three entries of every n-gram vocabulary


def check_order(order: object) -> int:
    """``order`` as an int >= 1, or a ValueError."""
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError(f"order must be an int >= 1 (1 = unigram, 2 = bigram, ...), got {order!r}")
    return int(order)


def check_sentences(sentences: Iterable[Sequence[str]], who: str) -> list[Sequence[str]]:
    """The sentences as a list, each a sequence of str tokens, or a TypeError/ValueError that says
    what went wrong."""
    if isinstance(sentences, (str, bytes)):
        raise TypeError(f"{who} expects a list of sentences, each a list of tokens, got one str; "
                        f"tokenize first, e.g. [tok(s) for s in sentences(lines)]")
    out = list(sentences)
    for i, sent in enumerate(out):
        if isinstance(sent, (str, bytes)) or not isinstance(sent, Sequence):
            raise TypeError(f"sentence {i} is a {type(sent).__name__} ({sent!r:.40}), not a list of "
                            f"tokens; {who} expects tokenized sentences, e.g. [tok(s) for s in "
                            f"sentences(lines)] with tok = get_tokenizer('basic_english')")
        if not all(isinstance(w, str) for w in sent):
            bad = next(w for w in sent if not isinstance(w, str))
            raise TypeError(f"sentence {i} holds a token of type {type(bad).__name__} ({bad!r:.40}); "
                            f"tokens must be str")
        if BOS in sent or EOS in sent:
            raise ValueError(f"sentence {i} contains {BOS!r} or {EOS!r}; the models add these "
                             f"markers themselves, so pass sentences without them")
    return out


def left_windows(stream: np.ndarray, positions: np.ndarray, m: int) -> np.ndarray:
    """The ``m`` ids before each predicted position, oldest first: (P, m), the last column being the
    word just before the predicted one (``m = 0`` gives an empty (P, 0) array)."""
    if m == 0:
        return np.zeros((len(positions), 0), dtype=np.int64)
    return np.stack([stream[positions - j] for j in range(m, 0, -1)], axis=1)  # (P, m)


def lookup(sorted_keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Position of each query in ``sorted_keys``, or -1 where it is absent."""
    idx = np.minimum(np.searchsorted(sorted_keys, queries), len(sorted_keys) - 1)
    return np.where(sorted_keys[idx] == queries, idx, -1)


class NGramCounts:
    """Counts of every n-gram of orders 1..``order`` in tokenized sentences, held as integer ids.

    Words with fewer than ``min_count`` occurrences become ``"<unk>"``. The vocabulary is
    ``"<unk>", "<s>", "</s>"`` followed by the kept words, most frequent first (ties alphabetical).

    >>> c = NGramCounts([["the", "cat", "sat"], ["the", "dog", "sat"]], order=2)
    >>> c.count(("the",)), c.count(("<s>", "the")), c.count(("sat", "</s>"))
    (2, 2, 2)
    >>> c.continuation_count("sat"), c.count_of_counts(2)  # "sat" follows 2 different words
    (2, {1: 4, 2: 2})
    """

    def __init__(self, sentences: Iterable[Sequence[str]], order: int = 3, min_count: int = 1) -> None:
        self.order = check_order(order)
        if isinstance(min_count, bool) or not isinstance(min_count, (int, np.integer)) or min_count < 1:
            raise ValueError(f"min_count must be an int >= 1, got {min_count!r}")
        sents = check_sentences(sentences, "fit")
        if not any(len(s) for s in sents):
            raise ValueError(f"the training corpus is empty: got {len(sents)} sentence(s) and no "
                             f"tokens; pass a non-empty list of tokenized sentences")
        freq = Counter(chain.from_iterable(sents))
        words = sorted((w for w, c in freq.items() if c >= min_count and w not in (UNK, BOS, EOS)),
                       key=lambda w: (-freq[w], w))
        self.vocab = Vocab([UNK, BOS, EOS] + words, default_index=UNK_ID)
        self._stoi = self.vocab.get_stoi()
        self.num_sentences = len(sents)

        stream, positions, _ = self.encode(sents)
        self.num_tokens = len(positions)  # predicted tokens: words and one </s> per sentence
        V = len(self.vocab)
        # Contexts of length j = 0 .. order-1, numbered by np.unique; context j at each position.
        self._ctx_keys: list[np.ndarray] = [np.zeros(1, dtype=np.int64)]  # the empty context
        ctx_at = [np.zeros(len(positions), dtype=np.int64)]
        for j in range(1, self.order):
            keys = stream[positions - j] * len(self._ctx_keys[j - 1]) + ctx_at[j - 1]
            uniq, inverse = np.unique(keys, return_inverse=True)
            self._ctx_keys.append(uniq)
            ctx_at.append(inverse.reshape(-1))
        # n-grams of order k = 1 .. order: key = (context of length k-1) * V + word.
        self._gram_keys: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]  # index 0 unused
        self._gram_counts: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]
        for k in range(1, self.order + 1):
            uniq, counts = np.unique(ctx_at[k - 1] * V + stream[positions], return_counts=True)
            self._gram_keys.append(uniq)
            self._gram_counts.append(counts.astype(np.int64))
        self._continuation: dict[int, np.ndarray] = {}

    # --- encoding and lookups (used by the models) ---
    def encode(self, sentences: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray, int]:
        """Padded ids of checked sentences, the predicted positions in them, and the number of
        out-of-vocabulary words (mapped to ``"<unk>"``).

        Returns ``stream`` (T,) int64, ``positions`` (P,) int64 with ``P`` = words + sentences.
        """
        pad, stoi = [BOS_ID] * (self.order - 1), self._stoi
        ids: list[int] = []
        for sent in sentences:
            ids += pad
            ids += [stoi.get(w, -1) for w in sent]  # -1 marks a word not in the vocabulary
            ids.append(EOS_ID)
        stream = np.array(ids, dtype=np.int64)
        oov = stream == -1
        stream[oov] = UNK_ID
        positions = np.flatnonzero(stream != BOS_ID)  # <s> only ever appears as padding
        return stream, positions, int(oov.sum())

    def word_ids(self, words: Sequence[str]) -> np.ndarray:
        """Ids of words (``"<unk>"``'s id for unknown ones)."""
        return np.array([self._stoi.get(w, UNK_ID) for w in words], dtype=np.int64)

    def context_ids(self, left: np.ndarray) -> list[np.ndarray]:
        """Number the contexts in ``left``, a (N, m) array of word ids whose last column is the
        word just before the predicted one. Returns ``[ctx_0, ..., ctx_m]``, each (N,): the number
        of the context made of the last j words, or -1 where that context never occurred."""
        n_rows, m = left.shape
        out = [np.zeros(n_rows, dtype=np.int64)]
        for j in range(1, m + 1):
            keys = left[:, m - j] * len(self._ctx_keys[j - 1]) + out[j - 1]
            out.append(np.where(out[j - 1] >= 0, lookup(self._ctx_keys[j], keys), -1))
        return out

    def gram_index(self, k: int, ctx: np.ndarray, words: np.ndarray) -> np.ndarray:
        """Index of each (context, word) n-gram of order k in this table's arrays, or -1."""
        keys = ctx * len(self.vocab) + words
        return np.where(ctx >= 0, lookup(self._gram_keys[k], keys), -1)

    def gram_context(self, k: int) -> np.ndarray:
        """For each stored n-gram of order k, the number of its context (length k-1)."""
        return self._gram_keys[k] // len(self.vocab)

    def num_contexts(self, j: int) -> int:
        """How many distinct contexts of length j occurred (1 for j = 0, the empty context)."""
        return len(self._ctx_keys[j])

    def _check_n(self, n: int, top: int | None = None) -> int:
        top = self.order if top is None else top
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= top:
            raise ValueError(f"n must be an int from 1 to {top} for counts of order {self.order}, got {n!r}")
        return int(n)

    # --- the public view ---
    def raw_counts(self, n: int) -> np.ndarray:
        """Counts of the distinct n-grams of order n, aligned with :meth:`ngram_ids` (a copy)."""
        return self._gram_counts[self._check_n(n)].copy()

    def ngram_ids(self, n: int) -> np.ndarray:
        """The distinct n-grams of order n as a (M, n) array of word ids, one row per n-gram."""
        n = self._check_n(n)
        V = len(self.vocab)
        out = np.empty((len(self._gram_keys[n]), n), dtype=np.int64)  # (M, n)
        out[:, n - 1] = self._gram_keys[n] % V
        ctx = self._gram_keys[n] // V
        for j in range(n - 1, 0, -1):  # peel the context from its leftmost word inwards
            key = self._ctx_keys[j][ctx]
            width = len(self._ctx_keys[j - 1])
            out[:, n - 1 - j] = key // width
            ctx = key % width
        return out

    def counts(self, n: int) -> dict[tuple[str, ...], int]:
        """``{n-gram: count}`` for every n-gram of order n seen in training."""
        itos = self.vocab.get_itos()
        rows = self.ngram_ids(n).tolist()
        return {tuple(itos[i] for i in row): c for row, c in zip(rows, self._gram_counts[n].tolist())}

    def count(self, ngram: Sequence[str]) -> int:
        """How often ``ngram`` (a tuple of 1..order words, ``"<s>"`` allowed at its start) occurred."""
        ids = self._ngram_to_ids(ngram)
        k = len(ids)
        ctx = self.context_ids(ids[None, :-1])[-1]  # (1,)
        idx = self.gram_index(k, ctx, ids[-1:])
        return int(self._gram_counts[k][idx[0]]) if idx[0] >= 0 else 0

    def _ngram_to_ids(self, ngram: Sequence[str]) -> np.ndarray:
        if isinstance(ngram, str):
            ngram = (ngram,)
        ngram = tuple(ngram)
        if not all(isinstance(w, str) for w in ngram):
            raise TypeError(f"an n-gram is a tuple of str words, got {ngram!r}")
        self._check_n(len(ngram))
        return self.word_ids(ngram)

    def continuation_counts(self, n: int) -> np.ndarray:
        """For every n-gram ``g`` of order n < order, ``N1+(. g)``: how many distinct words precede
        it in the (n+1)-grams. Aligned with :meth:`ngram_ids` (Kneser-Ney's lower-order counts)."""
        n = self._check_n(n, self.order - 1)
        if n not in self._continuation:
            V = len(self.vocab)
            longer = self._gram_keys[n + 1]  # every (n+1)-gram u g, counted once as a type
            parent = self._ctx_keys[n][longer // V] % len(self._ctx_keys[n - 1])  # context minus u
            suffix = parent * V + longer % V  # the key of g
            idx = np.searchsorted(self._gram_keys[n], suffix)  # every g occurs: padding gives each a u
            self._continuation[n] = np.bincount(idx, minlength=len(self._gram_keys[n])).astype(np.int64)
        return self._continuation[n].copy()

    def continuation_count(self, ngram: str | Sequence[str]) -> int:
        """Kneser-Ney's ``N1+(. w)``: the number of distinct words seen just before ``ngram`` (a word,
        or a tuple of up to order-1 words)."""
        ids = self._ngram_to_ids(ngram)
        k = len(ids)
        if k >= self.order:
            raise ValueError(f"continuation counts of {k}-grams need counts of order {k + 1}; "
                             f"these counts have order {self.order}")
        ctx = self.context_ids(ids[None, :-1])[-1]
        idx = self.gram_index(k, ctx, ids[-1:])
        return int(self.continuation_counts(k)[idx[0]]) if idx[0] >= 0 else 0

    def count_of_counts(self, n: int, continuation: bool = False) -> dict[int, int]:
        """``{r: N_r}``: how many distinct n-grams of order n occurred exactly r times (with
        ``continuation=True``: had exactly r distinct left neighbours)."""
        counts = self.continuation_counts(n) if continuation else self._gram_counts[self._check_n(n)]
        values, freqs = np.unique(counts, return_counts=True)
        return dict(zip(values.tolist(), freqs.tolist()))

    def unseen_share(self, test_sentences: Iterable[Sequence[str]], n: int) -> float:
        """Share of the n-grams of ``test_sentences`` (padded as the models pad them, words outside
        the vocabulary mapped to ``"<unk>"`` as the models map them) that never occur in training:
        the n-grams on which a maximum-likelihood model of order n has no count at all.

        >>> NGramCounts([["a", "b"], ["a", "b"]], order=2).unseen_share([["a", "c"]], n=2)
        0.6666666666666666
        """
        n = self._check_n(n)
        test = check_sentences(test_sentences, "unseen_share")
        stream, positions, _ = self.encode(test)
        if len(positions) == 0:
            raise ValueError("unseen_share needs at least one test sentence")
        left = left_windows(stream, positions, n - 1)  # (P, n-1)
        seen = self.gram_index(n, self.context_ids(left)[-1], stream[positions]) >= 0  # (P,)
        return int(np.count_nonzero(~seen)) / len(seen)

    def num_types(self, n: int) -> int:
        """How many distinct n-grams of order n occurred."""
        return len(self._gram_keys[self._check_n(n)])

    @property
    def num_entries(self) -> int:
        """Stored n-gram entries over all orders."""
        return sum(len(keys) for keys in self._gram_keys)

    def __repr__(self) -> str:
        types = ", ".join(f"{k}-grams={self.num_types(k):,}" for k in range(1, self.order + 1))
        return (f"NGramCounts(order={self.order}, vocab={len(self.vocab):,}, "
                f"tokens={self.num_tokens:,}, {types})")


def unseen_share(train_sentences: Iterable[Sequence[str]], test_sentences: Iterable[Sequence[str]],
                 n: int, min_count: int = 1) -> float:
    """Share of the test n-grams that never occur in training, with words counted as the models
    count them (see :meth:`NGramCounts.unseen_share`, which reuses counts already made).

    >>> unseen_share([["a", "b"]], [["a", "b"], ["a", "c"]], n=2)  # (a, <unk>), (<unk>, </s>) are new
    0.3333333333333333
    """
    return NGramCounts(train_sentences, order=check_order(n), min_count=min_count).unseen_share(test_sentences, n)
