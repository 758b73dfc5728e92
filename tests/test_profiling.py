import pytest
import torch
import torch.nn.functional as F

from lmcourse.attention import scaled_dot_product_attention
from lmcourse.profiling import alternating_median_seconds, median_seconds, saved_tensor_bytes


def test_saved_bytes_count_what_backward_needs():
    x = torch.ones(10, 20, requires_grad=True)
    w = torch.ones(20, 30, requires_grad=True)
    # x @ w saves both inputs (200 + 600 floats); tanh saves its output (300 floats)
    assert saved_tensor_bytes(lambda: torch.tanh(x @ w)) == 4 * (200 + 600 + 300)
    assert saved_tensor_bytes(lambda: torch.tanh(x.detach() @ w.detach())) == 0  # nothing to differentiate


def test_the_same_tensor_saved_twice_counts_once():
    x = torch.ones(100, requires_grad=True)
    assert saved_tensor_bytes(lambda: x * x) == 400


def test_from_scratch_attention_keeps_the_t_by_t_weights_and_the_fused_kernel_does_not():
    def both(T):
        q, k, v = (torch.randn(1, 2, T, 16, requires_grad=True) for _ in range(3))
        return (saved_tensor_bytes(lambda: scaled_dot_product_attention(q, k, v, is_causal=True)),
                saved_tensor_bytes(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True)))
    (ours_small, fused_small), (ours_big, fused_big) = both(128), both(512)
    assert ours_big / ours_small > 10  # quadratic: 4x the length, about 16x the bytes
    assert fused_big / fused_small < 5  # linear
    assert ours_big >= 2 * 512 * 512 * 4  # at least the weights of 2 heads, float32


def test_median_seconds_measures_and_checks_its_arguments():
    assert median_seconds(lambda: None, repeats=3) < 0.01
    with pytest.raises(ValueError, match="repeats >= 1"):
        median_seconds(lambda: None, repeats=0)


def test_views_of_one_storage_count_once():
    w = torch.ones(4, 6, requires_grad=True)
    weights = torch.softmax(w, dim=-1)  # softmax saves its output: 24 floats
    assert saved_tensor_bytes(lambda: torch.softmax(w, dim=-1).view(2, 12) @ torch.ones(12, 3)) == 4 * (24 + 36)  # the softmax output once, and the matrix
    assert weights.shape == (4, 6)


def test_alternating_timing_takes_turns_and_returns_one_median_each():
    calls = []
    seconds = alternating_median_seconds({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                                         rounds=3, repeats=2)
    # each round: one warm-up call and two timed calls of a, then the same of b
    assert calls == (["a"] * 3 + ["b"] * 3) * 3
    assert set(seconds) == {"a", "b"} and all(s >= 0 for s in seconds.values())


def test_alternating_timing_ranks_a_slower_function_slower():
    seconds = alternating_median_seconds({"fast": lambda: sum(range(100)), "slow": lambda: sum(range(200_000))},
                                         rounds=2, repeats=3)
    assert seconds["slow"] > seconds["fast"]


def test_alternating_timing_needs_a_round():
    with pytest.raises(ValueError, match="rounds >= 1"):
        alternating_median_seconds({"a": lambda: None}, rounds=0)
