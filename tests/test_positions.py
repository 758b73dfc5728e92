"""Tests for lmcourse.positions: the defining properties of each positional scheme and oracles.

Sinusoids: hand-worked values, a scalar transcription of the paper's formula, constant row norm,
a fixed linear map (2x2 rotations) from position p to p + k, dot products that depend on k only.
Learned: a trainable table. RoPE: lengths kept, scores that depend only on the signed offset n - m, the
rotation-matrix form of the paper, ``transformers``' LLaMA code, and its use inside attention.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from lmcourse.attention import MultiHeadAttention, causal_mask, scaled_dot_product_attention
from lmcourse.positions import (LearnedPositions, RotaryEmbedding, SinusoidalPositions,
                                sinusoidal_positions)



def randn(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# --- sinusoidal -------------------------------------------------------------------------------

def test_sinusoidal_position_zero_is_sin0_cos0():
    assert sinusoidal_positions(1, 8)[0].tolist() == [0.0, 1.0] * 4


def test_sinusoidal_hand_worked_values():
    # dim 6, base 10000: angles p, p / 10000^(2/6) = p / 21.544, p / 10000^(4/6) = p / 464.16
    pe = sinusoidal_positions(3, 6)
    p = 2
    expected = [math.sin(2), math.cos(2), math.sin(p / 21.5443469), math.cos(p / 21.5443469),
                math.sin(p / 464.158883), math.cos(p / 464.158883)]
    assert pe.shape == (3, 6)
    assert pe[2].tolist() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("length,dim,base", [(7, 4, 10000.0), (50, 16, 10000.0), (20, 10, 100.0)])
def test_sinusoidal_matches_scalar_formula(length, dim, base):
    """A transcription of Vaswani et al. (2017), section 3.5, one entry at a time."""
    expected = [[math.sin(p / base ** (i / dim)) if i % 2 == 0 else math.cos(p / base ** ((i - 1) / dim))
                 for i in range(dim)] for p in range(length)]
    got = sinusoidal_positions(length, dim, base)
    assert got.dtype == torch.get_default_dtype()
    torch.testing.assert_close(got, torch.tensor(expected), atol=1e-6, rtol=0)


@pytest.mark.parametrize("dim", [2, 8, 64])
def test_sinusoidal_rows_have_norm_sqrt_half_dim(dim):
    norms = sinusoidal_positions(200, dim).norm(dim=-1)
    torch.testing.assert_close(norms, torch.full((200,), math.sqrt(dim / 2)))


def shift_matrix(k: int, dim: int, base: float = 10000.0) -> torch.Tensor:
    """M_k, block-diagonal: for pair i with w = base^(-2i/dim), [sin, cos](w(p+k)) =
    [[cos wk, sin wk], [-sin wk, cos wk]] [sin, cos](wp)."""
    M = torch.zeros(dim, dim, dtype=torch.float64)
    for i in range(dim // 2):
        wk = k * base ** (-2 * i / dim)
        M[2 * i:2 * i + 2, 2 * i:2 * i + 2] = torch.tensor([[math.cos(wk), math.sin(wk)],
                                                           [-math.sin(wk), math.cos(wk)]])
    return M


@pytest.mark.parametrize("k", [1, 3, 17])
def test_sinusoidal_shift_is_a_fixed_linear_map(k):
    """PE(p + k) = M_k PE(p) for every p, with M_k independent of p (the paper's motivation)."""
    dim, length = 16, 60
    pe = sinusoidal_positions(length + k, dim).double()
    M = shift_matrix(k, dim)
    torch.testing.assert_close(pe[:length] @ M.T, pe[k:], atol=1e-6, rtol=0)  # (T, C) @ (C, C)
    assert not torch.allclose(pe[:length] @ shift_matrix(k + 1, dim).T, pe[k:], atol=1e-3)


def test_sinusoidal_dot_product_depends_only_on_offset():
    dim = 32
    pe = sinusoidal_positions(120, dim).double()
    for k in (0, 1, 5, 40):
        dots = (pe[:80] * pe[k:80 + k]).sum(-1)  # PE(p) . PE(p + k) for p = 0..79
        expected = sum(math.cos(k * 10000 ** (-2 * i / dim)) for i in range(dim // 2))
        torch.testing.assert_close(dots, torch.full_like(dots, expected), atol=1e-5, rtol=0)
    assert (pe[0] @ pe[1]).item() != pytest.approx((pe[0] @ pe[5]).item(), abs=1e-3)


def test_sinusoidal_module_is_a_fixed_unsaved_table():
    pe = SinusoidalPositions(context_length=10, dim=6, base=100.0)
    assert list(pe.parameters()) == [] and pe.state_dict() == {}
    torch.testing.assert_close(pe(10), sinusoidal_positions(10, 6, base=100.0))
    torch.testing.assert_close(pe(3, offset=7), sinusoidal_positions(10, 6, base=100.0)[7:])
    assert pe(0, offset=10).shape == (0, 6)
    assert pe.double()(4).dtype == torch.float64  # a buffer: follows .to()


@pytest.mark.parametrize("cls", [SinusoidalPositions, LearnedPositions])
@pytest.mark.parametrize("length,offset", [(11, 0), (8, 3), (1, 10)])
def test_positions_beyond_context_length_are_a_clear_error(cls, length, offset):
    pe = cls(context_length=10, dim=4)
    with pytest.raises(ValueError, match=rf"offset={offset}, length={length}.*context_length=10"):
        pe(length, offset=offset)
    pe(10 - offset, offset=offset)  # the largest window that fits


@pytest.mark.parametrize("cls", [SinusoidalPositions, LearnedPositions])
@pytest.mark.parametrize("length,offset", [(-1, 0), (2, -1), (2.0, 0)])
def test_positions_reject_bad_length_or_offset(cls, length, offset):
    with pytest.raises(ValueError, match="non-negative int"):
        cls(context_length=10, dim=4)(length, offset=offset)


# --- learned ----------------------------------------------------------------------------------

def test_learned_positions_are_a_trainable_table():
    torch.manual_seed(0)
    pe = LearnedPositions(context_length=512, dim=64)
    assert pe(5).shape == (5, 64) and pe(5, offset=500).shape == (5, 64)
    assert [name for name, _ in pe.named_parameters()] == ["embedding.weight"]
    assert "embedding.weight" in pe.state_dict()
    assert pe.embedding.weight.std().item() == pytest.approx(0.02, rel=0.05)  # GPT-2 init
    torch.testing.assert_close(pe(3, offset=2), pe.embedding.weight[2:5])
    pe(3, offset=2).sum().backward()
    rows_with_grad = pe.embedding.weight.grad.abs().sum(-1).nonzero().flatten().tolist()
    assert rows_with_grad == [2, 3, 4]


# --- RoPE -------------------------------------------------------------------------------------

def rotation_matrix(p: int, D: int, base: float = 10000.0) -> torch.Tensor:
    """R_p of the paper, with pair i on dimensions (i, i + D/2): (D, D), float64."""
    R = torch.zeros(D, D, dtype=torch.float64)
    for i in range(D // 2):
        a = p * base ** (-2 * i / D)
        j = i + D // 2
        R[i, i], R[i, j], R[j, i], R[j, j] = math.cos(a), -math.sin(a), math.sin(a), math.cos(a)
    return R


@pytest.mark.parametrize("D,base,offset", [(2, 10000.0, 0), (8, 10000.0, 3), (16, 500.0, 1000)])
def test_rope_is_a_rotation_matrix_per_position(D, base, offset):
    x = randn(4, D, dtype=torch.float64)
    got = RotaryEmbedding(D, base=base)(x, offset=offset)
    expected = torch.stack([rotation_matrix(offset + t, D, base) @ x[t] for t in range(4)])
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=0)


@settings(max_examples=30, deadline=None)
@given(lead=st.lists(st.integers(1, 3), max_size=2), T=st.integers(1, 6), half=st.integers(1, 8),
       offset=st.integers(0, 5000), seed=st.integers(0, 1000))
def test_rope_keeps_shape_dtype_and_length(lead, T, half, offset, seed):
    x = randn(*lead, T, 2 * half, seed=seed)
    y = RotaryEmbedding(2 * half)(x, offset=offset)
    assert y.shape == x.shape and y.dtype == x.dtype
    torch.testing.assert_close(y.norm(dim=-1), x.norm(dim=-1), atol=1e-5, rtol=1e-5)


def test_rope_is_identity_at_position_zero_only():
    x = randn(2, 3, 5, 8)
    y = RotaryEmbedding(8)(x)
    torch.testing.assert_close(y[..., 0, :], x[..., 0, :], atol=0, rtol=0)
    assert not torch.allclose(y[..., 1:, :], x[..., 1:, :], atol=1e-3)
    assert not torch.allclose(RotaryEmbedding(8)(x, offset=1)[..., 0, :], x[..., 0, :], atol=1e-3)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("m,n,shift", [(0, 3, 7), (5, 2, 100), (9, 9, 40), (1, 30, 900)])
def test_rope_score_depends_only_on_distance_across_offsets(m, n, shift, dtype, tol):
    """(R_m q) . (R_n k) = (R_{m+s} q) . (R_{n+s} k)."""
    rope = RotaryEmbedding(32)
    q, k = randn(1, 32, seed=1, dtype=dtype), randn(1, 32, seed=2, dtype=dtype)

    def score(a, b):
        return (rope(q, offset=a) * rope(k, offset=b)).sum().item()

    assert score(m + shift, n + shift) == pytest.approx(score(m, n), abs=tol)
    assert score(m, n + 1) != pytest.approx(score(m, n), abs=1e-3)  # the distance does matter


@pytest.mark.parametrize("m,n", [(3, 1), (1, 3), (10, 4), (0, 7)])
def test_rope_score_depends_on_the_signed_offset(m, n):
    """(R_m q) . (R_n k) = q . (R_{n-m} k), with n - m negative as well: the sign matters."""
    D = 16
    rope = RotaryEmbedding(D)
    q, k = randn(1, D, seed=5, dtype=torch.float64), randn(1, D, seed=6, dtype=torch.float64)
    score = (rope(q, offset=m) * rope(k, offset=n)).sum().item()
    assert score == pytest.approx((q[0] @ rotation_matrix(n - m, D) @ k[0]).item(), abs=1e-12)
    swapped = (rope(q, offset=n) * rope(k, offset=m)).sum().item()
    assert swapped != pytest.approx(score, abs=1e-3)  # a key before the query is not one after it


def test_rope_scores_within_a_sequence_are_toeplitz():
    """The same q (and k) at every position: the (T, T) score table is constant along diagonals."""
    T, D = 12, 16
    rope = RotaryEmbedding(D)
    q = randn(1, D, seed=3).expand(T, D)  # (T, D)
    k = randn(1, D, seed=4).expand(T, D)
    for offset in (0, 50):
        S = rope(q, offset=offset) @ rope(k, offset=offset).T  # (T, D) @ (D, T) -> (T, T)
        torch.testing.assert_close(S[1:, 1:], S[:-1, :-1], atol=1e-5, rtol=0)
        if offset == 0:
            S0 = S
        else:
            torch.testing.assert_close(S, S0, atol=1e-5, rtol=0)
    assert not torch.allclose(S[0, 1:], S[0, :-1], atol=1e-3)  # but rows are not constant


@pytest.mark.parametrize("D,base,offset", [(2, 10000.0, 0), (8, 10000.0, 0), (64, 10000.0, 5),
                                           (16, 500000.0, 20), (64, 100000.0, 40)])
def test_rope_matches_transformers_llama(D, base, offset):
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

    B, H, T = 2, 3, 9
    config = LlamaConfig(hidden_size=H * D, num_attention_heads=H, head_dim=D,
                         max_position_embeddings=64, rope_parameters={"rope_type": "default",
                                                                      "rope_theta": base})
    q, k = randn(B, H, T, D, seed=5), randn(B, H, T, D, seed=6)
    position_ids = torch.arange(offset, offset + T)[None].expand(B, T)  # (B, T)
    cos, sin = LlamaRotaryEmbedding(config)(q, position_ids)  # each (B, T, D)
    q_ref, k_ref = apply_rotary_pos_emb(q, k, cos, sin)  # unsqueeze at dim 1: heads
    rope = RotaryEmbedding(D, base=base)
    torch.testing.assert_close(rope(q, offset=offset), q_ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(rope(k, offset=offset), k_ref, atol=1e-5, rtol=0)


def test_rope_far_positions_with_smollm2_base():
    """Positions up to 8192 with base 100000 (SmolLM2): equal to the formula in float64; transformers
    takes the angles in float32, which is off by up to ~1e-3 there (p * inv_freq rounds)."""
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

    D, T, offset = 64, 8, 8185  # the last position is 8192
    rope = RotaryEmbedding(D, base=100000.0)
    x = randn(1, 2, T, D, seed=7, dtype=torch.float64)
    p = torch.arange(offset, offset + T, dtype=torch.float64)[:, None]  # (T, 1)
    angles = p * 100000.0 ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)  # (T, D/2)
    x1, x2 = x[..., :D // 2], x[..., D // 2:]  # rotate-half: dimension i pairs with i + D/2
    expected = torch.cat([x1 * angles.cos() - x2 * angles.sin(), x2 * angles.cos() + x1 * angles.sin()], -1)
    torch.testing.assert_close(rope(x, offset=offset), expected, atol=1e-12, rtol=0)
    config = LlamaConfig(hidden_size=2 * D, num_attention_heads=2, head_dim=D,
                         rope_parameters={"rope_type": "default", "rope_theta": 100000.0})
    cos, sin = LlamaRotaryEmbedding(config)(x.float(), torch.arange(offset, offset + T)[None])
    q_ref, _ = apply_rotary_pos_emb(x.float(), x.float(), cos, sin)
    torch.testing.assert_close(rope(x.float(), offset=offset), q_ref, atol=2e-3, rtol=0)


def test_rope_keeps_low_precision_dtype():
    x = randn(2, 4, 8).to(torch.bfloat16)
    y = RotaryEmbedding(8)(x, offset=3)
    assert y.dtype == torch.bfloat16
    expected = RotaryEmbedding(8)(x.double(), offset=3)
    torch.testing.assert_close(y.double(), expected, atol=5e-2, rtol=0)


def test_rotary_attention_is_invariant_to_shifting_all_positions():
    """Rotated queries and keys with the same offset give the same weights and outputs."""
    B, H, T, D = 2, 2, 6, 8
    rope = RotaryEmbedding(D)
    q, k, v = randn(B, H, T, D, seed=7), randn(B, H, T, D, seed=8), randn(B, H, T, D, seed=9)
    out0, w0 = scaled_dot_product_attention(rope(q), rope(k), v, is_causal=True, return_weights=True)
    for offset in (1, 37, 500):
        out, w = scaled_dot_product_attention(rope(q, offset=offset), rope(k, offset=offset), v,
                                              is_causal=True, return_weights=True)
        torch.testing.assert_close(w, w0, atol=1e-5, rtol=0)
        torch.testing.assert_close(out, out0, atol=1e-5, rtol=0)
    # Shifting the keys only changes the distances, hence the weights.
    _, w_moved = scaled_dot_product_attention(rope(q), rope(k, offset=3), v, is_causal=True,
                                              return_weights=True)
    assert not torch.allclose(w_moved, w0, atol=1e-3)


def test_multi_head_attention_with_rotary_rotates_queries_and_keys():
    """MultiHeadAttention(rotary=...) equals projecting, rotating q and k, attending, projecting back."""
    torch.manual_seed(0)
    B, T, C, H = 2, 7, 16, 4
    D = C // H
    mha = MultiHeadAttention(C, H, causal=True, rotary=RotaryEmbedding(D)).eval()
    x = randn(B, T, C, seed=10)
    q, k, v = F.linear(x, mha.in_proj.weight, mha.in_proj.bias).chunk(3, dim=-1)  # 3 x (B, T, C)
    q, k, v = (t.view(B, T, H, D).transpose(1, 2) for t in (q, k, v))  # (B, T, C) -> (B, H, T, D)
    rope = RotaryEmbedding(D)
    out = F.scaled_dot_product_attention(rope(q), rope(k), v, attn_mask=causal_mask(T))  # (B, H, T, D)
    expected = mha.out_proj(out.transpose(1, 2).reshape(B, T, C))  # (B, H, T, D) -> (B, T, C)
    for fused in (False, True):
        mha.fused = fused
        torch.testing.assert_close(mha(x), expected, atol=1e-5, rtol=0)
    mha.rotary = None
    assert not torch.allclose(mha(x), expected, atol=1e-3)  # the rotation did something


# --- errors -----------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [lambda: sinusoidal_positions(4, 5), lambda: SinusoidalPositions(4, 7),
                                  lambda: RotaryEmbedding(3)])
def test_odd_dimensions_are_a_clear_error(make):
    with pytest.raises(ValueError, match=r"must be even, got \d+.*in pairs"):
        make()


@pytest.mark.parametrize("make", [lambda: sinusoidal_positions(4, 0), lambda: LearnedPositions(0, 4),
                                  lambda: LearnedPositions(4, 2.0), lambda: RotaryEmbedding(-2)])
def test_non_positive_sizes_are_a_clear_error(make):
    with pytest.raises(ValueError, match="must be a positive int"):
        make()


def test_bad_base_is_a_clear_error():
    with pytest.raises(ValueError, match="base must be positive"):
        RotaryEmbedding(8, base=0.0)


@pytest.mark.parametrize("shape", [(8,), (2, 5, 6), (2, 5, 16)])
def test_rope_rejects_wrong_input_shape(shape):
    with pytest.raises(ValueError, match=r"x must be \(\.\.\., T, D=8\).*got shape"):
        RotaryEmbedding(8)(torch.zeros(shape))


def test_rope_rejects_integer_input_and_negative_offset():
    with pytest.raises(TypeError, match="floating-point"):
        RotaryEmbedding(8)(torch.zeros(2, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="offset must be a non-negative int"):
        RotaryEmbedding(8)(torch.zeros(2, 8), offset=-1)
