"""A Transformer that visibly uses its context: the repeated-tokens task of Chapter 4b.

Each sequence is ``half_length`` random tokens followed by the same tokens again (after an
optional prefix of other random tokens). Nothing predicts the first half, so any model is at
chance there (``1 / vocab_size``); in the repeated half the next token is determined by the
context: find where the current token occurred before and copy the token that followed it. That
is the job of an *induction head* (Olsson et al., 2022), which a two-layer Transformer can form:
one head moves each token's predecessor into its position, a later head matches the current token
against those and reads the token after the match. An n-gram model, which sees only the last
``n - 1`` tokens, stays at chance in both halves.

Here: the data (:func:`repeated_tokens`), a short training loop on fresh batches
(:func:`train_on_repeats`), accuracy at every position for a Transformer
(:func:`accuracy_by_position`) and for a count-based n-gram model
(:func:`ngram_accuracy_by_position`), and the weight each head puts on the induction target
(:func:`induction_scores`). Tensors are batch first, ``(B, T)``.

Left out: attention-only models and the circuit analysis of Elhage et al. (2021); the task with
a period that varies from sequence to sequence, which forces the lookup by content but takes far
longer to learn than a CPU minute.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lmcourse._checks import check_int, check_positive_int
from lmcourse._torch import eval_mode, model_device

__all__ = ["repeated_tokens", "train_on_repeats", "accuracy_by_position", "ngram_accuracy_by_position",
           "induction_scores"]


def repeated_tokens(num_sequences: int, half_length: int, vocab_size: int, *, prefix_length: int = 0,
                    seed: int = 0) -> torch.Tensor:
    """``(num_sequences, prefix_length + 2 * half_length)`` token ids: a random prefix, then
    `half_length` random tokens, then the same tokens again. Tokens are uniform over
    ``0 .. vocab_size - 1``, drawn with replacement, from a generator seeded with `seed`.

    >>> x = repeated_tokens(2, 3, 10, seed=0)
    >>> x.shape, bool((x[:, :3] == x[:, 3:]).all())
    (torch.Size([2, 6]), True)
    >>> repeated_tokens(1, 2, 10, prefix_length=1).shape
    torch.Size([1, 5])
    """
    for name, value in (("num_sequences", num_sequences), ("half_length", half_length), ("vocab_size", vocab_size)):
        check_positive_int(name, value)
    check_int("prefix_length", prefix_length, minimum=0)
    g = torch.Generator().manual_seed(seed)
    prefix = torch.randint(vocab_size, (num_sequences, prefix_length), generator=g)
    first = torch.randint(vocab_size, (num_sequences, half_length), generator=g)
    return torch.cat([prefix, first, first], dim=1)


def train_on_repeats(model: nn.Module, steps: int, half_length: int, vocab_size: int, batch_size: int = 32,
                     lr: float = 3e-3, seed: int = 0) -> list[float]:
    """Train `model` (token ids ``(B, T)`` -> logits ``(B, T, V)``) on fresh batches of
    :func:`repeated_tokens` with AdamW at a constant `lr`; returns each step's loss (nats per token).
    Batch ``i`` is drawn with seed ``seed + i``, so a run repeats exactly."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    device = model_device(model)
    model.train()
    losses = []
    for step in range(steps):
        ids = repeated_tokens(batch_size, half_length, vocab_size, seed=seed + step).to(device)  # (B, T)
        logits = model(ids[:, :-1])  # (B, T - 1, V): a prediction after every token but the last
        loss = F.cross_entropy(logits.transpose(1, 2), ids[:, 1:])  # (B, V, T - 1) against (B, T - 1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@torch.no_grad()
def accuracy_by_position(model: nn.Module, ids: torch.Tensor) -> np.ndarray:
    """Share of sequences whose token ``t + 1`` is the model's most likely next token after
    ``ids[:, :t + 1]``, for ``t = 0 .. T - 2``: ``(T - 1,)``; entry ``t`` scores position ``t + 1``."""
    ids = ids.to(model_device(model))
    with eval_mode(model):
        predicted = model(ids[:, :-1]).argmax(dim=-1)  # (B, T - 1, V) -> (B, T - 1)
    return (predicted == ids[:, 1:]).double().mean(dim=0).cpu().numpy()


def ngram_accuracy_by_position(train_ids: torch.Tensor, test_ids: torch.Tensor, order: int) -> np.ndarray:
    """The same accuracy as :func:`accuracy_by_position` for an n-gram model counted on `train_ids`:
    predict the token that most often followed the last ``order - 1`` tokens (within a sequence;
    at the start, the shorter context), the most frequent token for a context never seen.

    >>> train = torch.tensor([[1, 2, 1, 2]])
    >>> ngram_accuracy_by_position(train, torch.tensor([[1, 2, 1, 3]]), order=2).tolist()
    [1.0, 1.0, 0.0]
    """
    check_positive_int("order", order)
    counts: dict[tuple[int, ...], Counter] = defaultdict(Counter)
    for row in train_ids.tolist():
        for t in range(1, len(row)):
            counts[tuple(row[max(0, t - order + 1):t])][row[t]] += 1
    fallback = Counter(token for row in train_ids.tolist() for token in row).most_common(1)[0][0]
    best = {context: c.most_common(1)[0][0] for context, c in counts.items()}
    test = test_ids.tolist()
    right = np.zeros(test_ids.shape[1] - 1)
    for row in test:
        for t in range(1, len(row)):
            right[t - 1] += best.get(tuple(row[max(0, t - order + 1):t]), fallback) == row[t]
    return right / len(test)


def induction_scores(weights: torch.Tensor, half_length: int, prefix_length: int = 0) -> torch.Tensor:
    """Mean attention weight, per head, from each query in the repeated half to the token just
    after the previous occurrence of the query's token: ``weights (B, H, T, T)`` -> ``(H,)``.

    In :func:`repeated_tokens` the token at position ``t`` of the repeat first occurred at
    ``t - half_length``, so the induction target is key ``t - half_length + 1``. Queries run from
    the first repeated token to the last but one (the last has no next token to predict).

    >>> w = torch.zeros(1, 1, 4, 4); w[0, 0, 2, 1] = w[0, 0, 3, 2] = 1.0  # T = 4, half_length = 2
    >>> induction_scores(w, half_length=2).tolist()
    [1.0]
    """
    T = weights.shape[-1]
    queries = torch.arange(prefix_length + half_length, T - 1)  # (Q,)
    targets = queries - half_length + 1  # (Q,): the token after the previous occurrence
    return weights[:, :, queries, targets].mean(dim=(0, 2))  # (B, H, Q) -> (H,)
