import dataclasses
import math

import pytest
import torch
from torch import nn

from lmcourse.attention import causal_mask
from lmcourse.train import TrainConfig, evaluate, train
from lmcourse.transformer import POSITIONS, Block, TransformerConfig, TransformerLM


def _model(seed: int = 0, **overrides) -> TransformerLM:
    torch.manual_seed(seed)
    return TransformerLM(TransformerConfig.tiny(vocab_size=50, **overrides)).eval()


def _ids(T: int, B: int, seed: int = 1, V: int = 50) -> torch.Tensor:
    return torch.randint(0, V, (T, B), generator=torch.Generator().manual_seed(seed))  # (T, B)


@pytest.mark.parametrize("positions", POSITIONS)
def test_fused_and_from_scratch_attention_give_the_same_model(positions):
    fused = _model(positions=positions, fused=True)
    scratch = TransformerLM(dataclasses.replace(fused.config, fused=False)).eval()
    scratch.load_state_dict(fused.state_dict())
    x = _ids(20, 3)
    a, _ = fused.log_probs(x)
    b, _ = scratch.log_probs(x)
    assert torch.allclose(a, b, atol=1e-5)
    # and the gradients agree too
    fused.train(), scratch.train()
    for model in (fused, scratch):
        model.zero_grad()
        model.nll(x, _ids(20, 3, seed=2))[0].mean().backward()
    for (name, p), q in zip(fused.named_parameters(), scratch.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-5), name


def test_block_equals_torch_pre_norm_encoder_layer_with_a_causal_mask():
    torch.manual_seed(0)
    config = TransformerConfig.tiny(vocab_size=10, fused=False)
    block = Block(config).eval()
    C = config.emb_dim
    ref = nn.TransformerEncoderLayer(C, config.num_heads, dim_feedforward=config.mlp_ratio * C, dropout=0.0,
                                     activation="gelu", batch_first=True, norm_first=True).eval()
    with torch.no_grad():
        ref.self_attn.in_proj_weight.copy_(block.attn.in_proj.weight)
        ref.self_attn.in_proj_bias.copy_(block.attn.in_proj.bias)
        ref.self_attn.out_proj.weight.copy_(block.attn.out_proj.weight)
        ref.self_attn.out_proj.bias.copy_(block.attn.out_proj.bias)
        ref.linear1.load_state_dict(block.mlp.up.state_dict())
        ref.linear2.load_state_dict(block.mlp.down.state_dict())
        ref.norm1.load_state_dict(block.ln_attn.state_dict())
        ref.norm2.load_state_dict(block.ln_mlp.state_dict())
    x = torch.randn(3, 11, C)  # (B, T, C)
    expected = ref(x, src_mask=~causal_mask(11), is_causal=True)  # torch: True = blocked
    assert torch.allclose(block(x), expected, atol=1e-5)


@pytest.mark.parametrize("positions", POSITIONS)
def test_a_later_token_never_changes_earlier_predictions(positions):
    model = _model(positions=positions)
    x = _ids(16, 2)
    changed = x.clone()
    changed[10] = (changed[10] + 1) % 50
    a, _ = model.log_probs(x)
    b, _ = model.log_probs(changed)
    assert torch.allclose(a[:10], b[:10], atol=1e-6)
    assert not torch.allclose(a[10:], b[10:], atol=1e-3)


@pytest.mark.parametrize("positions", POSITIONS)
def test_carried_state_equals_one_long_chunk_within_the_context(positions):
    model = _model(positions=positions)  # context_length 32
    x = _ids(24, 3)
    whole, _ = model.log_probs(x)
    first, state = model.log_probs(x[:12])
    second, state = model.log_probs(x[12:], state)
    assert torch.allclose(torch.cat([first, second]), whole, atol=1e-5)
    assert torch.equal(state, x)  # all 24 tokens kept: fewer than context_length - 1


def test_beyond_the_context_the_window_slides():
    model = _model()  # context_length 32
    x = _ids(40, 2)
    _, state = model.log_probs(x[:30])
    assert torch.equal(state, x[:30])
    last, state = model.log_probs(x[30:], state)  # 10 new tokens see the 22 tokens before them
    direct, _ = model.log_probs(x[8:])  # the same 32-token window, read in one go
    assert torch.allclose(last, direct[-10:], atol=1e-5)
    assert torch.equal(state, x[-31:])  # at most context_length - 1 tokens are kept


