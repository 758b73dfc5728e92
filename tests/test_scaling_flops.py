"""lmcourse.scaling.flops: the FLOP formula against torch's own flop counter, the memory formula
against the tensors AdamW really holds, ZeRO's sharding against the paper's table, and the
activation measure against tensors whose size is known."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from lmcourse.gpt import GPT, GPTConfig
from lmcourse.profiling import saved_tensor_bytes
from lmcourse.scaling.flops import (gpt_forward_flops_per_token, gpt_matmul_parameters, gpt_training_flops_per_token,
                                    measured_flops, state_bytes, training_flops,
                                    training_memory, zero_bytes_per_device)

CONFIGS = [GPTConfig.tiny(vocab_size=50, fused=False),
           GPTConfig(vocab_size=300, context_length=24, emb_dim=48, num_heads=4, num_layers=3, dropout=0.0, fused=False)]


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("seq_len", [8, 24])
def test_formula_equals_torch_flop_counter(config, seq_len):
    """Forward FLOPs are exactly what FlopCounterMode counts with the from-scratch attention; the
    backward pass is exactly twice the forward, so training is three forwards."""
    torch.manual_seed(0)
    model = GPT(config)
    x = torch.randint(0, config.vocab_size, (3, seq_len + 1))
    forward, backward = measured_flops(lambda: model.nll(x[:, :-1].T, x[:, 1:].T)[0].mean())
    tokens = 3 * seq_len
    assert forward == gpt_forward_flops_per_token(config, seq_len) * tokens
    assert forward + backward == gpt_training_flops_per_token(config, seq_len) * tokens


def test_fused_attention_is_invisible_to_the_counter():
    """What the chapter warns about: torch's counter does not see the fused CPU attention kernel,
    so with fused=True it counts exactly the matrix products and no attention."""
    config = dataclasses.replace(CONFIGS[1], fused=True)
    model = GPT(config)
    x = torch.randint(0, config.vocab_size, (2, 17))
    forward, _ = measured_flops(lambda: model.nll(x[:, :-1].T, x[:, 1:].T)[0].mean())
    assert forward == 2 * gpt_matmul_parameters(config) * 2 * 16


def test_six_n_d_and_gpt2_counts():
    assert training_flops(1e6, 2e6) == 1.2e13
    small = GPTConfig.gpt2_small()
    # the matrix-product weights are all parameters but positions, biases and LayerNorms
    assert small.num_parameters - gpt_matmul_parameters(small) == 1024 * 768 + 12 * 13 * 768 + 2 * 768
    with pytest.raises(ValueError, match="must be >= 0"):
        training_flops(-1, 10)
    with pytest.raises(ValueError, match="seq_len must be an int >= 1"):
        gpt_forward_flops_per_token(small, seq_len=0)


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_memory_formula_equals_the_optimizer_state(optimizer):
    torch.manual_seed(0)
    model = GPT(CONFIGS[0])
    opt = (torch.optim.AdamW(model.parameters(), lr=1e-3) if optimizer == "adamw"
           else torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9))
    x = torch.randint(0, 50, (2, 9))
    model.nll(x[:, :-1].T, x[:, 1:].T)[0].mean().backward()
    opt.step()
    held = state_bytes(model, opt)
    predicted = training_memory(model.num_parameters, "float32")
    assert held.weights == predicted.weights and held.gradients == predicted.gradients
    # AdamW: two moments (8 bytes a parameter); SGD with momentum: one buffer (4)
    assert held.optimizer == (predicted.optimizer if optimizer == "adamw" else predicted.optimizer // 2)


def test_mixed_precision_keeps_sixteen_bytes():
    for precision in ("float32", "mixed"):
        assert training_memory(10, precision).total == 160
    assert training_memory(10, "mixed").master_weights == 40
    with pytest.raises(ValueError, match="'float32' or 'mixed'"):
        training_memory(10, "float16")


def test_zero_stages_follow_the_paper():
    """Rajbhandari et al. (2020), Figure 1: 7.5B parameters on 64 devices: 120 GB, 31.4 GB, 16.6 GB, 1.9 GB."""
    gb = [zero_bytes_per_device(7_500_000_000, 64, stage) / 1e9 for stage in range(4)]
    assert [round(g, 1) for g in gb] == [120.0, 31.4, 16.6, 1.9]
    assert zero_bytes_per_device(1000, 1, 3) == zero_bytes_per_device(1000, 1, 0) == 16000
    with pytest.raises(ValueError, match="stage must be"):
        zero_bytes_per_device(10, 2, 4)
    with pytest.raises(ValueError, match="num_devices must be an int >= 1"):
        zero_bytes_per_device(10, 0, 1)


def test_saved_activations_of_a_known_graph():
    """y = (x @ w).relu().sum(): autograd keeps x (for w's gradient) and the relu output; w is a
    parameter and is not counted."""
    layer = torch.nn.Linear(8, 5, bias=False)
    x = torch.randn(7, 8)
    saved = saved_tensor_bytes(lambda: layer(x).relu().sum(), exclude=layer)
    assert saved == (7 * 8 + 7 * 5) * 4


def test_saved_activations_grow_with_the_batch_and_shrink_under_autocast():
    torch.manual_seed(0)
    model = GPT(CONFIGS[1])

    def step(batch: int, dtype=None):
        x = torch.randint(0, 300, (batch, 17))

        def loss():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype is not None):
                return model.nll(x[:, :-1].T, x[:, 1:].T)[0].mean()
        return saved_tensor_bytes(loss, exclude=model)

    one, four = step(1), step(4)
    assert 3.5 * one < four <= 4 * one
    assert step(4, torch.bfloat16) < four
