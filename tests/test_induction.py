"""Tests for lmcourse.induction: the repeated-tokens data, n-gram and Transformer accuracy by
position, and the induction score, each against hand-built cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmcourse.induction import (accuracy_by_position, induction_scores, ngram_accuracy_by_position,
                                repeated_tokens, train_on_repeats)
from lmcourse.transformer import TransformerConfig, TransformerLM


@pytest.mark.parametrize("half,prefix", [(1, 0), (5, 0), (4, 3)])
def test_repeated_tokens_repeat_the_first_half(half, prefix):
    x = repeated_tokens(50, half, 7, prefix_length=prefix, seed=3)
    assert x.shape == (50, prefix + 2 * half) and x.dtype == torch.long
    assert torch.equal(x[:, prefix:prefix + half], x[:, prefix + half:])
    assert int(x.min()) >= 0 and int(x.max()) < 7


def test_repeated_tokens_are_seeded_and_uniform():
    assert torch.equal(repeated_tokens(4, 6, 10, seed=1), repeated_tokens(4, 6, 10, seed=1))
    assert not torch.equal(repeated_tokens(4, 6, 10, seed=1), repeated_tokens(4, 6, 10, seed=2))
    counts = torch.bincount(repeated_tokens(2000, 10, 5, seed=0)[:, :10].flatten(), minlength=5)
    assert (counts.float() / counts.sum() - 0.2).abs().max() < 0.02  # each token about 1/5 of the time


@pytest.mark.parametrize("bad", [dict(num_sequences=0), dict(half_length=0), dict(vocab_size=-1),
                                 dict(prefix_length=-1)])
def test_repeated_tokens_rejects_bad_sizes(bad):
    args = dict(num_sequences=2, half_length=3, vocab_size=5) | bad
    with pytest.raises(ValueError):
        repeated_tokens(**args)


def test_ngram_cannot_predict_the_repeat():
    train, test = repeated_tokens(3000, 8, 16, seed=0), repeated_tokens(500, 8, 16, seed=1)
    for order in (2, 3):
        acc = ngram_accuracy_by_position(train, test, order)
        assert acc.shape == (15,)
        assert abs(acc.mean() - 1 / 16) < 0.03  # chance in both halves


class Oracle(torch.nn.Module):
    """Logits that put all mass on the token `half_length` positions back (the repeat), else token 0."""

    def __init__(self, half_length: int, vocab_size: int) -> None:
        super().__init__()
        self.half, self.vocab = half_length, vocab_size

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        B, T = ids.shape
        logits = torch.zeros(B, T, self.vocab)
        rows = torch.arange(B)
        for t in range(T):
            source = t + 1 - self.half  # the next token's first occurrence
            logits[rows, t, ids[:, source] if source >= 0 else 0] = 1.0
        return logits


def test_accuracy_by_position_against_an_oracle():
    ids = repeated_tokens(200, 5, 50, seed=0)
    acc = accuracy_by_position(Oracle(5, 50), ids)
    assert acc.shape == (9,)
    np.testing.assert_allclose(acc[4:], 1.0)  # positions 5..9: the repeat, known to an oracle of the period
    assert acc[:4].max() < 0.2  # positions 1..4: guesses of token 0


def test_induction_scores_find_the_target_head():
    T, half = 8, 4
    w = torch.zeros(2, 3, T, T)  # (B, H, T, T)
    for t in range(T):
        w[:, 0, t, t] = 1.0  # head 0: itself
        w[:, 1, t, max(t - half + 1, 0)] = 1.0  # head 1: the token after the previous occurrence
        w[:, 2, t, 0] = 1.0  # head 2: the first token
    scores = induction_scores(w, half)
    torch.testing.assert_close(scores, torch.tensor([0.0, 1.0, 0.0]))


def test_a_small_transformer_learns_to_copy_the_repeat():
    """A few seconds of training: the repeated half far above chance, the first half at chance."""
    torch.manual_seed(0)
    model = TransformerLM(TransformerConfig(vocab_size=8, context_length=12, emb_dim=32, num_heads=2,
                                            num_layers=2, dropout=0.0, positions="learned"))
    losses = train_on_repeats(model, steps=150, half_length=6, vocab_size=8, batch_size=32, lr=1e-2)
    assert losses[-1] < losses[0]
    acc = accuracy_by_position(model, repeated_tokens(500, 6, 8, seed=99))
    assert acc[6:].mean() > 0.8 and acc[:5].mean() < 0.3
