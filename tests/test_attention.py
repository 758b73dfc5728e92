"""Tests for lmcourse.attention against its oracles: ``F.scaled_dot_product_attention`` over
shapes and masks (hypothesis too), hand-worked softmaxes, the variance argument for the
1/sqrt(d_k) scale, ``nn.MultiheadAttention`` (outputs, weights, gradients) through
``MultiHeadAttention.from_torch``, Bahdanau's additive attention computed by hand, and the
error messages.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lmcourse.attention import (AdditiveAttention, MultiHeadAttention, causal_mask, padding_mask,
                                scaled_dot_product_attention)



def randn(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def random_bool_mask(*shape, seed=0, p=0.6):
    """True with probability p, with the first query row fully blocked (torch gives zeros there)."""
    mask = torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) < p
    mask[..., 0, :] = False
    return mask


def qkv(lead, L, S, E, Ev, seed=0):
    return randn(*lead, L, E, seed=seed), randn(*lead, S, E, seed=seed + 1), randn(*lead, S, Ev, seed=seed + 2)


def close(a, b, atol=1e-5):
    torch.testing.assert_close(a, b, atol=atol, rtol=0)


# --- scaled dot-product attention against torch -----------------------------------------------

SHAPES = [((), 5, 7, 8, 8),  # (L, E): no batch dimensions
          ((3,), 4, 4, 6, 6), ((2, 3), 5, 6, 8, 3), ((2, 2, 3), 3, 5, 4, 7), ((1, 4), 1, 9, 2, 2)]


@pytest.mark.parametrize("lead,L,S,E,Ev", SHAPES)
def test_sdpa_matches_torch_without_mask(lead, L, S, E, Ev):
    q, k, v = qkv(lead, L, S, E, Ev)
    out = scaled_dot_product_attention(q, k, v)
    assert out.shape == (*lead, L, Ev)
    close(out, F.scaled_dot_product_attention(q, k, v))


@pytest.mark.parametrize("L,S", [(5, 5), (3, 6), (6, 3), (1, 4)])
def test_sdpa_matches_torch_causal(L, S):
    q, k, v = qkv((2, 3), L, S, 8, 5)
    close(scaled_dot_product_attention(q, k, v, is_causal=True),
          F.scaled_dot_product_attention(q, k, v, is_causal=True))
    close(scaled_dot_product_attention(q, k, v, mask=causal_mask(L, S)),
          F.scaled_dot_product_attention(q, k, v, is_causal=True))


@pytest.mark.parametrize("mask_shape", [(5, 7), (2, 1, 5, 7), (2, 3, 5, 7), (1, 3, 1, 7), (1, 7)])
@pytest.mark.parametrize("seed", [0, 1])
def test_sdpa_matches_torch_with_boolean_masks(mask_shape, seed):
    q, k, v = qkv((2, 3), 5, 7, 8, 4, seed=seed)
    mask = torch.rand(mask_shape, generator=torch.Generator().manual_seed(seed)) < 0.6
    if mask_shape[-2] > 1:
        mask[..., 0, :] = False  # one query that may see nothing at all
    close(scaled_dot_product_attention(q, k, v, mask=mask), F.scaled_dot_product_attention(q, k, v, attn_mask=mask))


@pytest.mark.parametrize("mask_shape", [(5, 7), (2, 1, 5, 7), (2, 3, 5, 7)])
def test_sdpa_matches_torch_with_float_masks(mask_shape):
    q, k, v = qkv((2, 3), 5, 7, 8, 4, seed=3)
    mask = randn(*mask_shape, seed=4)
    mask = mask.masked_fill(random_bool_mask(*mask_shape, seed=5, p=0.7) == 0, float("-inf"))
    close(scaled_dot_product_attention(q, k, v, mask=mask), F.scaled_dot_product_attention(q, k, v, attn_mask=mask))


def test_sdpa_matches_torch_with_padding_masks():
    lengths = [3, 7, 1]
    q3, k3, v3 = qkv((3,), 5, 7, 8, 4, seed=6)  # (B, L, E)
    mask = padding_mask(lengths, 7)  # (B, 1, S)
    assert mask.shape == (3, 1, 7)
    close(scaled_dot_product_attention(q3, k3, v3, mask=mask), F.scaled_dot_product_attention(q3, k3, v3, attn_mask=mask))
    q4, k4, v4 = qkv((3, 2), 5, 7, 8, 4, seed=7)  # (B, H, L, E)
    close(scaled_dot_product_attention(q4, k4, v4, mask=mask[:, None]),
          F.scaled_dot_product_attention(q4, k4, v4, attn_mask=mask[:, None]))
    both = mask[:, None] & causal_mask(5, 7)  # padding and causal: (B, 1, L, S)
    close(scaled_dot_product_attention(q4, k4, v4, mask=both), F.scaled_dot_product_attention(q4, k4, v4, attn_mask=both))


def test_sdpa_fully_masked_rows_give_zeros():
    q, k, v = qkv((2,), 3, 4, 8, 5)
    mask = torch.ones(3, 4, dtype=torch.bool)
    mask[1] = False
    out, w = scaled_dot_product_attention(q, k, v, mask=mask, return_weights=True)
    assert out[:, 1].eq(0).all() and w[:, 1].eq(0).all() and not out[:, 0].eq(0).all()
    assert F.scaled_dot_product_attention(q, k, v, attn_mask=mask)[:, 1].eq(0).all()  # torch agrees


@st.composite
def attention_case(draw):
    lead = tuple(draw(st.lists(st.integers(1, 3), max_size=3)))
    L, S, E, Ev = (draw(st.integers(1, 6)) for _ in range(4))
    kind = draw(st.sampled_from(["none", "causal", "bool", "float"]))
    mask_lead = lead[draw(st.integers(0, len(lead))):]  # a suffix of the leading dims broadcasts
    mask_lead = tuple(1 if draw(st.booleans()) else n for n in mask_lead)
    return lead, L, S, E, Ev, kind, (*mask_lead, L, S), draw(st.integers(0, 10_000))


@settings(max_examples=60, deadline=None)
@given(attention_case())
def test_sdpa_matches_torch_on_random_shapes_and_masks(case):
    lead, L, S, E, Ev, kind, mask_shape, seed = case
    q, k, v = qkv(lead, L, S, E, Ev, seed=seed)
    kwargs, torch_kwargs = {}, {}
    if kind == "causal":
        kwargs, torch_kwargs = {"is_causal": True}, {"is_causal": True}
    elif kind == "bool":
        mask = torch.rand(mask_shape, generator=torch.Generator().manual_seed(seed)) < 0.5
        kwargs, torch_kwargs = {"mask": mask}, {"attn_mask": mask}
    elif kind == "float":
        mask = randn(*mask_shape, seed=seed + 3)
        mask = mask.masked_fill(torch.rand(mask_shape, generator=torch.Generator().manual_seed(seed)) < 0.3,
                                float("-inf"))
        kwargs, torch_kwargs = {"mask": mask}, {"attn_mask": mask}
    out, w = scaled_dot_product_attention(q, k, v, return_weights=True, **kwargs)
    assert out.shape == (*lead, L, Ev) and w.shape == (*lead, L, S)
    close(out, F.scaled_dot_product_attention(q, k, v, **torch_kwargs))
    sums = w.sum(-1)
    assert torch.all(((sums - 1).abs() < 1e-5) | (sums == 0))


# --- the weights ------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["bool", "float", "causal"])
def test_weights_are_distributions_that_ignore_masked_keys(kind):
    q, k, v = qkv((2, 3), 6, 6, 8, 4, seed=8)
    allowed = random_bool_mask(2, 3, 6, 6, seed=9) if kind != "causal" else causal_mask(6).expand(2, 3, 6, 6)
    if kind == "bool":
        mask = allowed
    elif kind == "float":
        mask = torch.zeros(allowed.shape).masked_fill(~allowed, float("-inf"))
    else:
        mask = None
    _, w = scaled_dot_product_attention(q, k, v, mask=mask, is_causal=kind == "causal", return_weights=True)
    assert w[~allowed].eq(0).all()
    assert (w[allowed] > 0).all()
    any_allowed = allowed.any(-1)  # (B, H, L)
    close(w.sum(-1)[any_allowed], torch.ones(int(any_allowed.sum())))
    assert w.sum(-1)[~any_allowed].eq(0).all()


def test_hand_worked_example_from_the_docstring():
    q = torch.tensor([[1.0, 0.0]])
    k = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    v = torch.tensor([[10.0], [20.0]])
    out, w = scaled_dot_product_attention(q, k, v, return_weights=True)
    e = math.exp(1 / math.sqrt(2))  # scores [1, 0] / sqrt(2)
    assert w[0].tolist() == pytest.approx([e / (e + 1), 1 / (e + 1)], abs=1e-6)
    assert w[0].tolist() == pytest.approx([0.6698, 0.3302], abs=1e-4)
    assert out.item() == pytest.approx(10 * 0.66976 + 20 * 0.33024, abs=1e-3)  # 13.30


def test_hand_worked_two_queries_with_and_without_the_causal_mask():
    q = torch.tensor([[0.0, 0.0], [2.0, 0.0]])  # a query with no preference, then one that likes key 0
    k = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    v = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # one-hot values: the output shows the weights
    out, w = scaled_dot_product_attention(q, k, v, return_weights=True)
    # Row 0: scores [0, 0] -> [0.5, 0.5]. Row 1: scores [2, 0] / sqrt(2) = [1.4142, 0]
    # -> [e^1.4142, 1] / (e^1.4142 + 1) = [4.1133, 1] / 5.1133 = [0.8044, 0.1956].
    assert w.tolist()[0] == pytest.approx([0.5, 0.5], abs=1e-6)
    assert w.tolist()[1] == pytest.approx([0.8044, 0.1956], abs=1e-4)
    close(out, w)
    out, w = scaled_dot_product_attention(q, k, v, is_causal=True, return_weights=True)
    assert w.tolist()[0] == [1.0, 0.0]  # query 0 sees key 0 alone
    assert w.tolist()[1] == pytest.approx([0.8044, 0.1956], abs=1e-4)


@pytest.mark.parametrize("d_k", [16, 256])
def test_scaling_keeps_the_score_variance_at_one(d_k):
    """q . k of unit-variance entries has variance d_k; dividing by sqrt(d_k) brings it to 1."""
    n = 20_000
    q, k = randn(n, d_k, seed=10), randn(n, d_k, seed=11)
    dots = (q * k).sum(-1)  # n independent scores
    assert dots.var().item() == pytest.approx(d_k, rel=0.1)
    assert (dots / math.sqrt(d_k)).var().item() == pytest.approx(1.0, rel=0.1)
    # ... and that is the scale the function uses: with one-hot values the output is the weights.
    q1, k1 = q[:4], k[:6]
    _, w = scaled_dot_product_attention(q1, k1, torch.eye(6), return_weights=True)
    close(w, torch.softmax(q1 @ k1.T / math.sqrt(d_k), dim=-1))


# --- multi-head attention against nn.MultiheadAttention -------------------------------------

C, H, B, T, S = 12, 3, 2, 5, 7


def torch_mha(bias=True, seed=0):
    torch.manual_seed(seed)
    module = nn.MultiheadAttention(C, H, batch_first=True, bias=bias).eval()
    with torch.no_grad():  # non-zero biases so that copying them is tested
        if bias:
            module.in_proj_bias.normal_()
            module.out_proj.bias.normal_()
    return module


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("bias", [True, False])
class TestFromTorch:
    def test_self_attention(self, fused, bias):
        ref = torch_mha(bias)
        mine = MultiHeadAttention.from_torch(ref, fused=fused)
        x = randn(B, T, C, seed=12)
        close(mine(x), ref(x, x, x, need_weights=False)[0])

    def test_causal(self, fused, bias):
        ref = torch_mha(bias)
        mine = MultiHeadAttention.from_torch(ref, causal=True, fused=fused)
        x = randn(B, T, C, seed=16)
        expected = ref(x, x, x, attn_mask=~causal_mask(T), need_weights=False)[0]  # torch: True = blocked
        close(mine(x), expected)
        assert not torch.allclose(MultiHeadAttention.from_torch(ref, fused=fused)(x), expected, atol=1e-3)

    def test_key_padding(self, fused, bias):
        ref = torch_mha(bias)
        mine = MultiHeadAttention.from_torch(ref, fused=fused)
        x = randn(B, S, C, seed=17)
        real = padding_mask([4, 7], S)  # (B, 1, S), True on real tokens
        expected = ref(x, x, x, key_padding_mask=~real[:, 0], need_weights=False)[0]
        close(mine(x, mask=real[:, None]), expected)  # (B, 1, 1, S)

    def test_causal_and_padding_together(self, fused, bias):
        ref = torch_mha(bias)
        mine = MultiHeadAttention.from_torch(ref, causal=True, fused=fused)
        x = randn(B, T, C, seed=19)
        real = padding_mask([3, 5], T)[:, None]  # (B, 1, 1, T)
        expected = ref(x, x, x, attn_mask=~causal_mask(T), key_padding_mask=~real[:, 0, 0],
                       need_weights=False)[0]
        close(mine(x, mask=real), expected)
        float_mask = torch.zeros(real.shape).masked_fill(~real, float("-inf"))
        close(mine(x, mask=float_mask), expected)

    def test_gradients(self, fused, bias):
        ref = torch_mha(bias)
        mine = MultiHeadAttention.from_torch(ref, causal=True, fused=fused)
        x1 = randn(B, T, C, seed=20).requires_grad_()
        x2 = x1.detach().clone().requires_grad_()
        (mine(x1) * randn(B, T, C, seed=21)).sum().backward()
        (ref(x2, x2, x2, attn_mask=~causal_mask(T), need_weights=False)[0] * randn(B, T, C, seed=21)).sum().backward()
        close(x1.grad, x2.grad)
        close(mine.in_proj.weight.grad, ref.in_proj_weight.grad)
        close(mine.out_proj.weight.grad, ref.out_proj.weight.grad)
        if bias:
            close(mine.in_proj.bias.grad, ref.in_proj_bias.grad)


@pytest.mark.parametrize("causal", [False, True])
def test_multi_head_weights_match_torch(causal):
    ref = torch_mha()
    mine = MultiHeadAttention.from_torch(ref, causal=causal)
    x = randn(B, T, C, seed=22)
    attn_mask = ~causal_mask(T) if causal else None
    out, w = mine(x, return_weights=True)
    assert w.shape == (B, H, T, T)
    ref_out, ref_avg = ref(x, x, x, attn_mask=attn_mask, need_weights=True, average_attn_weights=True)
    _, ref_heads = ref(x, x, x, attn_mask=attn_mask, need_weights=True, average_attn_weights=False)
    close(out, ref_out)
    close(w.mean(1), ref_avg)  # (B, H, T, S) -> (B, T, S)
    close(w, ref_heads)


def test_one_head_is_plain_attention_of_the_projections():
    mha = MultiHeadAttention(C, 1, bias=False)
    x = randn(B, T, C, seed=23)
    q, k, v = (x @ w.T for w in mha.in_proj.weight.chunk(3))  # (B, T, C) @ (C, C)
    close(mha(x), scaled_dot_product_attention(q, k, v) @ mha.out_proj.weight.T)


# --- errors -----------------------------------------------------------------------------------

@pytest.mark.parametrize("call,error,message", [
    (lambda: scaled_dot_product_attention(randn(3, 4), randn(5, 6), randn(5, 2)), ValueError,
     r"same size per head.*q is \(\.\.\., L, 4\), k is \(\.\.\., S, 6\)"),
    (lambda: scaled_dot_product_attention(randn(3, 4), randn(5, 4), randn(6, 2)), ValueError,
     "keys and values must come in pairs: k has 5 positions, v has 6"),
    (lambda: scaled_dot_product_attention(randn(3, 4), randn(5, 4), randn(5, 2), mask=torch.ones(3, 4, dtype=torch.bool)),
     ValueError, r"mask of shape \(3, 4\) does not broadcast to the scores' shape \(3, 5\)"),
    (lambda: scaled_dot_product_attention(randn(3, 4), randn(5, 4), randn(5, 2), mask=torch.ones(3, 5, dtype=torch.long)),
     TypeError, r"mask must be bool.*torch.int64.*mask.bool\(\)"),
    (lambda: scaled_dot_product_attention(randn(3, 4), randn(5, 4), randn(5, 2), mask=[[True] * 5] * 3),
     TypeError, "mask must be a tensor"),
    (lambda: scaled_dot_product_attention(randn(3, 4), randn(3, 4), randn(3, 2), mask=causal_mask(3), is_causal=True),
     ValueError, "either is_causal=True or a mask, not both"),
    (lambda: scaled_dot_product_attention(torch.ones(3, 4, dtype=torch.long), randn(5, 4), randn(5, 2)), TypeError,
     "q must be a floating-point tensor, got torch.int64"),
    (lambda: scaled_dot_product_attention(randn(3, 4), [[0.0] * 4], randn(5, 2)), TypeError,
     "k must be a floating-point tensor, got list"),
    (lambda: scaled_dot_product_attention(randn(4), randn(5, 4), randn(5, 2)), ValueError,
     r"q must have at least 2 dimensions.*got shape \(4,\)"),
])
def test_sdpa_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("call,error,message", [
    (lambda: MultiHeadAttention(10, 4), ValueError, r"emb_dim=10 is not divisible by num_heads=4.*\[1, 2, 5, 10\]"),
    (lambda: MultiHeadAttention(0, 1), ValueError, "emb_dim must be a positive int"),
    (lambda: MultiHeadAttention(8, True), ValueError, "num_heads must be a positive int"),
    (lambda: MultiHeadAttention(C, H)(randn(B, T, C + 1)), ValueError, rf"x must be \(B, T, C={C}\), got \({B}, {T}, {C + 1}\)"),
    (lambda: MultiHeadAttention(C, H)(randn(T, C)), ValueError, "x must have at least 3 dimensions"),
    (lambda: MultiHeadAttention(C, H)(torch.ones(B, T, C, dtype=torch.long)), TypeError, "x must be a floating-point"),
    (lambda: MultiHeadAttention(C, H, num_kv_heads=2), ValueError, "num_heads=3 is not divisible by num_kv_heads=2"),
    (lambda: MultiHeadAttention(C, H, num_kv_heads=0), ValueError, "num_kv_heads must be a positive int"),
    (lambda: MultiHeadAttention(C, H)(randn(B, T, C), mask=torch.zeros(T, T, dtype=torch.float64)), TypeError,
     "float mask must have the dtype of q"),
    (lambda: MultiHeadAttention(C, H, fused=True)(randn(B, T, C), return_weights=True), ValueError,
     "fused kernel does not return attention weights; use fused=False"),
    (lambda: MultiHeadAttention(C, H)(randn(B, T, C), mask=torch.ones(T, T + 1, dtype=torch.bool)), ValueError,
     rf"mask of shape \({T}, {T + 1}\) does not broadcast.*\({B}, {H}, {T}, {T}\)"),
    (lambda: MultiHeadAttention(C, H)(randn(B, T, C), mask=torch.ones(T, T, dtype=torch.long)), TypeError,
     r"mask must be bool.*torch.int64"),
    (lambda: MultiHeadAttention.from_torch(nn.Linear(C, C)), TypeError, "expected nn.MultiheadAttention, got Linear"),
    (lambda: MultiHeadAttention.from_torch(nn.MultiheadAttention(C, H, kdim=5, vdim=5)), ValueError,
     "packed"),
])
def test_multi_head_attention_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


# --- regressions: bugs found in review, fixed ------------------------------------------------

def test_fully_masked_row_with_float_mask_has_finite_gradients():
    q, k, v = (t.requires_grad_() for t in qkv((2,), 3, 4, 8, 5))
    mask = torch.zeros(3, 4)
    mask[1] = float("-inf")
    scaled_dot_product_attention(q, k, v, mask=mask).sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))


def test_causal_left_padding_with_float_mask_has_finite_gradients():
    mha = MultiHeadAttention(C, H, causal=True)
    x = randn(B, T, C, seed=24).requires_grad_()
    real = padding_mask([T, 3], T).flip(-1)[:, None]  # left padding: (B, 1, 1, T)
    mha(x, mask=torch.zeros(real.shape).masked_fill(~real, float("-inf"))).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_causal_multi_head_attention_rejects_int_mask_clearly():
    with pytest.raises(TypeError, match="mask must be bool"):
        MultiHeadAttention(C, H, causal=True)(randn(B, T, C), mask=torch.ones(T, T, dtype=torch.long))


@pytest.mark.parametrize("option", ["add_bias_kv", "add_zero_attn"])
def test_from_torch_refuses_what_it_cannot_copy(option):
    torch.manual_seed(0)
    ref = nn.MultiheadAttention(C, H, batch_first=True, **{option: True}).eval()
    with pytest.raises(ValueError, match=option):
        MultiHeadAttention.from_torch(ref)


# --- additive attention -----------------------------------------------------------------------

def test_additive_attention_matches_the_formula_by_hand():
    torch.manual_seed(0)
    attn = AdditiveAttention(query_dim=3, key_dim=4, hidden_dim=5)
    s, h = randn(2, 3, seed=25), randn(2, 6, 4, seed=26)  # decoder state (B, Q), encoder states (B, S, K)
    mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    context, w = attn(s, h, mask=mask)
    assert context.shape == (2, 4) and w.shape == (2, 6)
    W, U, b, v = attn.query_proj.weight, attn.key_proj.weight, attn.key_proj.bias, attn.score.weight[0]
    for i in range(2):
        scores = [(v * torch.tanh(W @ s[i] + U @ h[i, j] + b)).sum() if mask[i, j] else -math.inf
                  for j in range(6)]
        expected_w = torch.softmax(torch.stack([torch.as_tensor(x) for x in scores]), dim=0)
        close(w[i], expected_w)
        close(context[i], sum(expected_w[j] * h[i, j] for j in range(6)))
    close(w.sum(-1), torch.ones(2))
    assert w[1, 4:].eq(0).all() and (w[0] > 0).all()


def test_additive_attention_without_mask_sees_every_position():
    attn = AdditiveAttention(3, 4, 5)
    context, w = attn(randn(2, 3, seed=27), randn(2, 6, 4, seed=28))
    assert (w > 0).all()
    close(w.sum(-1), torch.ones(2))


def test_multi_head_attention_refuses_a_three_dimensional_mask():
    mha = MultiHeadAttention(C, H)
    x = torch.randn(H, 5, C)  # B == H: a (B, 1, S) mask would silently line B up with the heads
    with pytest.raises(ValueError, match=r"padding_mask\(lengths, S\)\[:, None\]"):
        mha(x, mask=padding_mask([3, 5, 4], 5))


def test_mixed_dtypes_are_refused_clearly():
    q, k, v = qkv((2,), 3, 4, 8, 5)
    with pytest.raises(TypeError, match="one dtype"):
        scaled_dot_product_attention(q, k.double(), v)
    with pytest.raises(TypeError, match="float mask must have the dtype of q"):
        scaled_dot_product_attention(q, k, v, mask=torch.zeros(3, 4, dtype=torch.float64))


def test_additive_attention_with_every_position_masked_gives_zeros():
    att = AdditiveAttention(4, 6, 5)
    context, weights = att(torch.randn(2, 4), torch.randn(2, 3, 6), mask=torch.tensor([[True, False, True], [False] * 3]))
    assert torch.all(weights[1] == 0) and torch.all(context[1] == 0)
    assert torch.allclose(weights[0].sum(), torch.tensor(1.0))


# --- grouped-query attention ------------------------------------------------------------------

def gqa_reference(mha: MultiHeadAttention, x: torch.Tensor) -> torch.Tensor:
    """Grouped-query attention written out: project, copy each key/value head to its query heads, attend."""
    H, Hkv, D = mha.num_heads, mha.num_kv_heads, mha.head_dim
    B, T, _ = x.shape
    q, k, v = mha.in_proj(x).split([H * D, Hkv * D, Hkv * D], dim=-1)
    q = q.view(B, T, H, D).transpose(1, 2)
    k, v = (t.view(B, T, Hkv, 1, D).expand(B, T, Hkv, H // Hkv, D).reshape(B, T, H, D).transpose(1, 2)
            for t in (k, v))  # head h reads key/value head h // (H / Hkv)
    out = F.scaled_dot_product_attention(q, k, v, is_causal=mha.causal)
    return mha.out_proj(out.transpose(1, 2).reshape(B, T, H * D))


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("num_kv_heads", [1, 2, 4])
def test_grouped_query_attention_equals_the_explicit_repeat(num_kv_heads, causal, fused):
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4, causal=causal, fused=fused, num_kv_heads=num_kv_heads)
    assert mha.in_proj.weight.shape == ((4 + 2 * num_kv_heads) * 4, 16)
    x = randn(2, 6, 16, seed=30)
    close(mha(x), gqa_reference(mha, x))


def test_default_num_kv_heads_keeps_the_packed_3c_projection():
    mha = MultiHeadAttention(C, H)
    assert mha.num_kv_heads == H and mha.in_proj.weight.shape == (3 * C, C)
    assert "num_kv_heads" not in repr(mha) and "num_kv_heads=1" in repr(MultiHeadAttention(C, H, num_kv_heads=1))


@pytest.mark.parametrize("fused", [False, True])
def test_grouped_query_cache_keeps_only_the_key_value_heads(fused):
    from lmcourse.attention import KVCache
    from lmcourse.positions import RotaryEmbedding
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4, causal=True, fused=fused, num_kv_heads=2, rotary=RotaryEmbedding(4))
    x = randn(2, 7, 16, seed=31)
    cache = KVCache()
    steps = [mha(x[:, :4], cache=cache)] + [mha(x[:, t:t + 1], cache=cache) for t in range(4, 7)]
    assert cache.keys.shape == (2, 2, 7, 4) and cache.values.shape == (2, 2, 7, 4)
    close(torch.cat(steps, dim=1), mha(x))


def test_grouped_query_weights_are_per_query_head():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4, causal=True, num_kv_heads=1)
    _, w = mha(randn(2, 5, 16, seed=32), return_weights=True)
    assert w.shape == (2, 4, 5, 5)
    close(w.sum(-1), torch.ones(2, 4, 5))


def test_grouped_query_attention_equals_transformers_llama_attention():
    llama = pytest.importorskip("transformers.models.llama.modeling_llama")
    from transformers import LlamaConfig

    from lmcourse.positions import RotaryEmbedding
    H, Hkv, D, T = 4, 2, 8, 6
    config = LlamaConfig(hidden_size=H * D, num_attention_heads=H, num_key_value_heads=Hkv, head_dim=D,
                         rope_theta=100000.0, attention_bias=False)
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    ref = llama.LlamaAttention(config, layer_idx=0).eval()
    mine = MultiHeadAttention(H * D, H, causal=True, bias=False, num_kv_heads=Hkv,
                              rotary=RotaryEmbedding(D, base=100000.0)).eval()
    with torch.no_grad():
        mine.in_proj.weight.copy_(torch.cat([ref.q_proj.weight, ref.k_proj.weight, ref.v_proj.weight]))
        mine.out_proj.weight.copy_(ref.o_proj.weight)
    x = randn(2, T, H * D, seed=33)
    position_ids = torch.arange(T)[None].expand(2, T)
    cos, sin = llama.LlamaRotaryEmbedding(config)(x, position_ids)
    causal = torch.zeros(T, T).masked_fill(~causal_mask(T), float("-inf"))[None, None]  # (1, 1, T, T)
    expected, _ = ref(x, position_embeddings=(cos, sin), attention_mask=causal)
    close(mine(x), expected)


def test_a_repeated_cache_lets_each_row_continue_the_shared_prefix_its_own_way():
    from lmcourse.attention import KVCache
    cache = KVCache()
    cache.append(torch.arange(24.0).view(1, 2, 3, 4), -torch.arange(24.0).view(1, 2, 3, 4))
    rows = cache.repeat(3)
    rows.append(torch.arange(3.0).view(3, 1, 1, 1).expand(3, 2, 1, 4), torch.zeros(3, 2, 1, 4))
    assert rows.keys.shape == (3, 2, 4, 4) and len(cache) == 3  # the shared cache is untouched
    for row in range(3):
        assert torch.equal(rows.keys[row, :, :3], cache.keys[0]) and torch.equal(rows.values[row, :, :3], cache.values[0])
        assert (rows.keys[row, :, 3] == row).all()
    with pytest.raises(ValueError, match="one sequence"):
        rows.repeat(2)
    with pytest.raises(ValueError, match="one sequence"):
        KVCache().repeat(2)
