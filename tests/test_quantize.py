"""lmcourse.scaling.quantize: int8 round trips within s/2; Q4_1 blocks byte for byte equal to the gguf
package's (llama.cpp's) quantiser and read back by lmcourse.gguf within d/2; fake quantisation of
the linear weights only (the tied output layer stays an embedding); PyTorch's dynamic int8 on the
book's GPT; and saved sizes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from lmcourse.gguf import dequantize_q4_1
from lmcourse.gpt import GPT, GPTConfig
from lmcourse.scaling.quantize import (SCHEMES, block_round_trip, dequantize_int8, dynamic_int8,
                                       fake_quantize_linear_weights, linear_layers, q4_1_round_trip, quantize_int8,
                                       quantize_q4_1, serialized_bytes)
from lmcourse.transformer import TransformerConfig, TransformerLM

V = 64
LINEARS = ["in_proj", "out_proj", "up", "down"]


@pytest.fixture(scope="module")
def gpt() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig.tiny(vocab_size=V)).eval()


def _ids(T: int = 16, B: int = 3, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, V, (T, B), generator=torch.Generator().manual_seed(seed))


def _weights(shape, seed: int = 0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------------------
# int8

@pytest.mark.parametrize("per_row", [True, False])
@pytest.mark.parametrize("shape", [(7, 5), (4, 3, 6), (1, 1)])
def test_int8_round_trip_is_within_half_a_step(per_row, shape):
    w = _weights(shape) * 3
    q, s = quantize_int8(w, per_row=per_row)
    assert q.dtype == torch.int8 and q.shape == w.shape and s.dtype == torch.float32
    assert s.shape == ((shape[0],) + (1,) * (len(shape) - 1) if per_row else ())
    assert int(q.abs().max()) == 127  # the largest weight takes the end of the range
    back = dequantize_int8(q, s)
    assert back.dtype == torch.float32
    assert ((back - w).abs() <= s / 2 * (1 + 1e-6)).all()


def test_int8_known_answer_and_a_zero_row():
    w = torch.tensor([[0.5, -1.0, 0.25], [0.0, 0.0, 0.0]])
    q, s = quantize_int8(w)
    torch.testing.assert_close(s, torch.tensor([[1 / 127], [1.0]]))
    assert q.tolist() == [[64, -127, 32], [0, 0, 0]]  # 0.5 * 127 = 63.5 -> 64, 0.25 * 127 = 31.75 -> 32
    assert dequantize_int8(q, s)[1].tolist() == [0.0, 0.0, 0.0]
    q, s = quantize_int8(torch.zeros(3), per_row=False)
    assert s.item() == 1.0 and q.tolist() == [0, 0, 0]


def test_int8_per_row_scales_survive_an_outlier_row():
    w = _weights((8, 32))
    w[0, 0] = 100.0  # one outlier: per tensor, every row shares its step
    error = {per_row: (dequantize_int8(*quantize_int8(w, per_row)) - w)[1:].abs().mean()
             for per_row in (True, False)}
    assert error[True] * 20 < error[False]


@pytest.mark.parametrize("bad, per_row, error, match", [
    ([1.0, 2.0], True, TypeError, "floating-point torch.Tensor, got list"),
    (torch.tensor([1, 2]), False, TypeError, "got torch.int64"),
    (torch.ones(4), True, ValueError, "per_row=True needs a matrix"),
    (torch.tensor([[1.0, float("nan")]]), True, ValueError, "inf or nan"),
])
def test_int8_refuses_bad_weights(bad, per_row, error, match):
    with pytest.raises(error, match=match):
        quantize_int8(bad, per_row=per_row)


def test_dequantize_int8_needs_int8_codes():
    with pytest.raises(TypeError, match="int8 tensor from quantize_int8"):
        dequantize_int8(torch.ones(2, 2), torch.ones(2, 1))


# ---------------------------------------------------------------------------------------------
# Q4_1

def _q4_1_cases() -> dict[str, torch.Tensor]:
    normal = _weights((6, 64), seed=3) * 0.02
    constant = torch.full((2, 32), 0.7)  # d = 0: every q is 0, m holds the value
    positive = _weights((3, 96), seed=4).abs() + 5  # all positive: Q4_1's minimum matters
    mixed = torch.cat([normal.flatten()[:32] * 1000, torch.linspace(-1, 1, 32)])  # wide and narrow blocks
    return {"normal": normal, "constant": constant, "positive": positive, "mixed": mixed}


@pytest.mark.parametrize("case", list(_q4_1_cases()))
def test_q4_1_bytes_equal_the_gguf_package(case):
    from gguf import GGMLQuantizationType
    from gguf.quants import quantize as reference_quantize

    w = _q4_1_cases()[case]
    ours = quantize_q4_1(w)
    theirs = reference_quantize(w.numpy().reshape(-1, 32), GGMLQuantizationType.Q4_1)
    assert ours.dtype == np.uint8 and ours.shape == (w.numel() // 32, 20)
    assert np.array_equal(ours, theirs.reshape(ours.shape))


@pytest.mark.parametrize("case", list(_q4_1_cases()))
def test_gguf_reader_gets_the_weights_back_within_half_a_step(case):
    w = _q4_1_cases()[case].reshape(-1, 32)  # (n, 32)
    blocks = quantize_q4_1(w)
    back = torch.from_numpy(dequantize_q4_1(blocks))  # lmcourse.gguf, the reading side
    low, high = w.amin(1, keepdim=True), w.amax(1, keepdim=True)
    d = (high - low) / 15
    d16, m16 = (torch.from_numpy(blocks[:, i:i + 2].copy().view(np.float16).astype(np.float32)) for i in (0, 2))
    bound = d / 2 + 15 * (d - d16).abs() + (low - m16).abs() + 1e-6 * (w.abs().amax(1, keepdim=True) + 1)
    assert ((back - w).abs() <= bound).all()
    torch.testing.assert_close(q4_1_round_trip(w), back, atol=0, rtol=0)


def test_q4_1_nibble_order_low_first():
    w = torch.arange(32.0)  # q_i = round(i / (31/15)): q_0 = 0 in byte 0's low nibble, q_16 = 8 in its high one
    blocks = quantize_q4_1(w)
    assert blocks[0, 4] == (0 | 8 << 4) and blocks[0, 19] == (7 | 15 << 4)


def test_q4_1_round_trip_keeps_shape_and_refuses_odd_sizes():
    w = _weights((2, 3, 32))
    back = q4_1_round_trip(w)
    assert back.shape == w.shape and back.dtype == torch.float32
    with pytest.raises(ValueError, match="hold 48, not a multiple of 32"):
        quantize_q4_1(torch.ones(3, 16))


# ---------------------------------------------------------------------------------------------
# Models

def test_linear_layers_leave_out_the_tied_output_layer(gpt):
    names = list(linear_layers(gpt))
    assert names == [f"blocks.{i}.{part}.{n}" for i in range(2) for part, n in
                     zip(["attn", "attn", "mlp", "mlp"], LINEARS)]
    untied = TransformerLM(TransformerConfig.tiny(vocab_size=V))
    assert "decoder" in linear_layers(untied)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_fake_quantize_replaces_linear_weights_only(gpt, scheme):
    before = {k: v.clone() for k, v in gpt.state_dict().items()}
    quantized = fake_quantize_linear_weights(gpt, scheme)
    for k, v in gpt.state_dict().items():
        assert torch.equal(v, before[k]), k  # the original is untouched
    round_trip = {"int8": lambda w: dequantize_int8(*quantize_int8(w)), "q4_1": q4_1_round_trip}[scheme]
    after = quantized.state_dict()
    for k, v in before.items():
        linear = k.endswith(".weight") and k.rsplit(".", 2)[-2] in LINEARS
        expected = round_trip(v) if linear else v
        assert torch.equal(after[k], expected), k
        assert linear == (not torch.equal(after[k], v)), k
    assert quantized.decoder.weight is quantized.embedding.weight  # still tied, still float
    with torch.no_grad():
        loss = {m: float(m.nll(_ids(), _ids(seed=2))[0].mean()) for m in (gpt, quantized)}
    assert abs(loss[gpt] - loss[quantized]) < (0.01 if scheme == "int8" else 0.05)


def test_fake_quantize_errors_name_the_layer_or_scheme(gpt):
    with pytest.raises(ValueError, match="unknown scheme 'int4'; choose one of 'int8', 'q4_1'"):
        fake_quantize_linear_weights(gpt, "int4")
    with pytest.raises(ValueError, match=r"^1: Q4_1 stores blocks of 32 weights.*\(3, 5\)"):
        fake_quantize_linear_weights(nn.Sequential(nn.Linear(4, 64), nn.Linear(5, 3)), "q4_1")
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        linear_layers("gpt")


def test_dynamic_int8_on_the_books_gpt(gpt):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch.ao's deprecation warnings are caught inside
        quantized = dynamic_int8(gpt)
    assert all(type(m) is nn.Linear for m in linear_layers(gpt).values())  # the original is untouched
    assert not quantized.training
    dynamic = torch.ao.nn.quantized.dynamic.Linear
    kinds = dict(quantized.named_modules())
    for i in range(2):
        for name in (f"blocks.{i}.attn.in_proj", f"blocks.{i}.attn.out_proj", f"blocks.{i}.mlp.up",
                     f"blocks.{i}.mlp.down"):
            assert type(kinds[name]) is dynamic, name
    assert type(quantized.decoder) is nn.Linear and quantized.decoder.weight is quantized.embedding.weight
    inputs, targets = _ids(), _ids(seed=2)
    with torch.no_grad():
        torch.testing.assert_close(quantized.nll(inputs, targets)[0], gpt.nll(inputs, targets)[0],
                                   atol=0.02, rtol=0)
        assert quantized(inputs.T).shape == (3, 16, V)
    assert len(quantized.generate([1, 2, 3], 4, temperature=0)) == 4


def test_serialized_bytes_float_and_dynamic_int8(gpt):
    tensor_bytes = sum(t.numel() * t.element_size() for t in {id(t): t for t in gpt.state_dict().values()}.values())
    tensors = len(gpt.state_dict())
    floats = serialized_bytes(gpt)
    assert tensor_bytes <= floats < tensor_bytes + 1000 * tensors  # the tied matrix is saved once
    layers = list(linear_layers(gpt).values())
    quantized = sum(m.weight.numel() for m in layers)
    saved = floats - serialized_bytes(dynamic_int8(gpt))
    assert 3 * quantized - 1000 * len(layers) < saved < 3 * quantized  # 4 bytes a weight -> 1, plus a scale...


def test_block_round_trip_is_q4_1_at_four_bits_and_worse_with_fewer():
    w = torch.randn(8, 64, generator=torch.Generator().manual_seed(3)) * 0.05
    four = block_round_trip(w, 4)
    blocks = w.reshape(-1, 32)
    step = (blocks.amax(1) - blocks.amin(1)) / 15  # (n,) each block's d
    # Q4_1 stores d and m in float16: equal to the float32 version up to that rounding
    torch.testing.assert_close(q4_1_round_trip(w), four, atol=float(step.max()) * 0.01 + 1e-4, rtol=0)
    assert torch.all((four - w).reshape(-1, 32).abs() <= step[:, None] / 2 + 1e-7)
    errors = [(block_round_trip(w, bits) - w).pow(2).mean().item() for bits in (2, 3, 4, 6, 8)]
    assert errors == sorted(errors, reverse=True) and errors[-1] < errors[0] / 1000
    with pytest.raises(ValueError, match="multiple of 32"):
        block_round_trip(torch.ones(40), 4)
    with pytest.raises(ValueError, match="bits must be an int >= 1"):
        block_round_trip(w, 0)


def test_fake_quantize_block_schemes_and_embeddings(gpt):
    plain = fake_quantize_linear_weights(gpt, "block3")
    with_embeddings = fake_quantize_linear_weights(gpt, "block3", embeddings=True)
    assert torch.equal(plain.embedding.weight, gpt.embedding.weight)
    assert not torch.equal(with_embeddings.embedding.weight, gpt.embedding.weight)
    assert with_embeddings.decoder.weight is with_embeddings.embedding.weight  # still tied
    for name, layer in linear_layers(plain).items():
        torch.testing.assert_close(layer.weight, block_round_trip(dict(linear_layers(gpt))[name].weight, 3))
    with pytest.raises(ValueError, match="'block<bits>'"):
        fake_quantize_linear_weights(gpt, "block9")
