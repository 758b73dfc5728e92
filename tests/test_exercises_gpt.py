"""The Chapter 6 checkers' oracles against independent references and hand-worked answers. That
each checker passes the chapter's reference, fails a stub and fails every registered wrong answer
is proved over the notebooks by tests/test_exercises.py."""

import numpy as np
import pytest
import torch

import lmcourse.exercises.gpt  # noqa: F401  (registers the chapter's checkers)
from lmcourse.attention import KVCache, causal_mask, scaled_dot_product_attention
from lmcourse.exercises import REGISTRY


def _oracle(name):
    return REGISTRY[name].oracle


@pytest.mark.parametrize("queries, keys", [(1, 1), (3, 3), (1, 9), (4, 10), (7, 8)])
def test_mask_oracle_equals_the_book_causal_mask(queries, keys):
    expected = causal_mask(queries, keys, offset=keys - queries).numpy()
    np.testing.assert_array_equal(_oracle("gpt.causal_offset_mask")(queries, keys), expected)


@pytest.mark.parametrize("case", REGISTRY["gpt.kv_cache_step"].cases, ids=lambda c: c.label[:30])
def test_cache_step_oracle_equals_the_book_kv_cache(case):
    q, k, v, past_k, past_v = case.args
    cache = KVCache()
    if past_k.shape[-2]:
        cache.append(past_k, past_v)
    keys, values = cache.append(k, v)
    out = scaled_dot_product_attention(q, keys, values)  # one query, every key: no mask needed
    expected = _oracle("gpt.kv_cache_step")(*case.args)
    for want, got in zip(expected, (out, keys, values)):
        np.testing.assert_allclose(want, got.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", REGISTRY["gpt.sample_tokens"].cases, ids=lambda c: c.label[:30])
def test_sampling_oracle_is_the_same_with_the_cache(case):
    model, prompt, n = case.args
    settings = dict(temperature=case.kwargs.get("temperature", 1.0), top_k=case.kwargs.get("top_k"),
                    stop_ids=case.kwargs.get("end_id"), seed=case.kwargs.get("seed", 0))
    assert _oracle("gpt.sample_tokens")(*case.args, **case.kwargs) == model.model.generate(prompt, n, **settings)


def test_sampling_oracle_at_temperature_zero_is_the_argmax():
    model = REGISTRY["gpt.sample_tokens"].cases[0].args[0]
    ids = [2, 7]
    for _ in range(6):
        ids.append(int(model(torch.tensor([ids]))[0, -1].argmax()))
    assert _oracle("gpt.sample_tokens")(model, [2, 7], 6, temperature=0.0) == ids[2:]


def test_the_tiny_model_leaves_the_global_random_numbers_alone():
    import copy

    before = torch.random.get_rng_state()
    model = type(REGISTRY["gpt.sample_tokens"].cases[0].args[0])(7, 10)
    assert torch.equal(before, torch.random.get_rng_state()) and copy.deepcopy(model) is model