def test_attention_maps_are_causal_distributions_and_leave_the_model_as_it_was():
    model = _model(fused=True).train()
    ids = _ids(12, 2).T  # (B, T)
    maps = model.attention_maps(ids)
    assert len(maps) == model.config.num_layers
    for w in maps:
        assert w.shape == (2, model.config.num_heads, 12, 12)
        assert torch.allclose(w.sum(-1), torch.ones(2, model.config.num_heads, 12), atol=1e-6)
        assert torch.all(w.masked_select(~causal_mask(12)) == 0)
    assert model.training and all(block.attn.fused for block in model.blocks)


def test_tied_weights_share_one_matrix_and_count_once():
    tied = _model(tie_weights=True)
    untied = _model(tie_weights=False)
    assert tied.decoder.weight is tied.embedding.weight
    assert untied.num_parameters - tied.num_parameters == 50 * 32


def test_parameter_count_by_hand():
    c = TransformerConfig.tiny(vocab_size=50)  # C = 32, 2 layers, learned positions, full softmax
    C, V, L = c.emb_dim, c.vocab_size, c.context_length
    per_block = (3 * C * C + 3 * C) + (C * C + C) + (4 * C * C + 4 * C) + (4 * C * C + C) + 2 * 2 * C
    expected = V * C + L * C + c.num_layers * per_block + 2 * C + (C * V + V)
    assert TransformerLM(c).num_parameters == expected


def test_residual_projections_start_smaller_with_depth():
    torch.manual_seed(0)
    model = TransformerLM(TransformerConfig.tiny(vocab_size=50, emb_dim=128, num_layers=8))
    std_out = model.blocks[0].attn.out_proj.weight.std().item()
    std_in = model.blocks[0].attn.in_proj.weight.std().item()
    assert std_in == pytest.approx(0.02, rel=0.05)
    assert std_out == pytest.approx(0.02 / math.sqrt(16), rel=0.05)


def test_learns_a_repeating_stream_with_the_book_training_loop():
    torch.manual_seed(0)
    model = TransformerLM(TransformerConfig.tiny(vocab_size=12, context_length=16))
    stream = torch.randint(0, 12, (7,), generator=torch.Generator().manual_seed(0)).repeat(60)
    before = evaluate(model, stream, batch_size=4, bptt=16).perplexity
    history = train(model, stream, stream, TrainConfig(lr=3e-3, batch_size=4, bptt=16, epochs=8, progress=False))
    assert before > 8 and history.best_valid_perplexity < 1.5


def test_clear_errors():
    model = _model()  # context_length 32
    with pytest.raises(ValueError, match="longer than the model's context_length=32"):
        model.log_probs(_ids(33, 1))
    with pytest.raises(ValueError, match="state must be the previous tokens"):
        model.log_probs(_ids(4, 2), _ids(4, 3))
    with pytest.raises(ValueError, match="state must be the previous tokens"):
        model.log_probs(_ids(4, 2), _ids(32, 2))
    with pytest.raises(TypeError, match="LongTensor"):
        model.log_probs(_ids(4, 2).float())
    with pytest.raises(ValueError, match="outside"):
        model.log_probs(_ids(4, 2) + 50)
    with pytest.raises(ValueError, match="not divisible by num_heads"):
        TransformerConfig(vocab_size=10, emb_dim=30, num_heads=4)
    with pytest.raises(ValueError, match="head size .* must be even"):
        TransformerConfig(vocab_size=10, emb_dim=12, num_heads=4, positions="rotary")
    with pytest.raises(ValueError, match="unknown positions"):
        TransformerConfig(vocab_size=10, positions="alibi")
    with pytest.raises(ValueError, match="tie_weights=True cannot be combined"):
        TransformerConfig(vocab_size=100, tie_weights=True, adaptive_cutoffs=(20,))
    with pytest.raises(TypeError, match="TransformerConfig"):
        TransformerLM(object())
