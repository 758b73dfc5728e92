"""Tests for lmcourse.layers: RMSNorm against torch.nn.RMSNorm and LLaMA's formula, SwiGLU against
its formula and transformers' LlamaMLP, and the GELU MLP's re-export from lmcourse.transformer."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lmcourse.layers import MLP, RMSNorm, SwiGLU


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("eps", [1e-6, 1e-5])
def test_rms_norm_equals_torch(eps):
    mine, ref = RMSNorm(12, eps=eps), nn.RMSNorm(12, eps=eps)
    with torch.no_grad():
        mine.weight.copy_(randn(12, seed=1))
        ref.weight.copy_(mine.weight)
    x = randn(2, 5, 12, seed=2) * 3
    torch.testing.assert_close(mine(x), ref(x), atol=1e-6, rtol=0)


def test_rms_norm_by_hand_and_in_half_precision():
    norm = RMSNorm(4, eps=1e-6)
    x = torch.tensor([1.0, -2.0, 3.0, -4.0])
    torch.testing.assert_close(norm(x), x / torch.sqrt((x ** 2).mean() + 1e-6))
    y = norm.to(torch.bfloat16)(x.to(torch.bfloat16))
    assert y.dtype == torch.bfloat16  # statistics in float32, result cast back (as LLaMA does)
    norm.float()
    torch.testing.assert_close(y.float(), norm(x), atol=2e-2, rtol=0)
    assert [n for n, _ in norm.named_parameters()] == ["weight"] and "eps=1e-06" in repr(norm)


def test_swiglu_is_down_of_silu_gate_times_up():
    torch.manual_seed(0)
    ffn = SwiGLU(8, 20)
    assert ffn.gate.bias is None and ffn.gate.weight.shape == (20, 8) and ffn.down.weight.shape == (8, 20)
    x = randn(3, 4, 8, seed=3)
    expected = (F.silu(x @ ffn.gate.weight.T) * (x @ ffn.up.weight.T)) @ ffn.down.weight.T
    torch.testing.assert_close(ffn(x), expected, atol=1e-6, rtol=0)
    assert SwiGLU(8, 20, bias=True).up.bias.shape == (20,)


def test_swiglu_and_rms_norm_equal_transformers_llama():
    llama = pytest.importorskip("transformers.models.llama.modeling_llama")
    from transformers import LlamaConfig
    config = LlamaConfig(hidden_size=8, intermediate_size=20, num_attention_heads=2, num_key_value_heads=2, rms_norm_eps=1e-5)
    torch.manual_seed(0)
    ref_mlp, ref_norm = llama.LlamaMLP(config), llama.LlamaRMSNorm(8, eps=1e-5)
    with torch.no_grad():
        ref_norm.weight.normal_()
    ffn, norm = SwiGLU(8, 20), RMSNorm(8, eps=1e-5)
    ffn.load_state_dict({k.replace("_proj", ""): v for k, v in ref_mlp.state_dict().items()})
    norm.load_state_dict(ref_norm.state_dict())
    x = randn(2, 3, 8, seed=4)
    torch.testing.assert_close(ffn(x), ref_mlp(x), atol=1e-6, rtol=0)
    torch.testing.assert_close(norm(x), ref_norm(x), atol=1e-6, rtol=0)


def test_mlp_is_reexported_from_transformer():
    from lmcourse.transformer import MLP as OldPath
    assert OldPath is MLP
    mlp = MLP(4, 16, approximate="tanh")
    x = randn(2, 4, seed=5)
    torch.testing.assert_close(mlp(x), mlp.down(F.gelu(mlp.up(x), approximate="tanh")))


@pytest.mark.parametrize("call,message", [
    (lambda: RMSNorm(0), "dim must be a positive int"),
    (lambda: RMSNorm(4, eps=-1.0), "eps must be a finite number"),
    (lambda: SwiGLU(4, 0), "hidden_dim must be a positive int"),
])
def test_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
