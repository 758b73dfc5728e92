"""Tests for lmcourse.feedforward: the Bengio et al. (2003) model's protocol (shapes, carried state
equals one long chunk, the window is exactly the last n-1 tokens, padding at the start), its
output layers (full, adaptive, direct connections), errors, generation, and a learning test
whose pattern needs two tokens of context.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from lmcourse.data import batchify, get_batch
from lmcourse.feedforward import FeedForwardConfig, FeedForwardLM

V = 19



def make_model(**overrides):
    torch.manual_seed(0)
    cfg = FeedForwardConfig(vocab_size=V, context=3, emb_dim=5, hidden_dim=16, dropout=0.0)
    return FeedForwardLM(dataclasses.replace(cfg, **overrides)).eval()


def random_ids(T, B, seed=0):
    return torch.randint(0, V, (T, B), generator=torch.Generator().manual_seed(seed))


VARIANTS = pytest.mark.parametrize("overrides", [
    {}, {"direct": True}, {"adaptive_cutoffs": (4, 10)}, {"direct": True, "adaptive_cutoffs": (4,)},
], ids=["full", "direct", "adaptive", "direct+adaptive"])


@VARIANTS
def test_shapes_and_nll_equals_gathered_log_probs(overrides):
    model = make_model(**overrides)
    x, y = random_ids(6, 4), random_ids(6, 4, seed=1)
    nll, state = model.nll(x, y, None)
    logp, state2 = model.log_probs(x, None)
    assert nll.shape == (6, 4) and logp.shape == (6, 4, V)
    assert torch.equal(state, x[-3:]) and torch.equal(state2, x[-3:])  # the last n-1 = 3 tokens
    torch.testing.assert_close(nll, F.nll_loss(logp.view(-1, V), y.view(-1), reduction="none").view(6, 4),
                               atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logp.logsumexp(-1), torch.zeros(6, 4), atol=1e-5, rtol=0)


@VARIANTS
@settings(max_examples=10, deadline=None)
@given(cuts=st.lists(st.integers(1, 9), max_size=3, unique=True))
def test_carried_state_equals_one_long_chunk(overrides, cuts):
    """Chunks of any length, including chunks shorter than the context (1 or 2 tokens)."""
    model = make_model(**overrides)
    x, y = random_ids(10, 2), random_ids(10, 2, seed=1)
    with torch.no_grad():
        whole, _ = model.nll(x, y, None)
        parts, state = [], None
        bounds = [0, *sorted(cuts), 10]
        for a, b in zip(bounds, bounds[1:]):
            nll, state = model.nll(x[a:b], y[a:b], state)
            parts.append(nll)
    torch.testing.assert_close(torch.cat(parts), whole, atol=1e-6, rtol=1e-6)


def test_window_is_exactly_the_last_n_minus_1_tokens():
    model = make_model(context=3)  # n = 4: predicting x[t+1] reads x[t-2], x[t-1], x[t]
    x = random_ids(8, 1)
    t = 6
    base = model.log_probs(x)[0][t]
    outside, inside = x.clone(), x.clone()
    outside[t - 3] = (x[t - 3] + 1) % V  # n positions before the predicted token
    inside[t - 2] = (x[t - 2] + 1) % V  # n-1 positions before it
    assert torch.equal(model.log_probs(outside)[0][t], base)
    assert not torch.allclose(model.log_probs(inside)[0][t], base)


def test_start_of_stream_is_padded_with_pad_id():
    model = make_model(pad_id=7)
    x = random_ids(5, 2)
    torch.testing.assert_close(model.log_probs(x, None)[0], model.log_probs(x, torch.full((3, 2), 7))[0])
    windows, _ = model.context_windows(torch.tensor([[4], [5]]), None)
    assert windows[:, 0].tolist() == [[7, 7, 4], [7, 4, 5]]


def test_direct_connections_are_the_embeddings_fed_to_the_output():
    model = make_model(direct=True)
    assert model.decoder.in_features == 16 + 3 * 5  # tanh hidden units + (n-1) * emb_dim
    model_plain = make_model()
    assert model.num_parameters == model_plain.num_parameters + V * 3 * 5


def test_config_round_trips_and_tiny_preset():
    cfg = FeedForwardConfig(vocab_size=100, adaptive_cutoffs=(10, 50), direct=True)
    assert FeedForwardConfig(**json.loads(json.dumps(dataclasses.asdict(cfg)))) == cfg
    assert FeedForwardLM(FeedForwardConfig.tiny(50)).config.context == 3


@pytest.mark.parametrize("overrides, error, message", [
    (dict(context=0), ValueError, "context must be a positive int"),
    (dict(pad_id=V), ValueError, r"pad_id must be an id in \[0, vocab_size=19\)"),
    (dict(adaptive_cutoffs=(10, 4)), ValueError, "strictly increasing"),
    (dict(adaptive_cutoffs=(4, V)), ValueError, "below vocab_size=19"),
    (dict(dropout=-0.1), ValueError, "dropout"),
])
def test_bad_configs(overrides, error, message):
    with pytest.raises(error, match=message):
        FeedForwardConfig(**{**dict(vocab_size=V), **overrides})


def test_bad_inputs_give_clear_errors():
    model = make_model()
    x = random_ids(4, 2)
    with pytest.raises(TypeError, match="LongTensor"):
        model.log_probs(x.double(), None)
    with pytest.raises(ValueError, match=r"\(T, B\)"):
        model.log_probs(x[None], None)
    with pytest.raises(ValueError, match=r"outside \[0, 19\)"):
        model.nll(x - 1, x, None)
    with pytest.raises(ValueError, match=r"state \(the previous n-1 tokens\) must have shape \(3, 2\)"):
        model.nll(x, x, x[:2])
    with pytest.raises(TypeError, match="state .* LongTensor"):
        model.nll(x, x, x[:3].float())
    with pytest.raises(ValueError, match=r"targets must have shape \(4, 2\)"):
        model.nll(x, x[:, :1], None)
    with pytest.raises(TypeError, match="FeedForwardConfig"):
        FeedForwardLM(dict(vocab_size=V))


def test_generate_is_reproducible_and_respects_stop_ids():
    model = make_model(direct=True).train()
    a = model.generate([1, 2], 25, seed=3)
    assert model.training and a == model.generate([1, 2], 25, seed=3)
    assert a != model.generate([1, 2], 25, seed=4)
    stop = a[10]
    assert model.generate([1, 2], 25, seed=3, stop_ids=stop) == a[:a.index(stop) + 1]
    assert model.generate([1, 2], 25, seed=3, use_cache=False) == a  # re-reading the window: same ids


def train(model, stream, epochs=30, lr=0.03):
    source = batchify(stream, 4)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    for _ in range(epochs):
        state = None
        for i in range(0, len(source) - 1, 12):
            x, y = get_batch(source, i, 12)
            nll, state = model.nll(x, y, state)
            opt.zero_grad()
            nll.mean().backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        return model.nll(source[:-1], source[1:], None)[0][4:].mean().item()


def test_learns_a_pattern_that_needs_two_tokens_of_context():
    """"a a b b" repeated: after "a" comes "a" or "b" half of the time each, so one token of context
    cannot do better than ln 2 = 0.69 nats; two tokens determine the next one."""
    stream = torch.tensor([3, 3, 4, 4] * 60)
    cfg = FeedForwardConfig(vocab_size=6, emb_dim=8, hidden_dim=16, dropout=0.0)
    torch.manual_seed(0)
    assert train(FeedForwardLM(dataclasses.replace(cfg, context=2)), stream) < 0.1
    torch.manual_seed(0)
    assert train(FeedForwardLM(dataclasses.replace(cfg, context=1)), stream) > 0.6
