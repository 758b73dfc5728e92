"""The teaching versions in lmcourse.minigpt compute what the production modules compute, on the
same weights (within 1e-6): one head, multi-head causal self-attention, a block, a whole GPT."""

from __future__ import annotations

import pytest
import torch

from lmcourse.attention import MultiHeadAttention
from lmcourse.gpt import GPT, GPTConfig
from lmcourse.minigpt import Block, CausalSelfAttention, MiniGPT, attention_head
from lmcourse.transformer import Block as ProductionBlock
from lmcourse.transformer import TransformerConfig, TransformerLM

C, H, B, T = 16, 4, 2, 9


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def same(a, b):
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


@pytest.mark.parametrize("fused", [False, True])
def test_heads_side_by_side_are_multi_head_attention(fused):
    torch.manual_seed(0)
    mha = MultiHeadAttention(C, H, causal=True, fused=fused, bias=False).eval()
    x = randn(B, T, C, seed=1)
    w_q, w_k, w_v = mha.in_proj.weight.chunk(3)  # each (C, C): H blocks of D rows
    D = C // H
    heads = [attention_head(x, w_q[h * D:(h + 1) * D], w_k[h * D:(h + 1) * D], w_v[h * D:(h + 1) * D])
             for h in range(H)]
    same(torch.cat(heads, dim=-1) @ mha.out_proj.weight.T, mha(x))


@pytest.mark.parametrize("fused", [False, True])
def test_causal_self_attention_equals_multi_head_attention(fused):
    torch.manual_seed(0)
    mha = MultiHeadAttention(C, H, causal=True, fused=fused).eval()
    with torch.no_grad():
        mha.in_proj.bias.normal_()
    mini = CausalSelfAttention(C, H)
    mini.load_state_dict(mha.state_dict())
    x = randn(B, T, C, seed=2)
    same(mini(x), mha(x))


@pytest.mark.parametrize("gelu", ["none", "tanh"])
def test_block_equals_the_production_block(gelu):
    torch.manual_seed(0)
    config = TransformerConfig.tiny(vocab_size=10, emb_dim=C, num_heads=H, gelu_approximate=gelu)
    block = ProductionBlock(config).eval()
    mini = Block(C, H, gelu=gelu)
    mini.load_state_dict(block.state_dict())
    x = randn(B, T, C, seed=3)
    same(mini(x), block(x))


@pytest.mark.parametrize("fused", [False, True])
def test_mini_gpt_equals_transformer_lm(fused):
    torch.manual_seed(0)
    model = TransformerLM(TransformerConfig.tiny(vocab_size=50, fused=fused)).eval()
    ids = torch.randint(0, 50, (B, 20), generator=torch.Generator().manual_seed(4))
    same(MiniGPT.from_model(model)(ids), model.decoder(model.hidden_states(ids)))


def test_mini_gpt_equals_gpt_with_tied_weights():
    torch.manual_seed(0)
    model = GPT(GPTConfig.tiny(vocab_size=50)).eval()
    mini = MiniGPT.from_model(model)
    assert mini.decoder.bias is None and mini.blocks[0].mlp.act.approximate == "tanh"
    ids = torch.randint(0, 50, (B, 20), generator=torch.Generator().manual_seed(5))
    same(mini(ids), model(ids))


def test_mini_gpt_refuses_what_it_leaves_out():
    model = TransformerLM(TransformerConfig.tiny(vocab_size=50, positions="rotary"))
    with pytest.raises(ValueError, match="learned positions"):
        MiniGPT.from_model(model)
