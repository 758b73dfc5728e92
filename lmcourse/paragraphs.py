"""Score a test split paragraph by paragraph, so a bits-per-character number gets an interval.

The test split of every corpus is a list of paragraphs (:class:`lmcourse.data.Corpus`). Summing a
model's nats over each paragraph turns one score into a sample of paragraph scores, which
:func:`lmcourse.metrics.bootstrap_bpc` resamples for an interval and
:func:`lmcourse.metrics.paired_bootstrap` compares between two models. The units must be the same
for every model, whatever its tokenization: a paragraph owns its characters and the newline after
it (the last has none), and a token belongs to the paragraph it is read in. Chapter 2 first uses it;
every chapter that records a model does. Left out: smaller units (sentences of one paragraph are
not independent enough to help).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lmcourse.data import tokenized_sentences

__all__ = ["paragraph_chars", "sentence_paragraphs", "stream_paragraphs", "per_paragraph", "ngram_paragraph_nll",
           "causal_lm_paragraph_nll"]


def _lines(lines: Sequence[str]) -> Sequence[str]:
    if isinstance(lines, str) or not lines or not all(isinstance(line, str) for line in lines):
        raise TypeError("lines must be a non-empty list of paragraph strings, e.g. corpus.test")
    return lines


def paragraph_chars(lines: Sequence[str]) -> np.ndarray:
    """Characters of each paragraph with the newline that joins it to the next: sums to
    ``len("\\n".join(lines))``, the count bits per character divides by.

    >>> paragraph_chars(["ab", "cde"]).tolist()
    [3, 3]
    """
    chars = np.array([len(line) + 1 for line in _lines(lines)], dtype=np.int64)
    chars[-1] -= 1  # no newline after the last paragraph
    return chars


def sentence_paragraphs(lines: Sequence[str], tokenizer: str = "basic_english") -> np.ndarray:
    """The paragraph of each sentence of ``tokenized_sentences(lines, tokenizer)``, in that order.

    >>> sentence_paragraphs(["One. Two.", "Three."]).tolist()
    [0, 0, 1]
    """
    counts = [len(tokenized_sentences([line], tokenizer)) for line in _lines(lines)]
    return np.repeat(np.arange(len(counts)), counts)


def stream_paragraphs(lines: Sequence[str], tokenizer: str = "basic_english") -> np.ndarray:
    """The paragraph of every position of the word stream
    ``token_stream(tokenized_sentences(lines, tokenizer), vocab)``: a sentence's words and its
    ``</s>`` belong to its paragraph; position 0, the leading ``</s>`` that is only context, gets -1.

    >>> stream_paragraphs(["One two. Three.", "Four."]).tolist()  # basic_english keeps the full stops
    [-1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1]
    """
    sentences = tokenized_sentences(_lines(lines), tokenizer)
    lengths = np.array([len(s) + 1 for s in sentences])  # words and </s>
    return np.concatenate([[-1], np.repeat(sentence_paragraphs(lines, tokenizer), lengths)])


def per_paragraph(token_nll: Sequence[float] | np.ndarray, token_paragraph: Sequence[int] | np.ndarray,
                  num_paragraphs: int) -> np.ndarray:
    """Sum the nats of each token into its paragraph: ``(P,)`` nats per paragraph.

    >>> per_paragraph([1.0, 2.0, 4.0], [0, 1, 1], 3).tolist()
    [1.0, 6.0, 0.0]
    """
    nll, which = np.asarray(token_nll, dtype=float), np.asarray(token_paragraph)
    if nll.ndim != 1 or nll.shape != which.shape:
        raise ValueError(f"token_nll and token_paragraph must be 1-D and of one length, got shapes "
                         f"{nll.shape} and {which.shape}")
    if which.size and (which.min() < 0 or which.max() >= num_paragraphs):
        raise ValueError(f"token_paragraph must lie in [0, {num_paragraphs}); a -1 marks a position that is only "
                         "context (the stream's first token): drop it, e.g. with evaluate(...).token_positions")
    return np.bincount(which, weights=nll, minlength=num_paragraphs)


def ngram_paragraph_nll(model: Any, lines: Sequence[str], tokenizer: str = "basic_english") -> np.ndarray:
    """Nats per paragraph of an n-gram model (:mod:`lmcourse.ngram`), which scores each sentence's
    words and its ``</s>``; sums to ``model.evaluate(tokenized_sentences(lines)).total_nll``."""
    sentences = tokenized_sentences(_lines(lines), tokenizer)
    lengths = np.array([len(s) + 1 for s in sentences])
    token_paragraph = np.repeat(sentence_paragraphs(lines, tokenizer), lengths)
    return per_paragraph(-model.token_logprobs(sentences), token_paragraph, len(lines))


def causal_lm_paragraph_nll(model: Any, tokenizer: Any, lines: Sequence[str], start_id: int,
                            window: int = 1024, batch_size: int = 1) -> tuple[np.ndarray, int]:
    """Nats per paragraph of a causal LM reading ``"\n".join(lines)`` as one text, and its number of
    tokens: ``((P,), N)``.

    The text is encoded once (`tokenizer` needs ``encode``, ``decode`` and ``token_bytes``, its own or
    its ``bpe``'s, as :class:`lmcourse.bpe.ByteBPE` and :class:`lmcourse.llama.SmolLM2Tokenizer` have)
    and read after `start_id` (the document separator the model was trained with) in windows of
    `window` tokens, each window from scratch (a token early in a window sees less context),
    `batch_size` windows per forward pass. `model` maps ids ``(B, T)`` to logits ``(B, T, V)``. A token
    belongs to the paragraph that holds its first byte. Chapter 7 measures SmolLM2 with it, Chapter 8
    what fine-tuning did to it, Chapter 10 what compression did to a GPT."""
    import torch
    import torch.nn.functional as F

    from lmcourse._torch import model_device

    text = "\n".join(_lines(lines))
    ids = tokenizer.encode(text)
    if tokenizer.decode(ids) != text:
        raise ValueError("the tokenizer does not spell the text back exactly; bits per character would be wrong")
    stream = torch.tensor([start_id] + ids, device=model_device(model))
    starts = list(range(0, len(ids), window))
    full = [s for s in starts if s + window <= len(ids)]  # windows of exactly `window` tokens, batched
    token_nll = []
    with torch.no_grad():
        for b in range(0, len(full), batch_size):
            rows = torch.stack([stream[s:s + window + 1] for s in full[b:b + batch_size]])  # (B, W + 1)
            logits = model(rows[:, :-1])  # (B, W) -> (B, W, V)
            token_nll.append(F.cross_entropy(logits.flatten(0, 1), rows[:, 1:].flatten(), reduction="none"))
        if len(full) < len(starts):  # the last, shorter window
            rest = stream[starts[-1]:]  # (R + 1,)
            token_nll.append(F.cross_entropy(model(rest[None, :-1])[0], rest[1:], reduction="none"))
    nll = torch.cat(token_nll).double().cpu().numpy()
    token_bytes = getattr(tokenizer, "token_bytes", None) or tokenizer.bpe.token_bytes
    token_start = np.cumsum([0] + [len(token_bytes(i)) for i in ids[:-1]])  # first byte of each
    line_end = np.cumsum([len(line.encode("utf-8")) + 1 for line in lines])  # bytes up to each newline
    return per_paragraph(nll, np.searchsorted(line_end, token_start, side="right"), len(lines)), len(ids)
