r"""The bridge from counting to neural models (end of Chapter 2): a bigram model as a table of
logits $W$ (one row per previous word), $P(w \mid v) = \mathrm{softmax}(W_v)_w$, trained by gradient
descent on the cross-entropy of the training bigrams.

The loss depends on the text only through the bigram counts $C$:
$-\sum_{v,w} C_{vw} \log \mathrm{softmax}(W_v)_w$, whose minimum is the count ratio
$C_{vw} / \sum_{w'} C_{vw'}$: gradient descent recovers maximum likelihood. Adding $k$ to every count
(``pseudo_count=k``) adds $-k \sum_{v,w} \log P(w \mid v)$, a pull towards the uniform distribution
(a Dirichlet prior), and recovers add-$k$ exactly; an L2 penalty on $W$ (``weight_decay``) smooths
in a similar way without a closed form. Chapter 3 replaces the table by a network over word vectors.

Left out: minibatches of text (the counts are the whole batch), and any vocabulary beyond what a
$V \times V$ table on a CPU holds (a few thousand words).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

__all__ = ["bigram_count_matrix", "fit_softmax_bigram"]


def bigram_count_matrix(sentences: Iterable[Sequence[str]], words: Sequence[str]) -> np.ndarray:
    """Counts (V, V) of (previous, next) pairs over ``["<s>", *words, "</s>"]`` per sentence, with
    every token outside ``words`` as ``"<unk>"``. Row and column order: ``words``, which must contain
    ``"<s>"``, ``"</s>"`` and ``"<unk>"`` (the ``"<s>"`` column and ``"</s>"`` row stay 0).

    >>> bigram_count_matrix([["a", "b"], ["a", "z"]], ["<s>", "</s>", "<unk>", "a"]).tolist()
    [[0, 0, 0, 2], [0, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0]]
    """
    index = {w: i for i, w in enumerate(words)}
    unk = index["<unk>"]
    counts = np.zeros((len(words), len(words)), dtype=np.int64)  # (V, V)
    for sent in sentences:
        ids = [index["<s>"], *(index.get(w, unk) for w in sent), index["</s>"]]
        np.add.at(counts, (ids[:-1], ids[1:]), 1)
    return counts


def fit_softmax_bigram(counts: np.ndarray, steps: int = 300, lr: float = 0.5, pseudo_count: float = 0.0,
                       weight_decay: float = 0.0) -> np.ndarray:
    """Train a (V, V) logit table by full-batch gradient descent (Adam) on the bigram cross-entropy
    of ``counts`` plus ``pseudo_count`` per cell, with an optional L2 penalty ``weight_decay *
    sum(W**2)``; returns the probabilities softmax(W) row by row, (V, V). Rows with no counts are
    left out of the loss (they stay uniform when nothing else acts on them)."""
    c = torch.as_tensor(counts, dtype=torch.float64) + pseudo_count  # (V, V)
    rows = c.sum(dim=1) > 0  # contexts that occur
    total = c[rows].sum()
    logits = torch.zeros_like(c, requires_grad=True)  # (V, V): row v holds the logits after v
    opt = torch.optim.Adam([logits], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        nll = -(c[rows] * torch.log_softmax(logits[rows], dim=1)).sum() / total  # nats per token
        loss = nll + weight_decay * (logits ** 2).sum()
        loss.backward()
        opt.step()
    return torch.softmax(logits.detach(), dim=1).numpy()
