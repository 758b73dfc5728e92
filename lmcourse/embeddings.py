"""Word vectors: word2vec's skip-gram with negative sampling (SGNS), in PyTorch, and the probes
the book runs on them (neighbours, analogies, a 2-D picture).

Chapter 3a (Word embeddings and a feed-forward language model) explains this module. It follows
Mikolov et al. (2013), "Distributed representations of words and phrases and their
compositionality", and the choices of their C tool ``word2vec.c`` (which gensim's ``Word2Vec`` copies):

- **Model.** Two tables: the input vectors ``v`` (``in_embed``, the word vectors we keep, started
  uniform in ``±0.5/C``) and the output vectors ``u`` (``out_embed``, started at zero). For a
  centre word ``c``, a context word ``o`` and ``K`` noise words ``k``, the loss is
  ``-log σ(u_o·v_c) - Σ_k log σ(-u_k·v_c)``.
- **Vocabulary.** Words seen at least ``min_count`` times, most frequent first (ties
  alphabetical); rarer words are removed from the sentences *before* windows are taken.
- **Subsampling** of frequent words, with word2vec.c's (and gensim's) keep probability
  ``P(keep w) = (sqrt(f/t) + 1) · t/f`` (capped at 1), where ``f`` is the word's share of the
  kept tokens and ``t`` the threshold. (The paper writes the discard probability
  ``1 - sqrt(t/f)``; the code's variant keeps a little more: ``t/f`` more.) Redrawn every epoch.
- **Dynamic window.** Each centre word draws its window ``b`` uniformly from ``1..window`` and
  pairs with the words at distance ``1..b`` inside its sentence, so near words count more.
- **Noise.** ``K`` words per pair from the unigram distribution raised to the power 0.75.
- **Optimiser.** Plain SGD on sparse gradients, on shuffled mini-batches of pairs, with the
  learning rate falling linearly from 0.025 per pair to 1e-4 of that, as word2vec does (the loss
  is a batch mean, so the step is scaled by ``B``). Measured on the book's wiki corpus (383k
  words, 5 epochs, C=100, one thread; ``benchmarks/bench_embeddings.py``): SGD took 25-35 s
  (60k words/s), SparseAdam (``optimizer="sparse_adam"``, lr 0.003) 55-80 s, gensim's C code
  4-7 s. SGD lands where gensim does: its 10 nearest neighbours agree with gensim's on 0.46 of
  the 200 most frequent content words (gensim retrained with another seed: 0.54-0.57), and its
  analogy accuracy is the same (1.5% vs 1.1-1.5%). SparseAdam reaches a lower loss (2.33 vs 2.50)
  and more analogies (2.5%) but other neighbourhoods (agreement 0.15); SGD with twice the step
  does the same (2.6%, 0.17), so that is the step size, not Adam. Batch sizes 256 to 4096 gave
  SGD about the same results.

Shape letters: ``B`` pairs in a batch, ``C`` the vector width (``dim``), ``V`` the vocabulary,
``N`` tokens, as on the notation page; ``K`` noise words per pair.

Left out: hierarchical softmax, CBOW, phrases ("New_York"), word2vec's rule that skips a noise
draw equal to the context word, Hogwild threads (we use mini-batches), and subword vectors
(fastText).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from lmcourse.text import Vocab

__all__ = [
    "SkipGramConfig", "SkipGram", "train_skipgram", "WordVectors", "UnknownWordError",
    "build_vocab", "keep_probabilities", "subsample", "noise_distribution", "sample_negatives",
    "draw_windows", "skipgram_pairs", "neighbour_agreement", "analogy_accuracy",
    "AnalogyResult", "from_gensim",
]


# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------

@dataclass
class SkipGramConfig:
    """Settings of :func:`train_skipgram`; the defaults are word2vec's for skip-gram."""

    dim: int = 100             # C, size of each word vector (the book's model width)
    window: int = 5            # largest window; each centre draws its own from 1..window
    negatives: int = 5         # K, noise words per (centre, context) pair
    min_count: int = 5         # words seen fewer times are dropped from the corpus
    sample: float = 1e-3       # subsampling threshold t (0 turns subsampling off)
    ns_exponent: float = 0.75  # noise distribution: unigram counts ** ns_exponent
    epochs: int = 5            # passes over the corpus (pairs and subsampling redrawn each time)
    batch_size: int = 1024     # B, pairs per optimiser step
    optimizer: str = "sgd"     # "sgd" (word2vec's choice) or "sparse_adam"
    lr: float | None = None    # start of the linear decay; None: 0.025 for SGD, 0.003 for Adam
    min_lr: float = 1e-4       # the decay ends at lr * min_lr, as word2vec's min_alpha
    seed: int = 0              # seeds numpy (pairs, subsampling) and torch (init, noise)
    threads: int | None = 1    # torch threads while training (None: leave as is); these ops
                               # are too small to gain from more, and lose on a busy machine
    progress: bool = True      # show a tqdm bar

    def __post_init__(self) -> None:
        for name in ("dim", "window", "negatives", "min_count", "epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"SkipGramConfig.{name} must be an int >= 1, got {value!r}")
        if not 0 <= self.sample < 1:
            raise ValueError(f"SkipGramConfig.sample must be in [0, 1) (0 = no subsampling), "
                             f"got {self.sample!r}; word2vec uses 1e-3 to 1e-5")
        if self.optimizer not in ("sgd", "sparse_adam"):
            raise ValueError(f"SkipGramConfig.optimizer must be 'sgd' or 'sparse_adam', "
                             f"got {self.optimizer!r}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"SkipGramConfig.lr must be > 0 (or None for the default), got {self.lr!r}")

    @property
    def start_lr(self) -> float:
        """The learning rate at the first step: ``lr`` or the optimiser's default."""
        if self.lr is not None:
            return self.lr
        return 0.025 if self.optimizer == "sgd" else 0.003


# ---------------------------------------------------------------------------
# Vocabulary, subsampling, noise, pairs
# ---------------------------------------------------------------------------

def _check_corpus(sentences: object) -> list[Sequence[str]]:
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
    sents = _check_corpus(sentences)
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


# ---------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------

class SkipGram(nn.Module):
    """Skip-gram with negative sampling: input vectors ``v`` and output vectors ``u``.

    >>> model = SkipGram(vocab_size=10, dim=4)
    >>> loss = model.loss(torch.tensor([1, 2]), torch.tensor([3, 4]), torch.tensor([[5], [6]]))
    >>> round(loss.item(), 4)  # output vectors start at zero: 2 log 2
    1.3863
    """

    def __init__(self, vocab_size: int, dim: int, sparse: bool = True) -> None:
        super().__init__()
        if vocab_size < 1 or dim < 1:
            raise ValueError(f"vocab_size and dim must be >= 1, got {vocab_size} and {dim}")
        self.in_embed = nn.Embedding(vocab_size, dim, sparse=sparse)  # v: the word vectors
        self.out_embed = nn.Embedding(vocab_size, dim, sparse=sparse)  # u: the context vectors
        nn.init.uniform_(self.in_embed.weight, -0.5 / dim, 0.5 / dim)  # as word2vec.c
        nn.init.zeros_(self.out_embed.weight)

    def loss(self, centres: torch.Tensor, contexts: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        """Mean over the batch of ``-log σ(u_o·v_c) - Σ_k log σ(-u_k·v_c)``.

        ``centres`` and ``contexts`` are (B,) ids, ``negatives`` (B, K) ids.
        """
        v = self.in_embed(centres)  # (B, C)
        targets = torch.cat([contexts.unsqueeze(1), negatives], dim=1)  # (B, 1+K)
        u = self.out_embed(targets)  # (B, 1+K, C)
        scores = (u * v.unsqueeze(1)).sum(dim=2)  # (B, 1+K, C) * (B, 1, C) -> (B, 1+K)
        positive = F.logsigmoid(scores[:, 0])  # (B,)
        negative = F.logsigmoid(-scores[:, 1:]).sum(dim=1)  # (B,)
        return -(positive + negative).mean()


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------

def _flatten(sents: list[Sequence[str]], vocab: Vocab) -> tuple[np.ndarray, np.ndarray]:
    """Word ids of the in-vocabulary tokens laid end to end, and each one's sentence number."""
    stoi = vocab.get_stoi()
    ids, sent_ids = [], []
    for n, sent in enumerate(sents):
        row = [stoi[w] for w in sent if w in stoi]
        ids += row
        sent_ids += [n] * len(row)
    return np.array(ids, dtype=np.int64), np.array(sent_ids, dtype=np.int64)


def train_skipgram(sentences: Iterable[Sequence[str]], config: SkipGramConfig | None = None
                   ) -> WordVectors:
    """Train SGNS word vectors on tokenized sentences; returns the normalised input vectors.

    Each epoch: subsample the corpus, draw every centre's window, list all pairs with numpy,
    shuffle them, and take SGD steps on batches of ``batch_size`` pairs with ``negatives`` noise
    words each. The learning rate falls linearly over all steps. The result carries
    ``loss_history`` (mean loss of every ~1% of the steps), ``seconds`` and ``config``.

    >>> corpus = [["a", "b", "c", "d"], ["b", "a", "d", "c"]] * 50
    >>> wv = train_skipgram(corpus, SkipGramConfig(dim=8, min_count=1, epochs=2, progress=False))
    >>> len(wv), wv.dim, wv.loss_history[-1] < wv.loss_history[0]
    (4, 8, True)
    """
    config = config or SkipGramConfig()
    if config.threads is None:
        return _train(sentences, config)
    saved = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _train(sentences, config)
    finally:
        torch.set_num_threads(saved)


def _train(sentences: Iterable[Sequence[str]], config: SkipGramConfig) -> WordVectors:
    start_time = time.perf_counter()
    sents = _check_corpus(sentences)
    vocab, counts = build_vocab(sents, config.min_count)
    ids, sent_ids = _flatten(sents, vocab)
    if np.bincount(sent_ids).max() < 2:
        raise ValueError(f"no (centre, context) pairs: after dropping words seen fewer than "
                         f"min_count={config.min_count} times, no sentence has 2 words left")
    keep = keep_probabilities(counts, config.sample)
    cumulative = torch.from_numpy(np.cumsum(noise_distribution(counts, config.ns_exponent)))

    rng = np.random.default_rng(config.seed)
    torch_gen = torch.Generator().manual_seed(config.seed)
    with torch.random.fork_rng():
        torch.manual_seed(config.seed)
        model = SkipGram(len(vocab), config.dim, sparse=True)
    lr0 = config.start_lr
    if config.optimizer == "sgd":
        optim: torch.optim.Optimizer = torch.optim.SGD(model.parameters(), lr=lr0)
    else:
        optim = torch.optim.SparseAdam(list(model.parameters()), lr=lr0)

    # The bar counts words, so its total is known before the pairs of each epoch are drawn.
    expected_pairs = None
    history, chunk = [], []
    bar = tqdm(total=config.epochs * len(ids), unit="word", disable=not config.progress,
               desc="skip-gram", mininterval=1.0)
    step = 0
    for epoch in range(config.epochs):
        kept = subsample(ids, keep, rng)  # (N,) redrawn each epoch
        e_ids, e_sent = ids[kept], sent_ids[kept]
        centres, contexts = skipgram_pairs(e_ids, e_sent, draw_windows(len(e_ids), config.window, rng))
        order = rng.permutation(len(centres))
        centres_t = torch.from_numpy(centres[order])
        contexts_t = torch.from_numpy(contexts[order])
        n_batches = max(1, math.ceil(len(centres) / config.batch_size))
        if expected_pairs is None:
            total_steps = n_batches * config.epochs  # from the first epoch; later ones are alike
            log_every = max(1, total_steps // 100)
            expected_pairs = len(centres)
        for b in range(n_batches):
            lo, hi = b * config.batch_size, (b + 1) * config.batch_size
            c, o = centres_t[lo:hi], contexts_t[lo:hi]
            if len(c) == 0:
                break
            negatives = sample_negatives(cumulative, (len(c), config.negatives), torch_gen)  # (B, K)
            frac = min(1.0, step / total_steps)
            lr = lr0 * max(config.min_lr, 1.0 - frac)
            for group in optim.param_groups:
                # SGD: the loss is a batch mean, so scale by B to give each pair word2vec's step
                group["lr"] = lr * len(c) if config.optimizer == "sgd" else lr
            optim.zero_grad(set_to_none=True)
            loss = model.loss(c, o, negatives)
            loss.backward()
            optim.step()
            step += 1
            chunk.append(loss.item())
            if len(chunk) == log_every:
                history.append(float(np.mean(chunk)))
                chunk = []
            bar.update(round(len(ids) * len(c) / max(len(centres), 1)))
        bar.set_postfix(loss=f"{history[-1] if history else float('nan'):.3f}", epoch=epoch + 1)
    if chunk:
        history.append(float(np.mean(chunk)))
    bar.close()
    vectors = model.in_embed.weight.detach().numpy().copy()
    wv = WordVectors(vocab, vectors, counts=counts, min_count=config.min_count)
    wv.loss_history = history
    wv.seconds = time.perf_counter() - start_time
    wv.config = config
    return wv


# ---------------------------------------------------------------------------
# Probing word vectors
# ---------------------------------------------------------------------------

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
        self.config: SkipGramConfig | None = None

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

    def plot_2d(self, words: Sequence[str], ax: object = None) -> object:
        """Scatter the words at :meth:`project_2d`'s coordinates, each labelled; returns the axes."""
        import matplotlib.pyplot as plt

        xy = self.project_2d(words)
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 5))
        ax.scatter(xy[:, 0], xy[:, 1], s=12)
        for (x, y), w in zip(xy, words):
            ax.annotate(w, (x, y), xytext=(3, 3), textcoords="offset points", fontsize=9)
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
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
