"""Judging Chapter 4's sequence-to-sequence models by their greedy outputs: whole strings and
characters right, by source length, and the figures (accuracy by length, attention as a heatmap)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from lmcourse._torch import model_device
from lmcourse.plots import heatmap
from lmcourse.seq2seq.model import Seq2Seq
from lmcourse.seq2seq.task import CHAPTER_LENGTHS, CharVocab, check_pairs, collate, encode_pairs

__all__ = ["translate", "accuracy_by_length", "char_accuracy_by_length", "plot_accuracy_by_length",
           "plot_alignment"]


def translate(model: Seq2Seq, sources: Sequence[str], vocab: CharVocab | None = None,
              batch_size: int = 500, max_len: int | None = None) -> list[str]:
    """Greedy outputs for a list of source strings (`max_len` default: longest source + 5).

    >>> _ = torch.manual_seed(0)
    >>> outputs = translate(Seq2Seq(), ["abc", "de"], max_len=3)  # untrained: random letters
    >>> len(outputs), all(isinstance(out, str) and len(out) <= 3 for out in outputs)
    (2, True)
    """
    vocab = vocab or CharVocab()
    if isinstance(sources, str) or not isinstance(sources, (list, tuple)):
        raise TypeError(f"sources must be a list of str, got {type(sources).__name__}; "
                        f"wrap one string in [...]")
    encoded = encode_pairs([(s, "") for s in sources], vocab, "sources")
    max_len = max_len if max_len is not None else max(len(s) for s in sources) + 5
    out = []
    for i in range(0, len(encoded), batch_size):
        batch = collate(encoded[i:i + batch_size]).to(model_device(model))
        tokens, _ = model.greedy_decode(batch.src, batch.src_lengths, max_len)
        out += [vocab.decode(row) for row in tokens]
    return out


def _by_length(model: Seq2Seq, pairs: Sequence[tuple[str, str]], vocab: CharVocab | None,
               score: Callable[[str, str], float]) -> dict[int, float]:
    check_pairs(pairs)
    totals: dict[int, list[float]] = {}
    for length in sorted({len(s) for s, _ in pairs}):  # one decode per length: max_len = target + 1
        group = [(s, t) for s, t in pairs if len(s) == length]
        outputs = translate(model, [s for s, _ in group], vocab, max_len=max(len(t) for _, t in group) + 1)
        totals[length] = [score(out, t) for out, (_, t) in zip(outputs, group)]
    return {length: sum(v) / len(v) for length, v in totals.items()}


def accuracy_by_length(model: Seq2Seq, pairs: Sequence[tuple[str, str]],
                       vocab: CharVocab | None = None) -> dict[int, float]:
    """Exact-match accuracy (the whole greedy output equals the target) per source length.

    >>> accuracy_by_length(Seq2Seq(), [("ab", "ba"), ("abc", "cba")])  # untrained
    {2: 0.0, 3: 0.0}
    """
    return _by_length(model, pairs, vocab, lambda out, target: float(out == target))


def char_accuracy_by_length(model: Seq2Seq, pairs: Sequence[tuple[str, str]],
                            vocab: CharVocab | None = None) -> dict[int, float]:
    """Share of target positions where the greedy output has the right character, per source
    length (characters missing from a short output count as wrong)."""
    return _by_length(model, pairs, vocab,
                      lambda out, target: sum(a == b for a, b in zip(out, target)) / max(1, len(target)))


def plot_accuracy_by_length(results: dict[str, dict[int, float]],
                            train_lengths: tuple[int, int] | None = CHAPTER_LENGTHS, ax: Any = None) -> Any:
    """One line per model ``{name: {length: accuracy}}``; the training lengths shaded."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    if train_lengths is not None:
        ax.axvspan(train_lengths[0] - 0.5, train_lengths[1] + 0.5, color="0.9", label="training lengths")
    for name, acc in results.items():
        ax.plot(list(acc), list(acc.values()), "o-", ms=3, label=name)
    ax.set_xlabel("source length (characters)")
    ax.set_ylabel("exact-match accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.legend()
    return ax


def plot_alignment(weights: torch.Tensor, source: str, output: str, ax: Any = None) -> Any:
    """Heatmap of attention weights ``(T_out, S)``: output characters down, source across, on the
    book's one scale for attention (:func:`lmcourse.plots.heatmap`, weights 0 to 1, a colourbar)."""
    import matplotlib.pyplot as plt

    weights = torch.as_tensor(weights).detach().cpu()
    if weights.dim() != 2:
        raise ValueError(f"weights must be (T_out, S) for one example, got shape {tuple(weights.shape)}; "
                         f"take weights[b] from greedy_decode")
    rows = list(output) + ["</s>"]
    weights = weights[:len(rows), :len(source)]
    if ax is None:
        _, ax = plt.subplots(figsize=(0.3 * len(source) + 2.5, 0.3 * len(rows) + 1))
    heatmap(ax, weights, x_labels=list(source), y_labels=rows[:weights.shape[0]], vmin=0.0, vmax=1.0,
            colorbar_label="attention weight")
    ax.set_aspect("equal")
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    return ax
