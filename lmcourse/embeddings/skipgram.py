"""Word vectors: word2vec's skip-gram with negative sampling (SGNS), in PyTorch. The data it
reads are built in :mod:`lmcourse.embeddings.pairs`; the probes the book runs on the vectors
(neighbours, analogies, a 2-D picture) are in :mod:`lmcourse.embeddings.vectors`.

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
  is a batch mean, so the step is scaled by ``B``); each step goes through
  :func:`lmcourse.trainstep.backward`, the one every loop in the book uses. Measured on the book's wiki corpus (383k
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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from lmcourse.embeddings.pairs import (
    build_vocab,
    check_corpus,
    draw_windows,
    flatten_corpus,
    keep_probabilities,
    noise_distribution,
    sample_negatives,
    skipgram_pairs,
    subsample,
)
from lmcourse.embeddings.vectors import WordVectors
from lmcourse.text import Vocab
from lmcourse.trainstep import backward

__all__ = ["SkipGramConfig", "SkipGram", "train_skipgram"]


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

@dataclass
class _Corpus:
    """The sentences as skip-gram reads them."""

    vocab: Vocab
    counts: np.ndarray  # (V,) training counts
    ids: np.ndarray  # (N,) word ids of the kept tokens, sentences end to end
    sent_ids: np.ndarray  # (N,) each token's sentence number
    keep: np.ndarray  # (V,) subsampling's keep probabilities
    cumulative: torch.Tensor  # (V,) cumulative sums of the noise distribution


def _corpus(sentences: Iterable[Sequence[str]], config: SkipGramConfig) -> _Corpus:
    sents = check_corpus(sentences)
    vocab, counts = build_vocab(sents, config.min_count)
    ids, sent_ids = flatten_corpus(sents, vocab)
    if np.bincount(sent_ids).max() < 2:
        raise ValueError(f"no (centre, context) pairs: after dropping words seen fewer than "
                         f"min_count={config.min_count} times, no sentence has 2 words left")
    keep = keep_probabilities(counts, config.sample)
    cumulative = torch.from_numpy(np.cumsum(noise_distribution(counts, config.ns_exponent)))
    return _Corpus(vocab, counts, ids, sent_ids, keep, cumulative)


def _epoch_pairs(corpus: _Corpus, config: SkipGramConfig, rng: np.random.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """One epoch's (centre, context) pairs in random order, subsampling and windows redrawn."""
    kept = subsample(corpus.ids, corpus.keep, rng)  # (N,)
    e_ids, e_sent = corpus.ids[kept], corpus.sent_ids[kept]
    centres, contexts = skipgram_pairs(e_ids, e_sent, draw_windows(len(e_ids), config.window, rng))
    order = rng.permutation(len(centres))
    return torch.from_numpy(centres[order]), torch.from_numpy(contexts[order])  # (P,), (P,)


def _step(model: SkipGram, optim: torch.optim.Optimizer, batch: tuple[torch.Tensor, ...], lr: float,
          sgd: bool, step: int) -> float:
    """One update on a batch of (centres, contexts, negatives) at `lr` per pair; returns its loss."""
    for group in optim.param_groups:
        # SGD: the loss is a batch mean, so scale by B to give each pair word2vec's step
        group["lr"] = lr * len(batch[0]) if sgd else lr
    loss = backward(model.loss(*batch), optim, lambda what, value: FloatingPointError(
        f"training diverged: {what} is {value} at step {step + 1}; lower the learning rate (lr={lr:.3g})"))
    optim.step()
    return loss


def _train(sentences: Iterable[Sequence[str]], config: SkipGramConfig) -> WordVectors:
    start_time = time.perf_counter()
    corpus = _corpus(sentences, config)
    rng = np.random.default_rng(config.seed)
    torch_gen = torch.Generator().manual_seed(config.seed)
    with torch.random.fork_rng():
        torch.manual_seed(config.seed)
        model = SkipGram(len(corpus.vocab), config.dim, sparse=True)
    lr0, sgd, B = config.start_lr, config.optimizer == "sgd", config.batch_size
    optim = (torch.optim.SGD(model.parameters(), lr=lr0) if sgd
             else torch.optim.SparseAdam(list(model.parameters()), lr=lr0))
    losses: list[float] = []
    total_steps = log_every = 0  # known once the first epoch's pairs are drawn; later ones are alike
    # The bar counts words, so its total is known before the pairs of each epoch are drawn.
    with tqdm(total=config.epochs * len(corpus.ids), unit="word", disable=not config.progress,
              desc="skip-gram", mininterval=1.0) as bar:
        for epoch in range(config.epochs):
            centres, contexts = _epoch_pairs(corpus, config, rng)  # (P,), (P,)
            n_batches = max(1, math.ceil(len(centres) / B))
            total_steps = total_steps or n_batches * config.epochs
            log_every = log_every or max(1, total_steps // 100)
            for lo in range(0, n_batches * B, B):
                c, o = centres[lo:lo + B], contexts[lo:lo + B]
                if len(c) == 0:
                    break
                negatives = sample_negatives(corpus.cumulative, (len(c), config.negatives), torch_gen)  # (B, K)
                lr = lr0 * max(config.min_lr, 1.0 - min(1.0, len(losses) / total_steps))
                losses.append(_step(model, optim, (c, o, negatives), lr, sgd, len(losses)))
                bar.update(round(len(corpus.ids) * len(c) / max(len(centres), 1)))
            done = len(losses) - len(losses) % log_every  # the last complete logging chunk ends here
            bar.set_postfix(loss=f"{np.mean(losses[done - log_every:done]) if done else float('nan'):.3f}",
                            epoch=epoch + 1)
    wv = WordVectors(corpus.vocab, model.in_embed.weight.detach().numpy().copy(), counts=corpus.counts,
                     min_count=config.min_count)
    # the mean loss of every log_every steps (about 1% of them), the last chunk perhaps shorter
    wv.loss_history = [float(np.mean(losses[i:i + log_every])) for i in range(0, len(losses), log_every)]
    wv.seconds = time.perf_counter() - start_time
    wv.config = config
    return wv
