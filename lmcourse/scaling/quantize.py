"""Weight quantisation: storing a model's matrices in 8 or 4 bits, and what that costs.
Chapter 10 (Scaling and efficiency) explains it.

- :func:`quantize_int8` / :func:`dequantize_int8`: symmetric absmax int8, the book's teaching
  version. Each row (or the whole tensor) gets one scale ``s = max|w| / 127`` and the codes
  ``q = round(w / s)`` in ``-127..127``; ``s q`` is off by at most ``s / 2`` from ``w``. One large
  weight stretches its row's scale, which is why per-row scales beat one per tensor;
- :func:`quantize_q4_1`: GGUF's Q4_1 blocks, byte for byte what llama.cpp and the ``gguf`` package
  write (the layout is drawn in :mod:`lmcourse.gguf`, whose :func:`~lmcourse.gguf.dequantize_q4_1`
  reads them back): 32 consecutive weights share a float16 step ``d = (max - min) / 15`` and minimum
  ``m``, and each keeps a 4-bit code, ``w ~ d q + m``: 5 bits a weight. :func:`q4_1_round_trip`
  quantises and dequantises, to measure the error; :func:`block_round_trip` does the same with any
  number of bits, to see where the error grows;
- :func:`fake_quantize_linear_weights`: a copy of a model whose linear weights went through one of
  these round trips but stay float32: the quality cost of a format, measured on the same model;
- :func:`dynamic_int8`: PyTorch's dynamic quantisation (int8 weights, activations quantised per
  batch on the fly, int8 matrix products on the CPU): a real int8 model, for its size and speed;
- :func:`serialized_bytes`: the bytes of a model's saved state dict.

Which weights: :func:`linear_layers` lists every ``nn.Linear`` except one whose weight *is* an
``nn.Embedding``'s. GPT's output layer shares the token-embedding matrix (``tie_weights``), so it is
left in float32 with the embeddings, as llama.cpp keeps embeddings at higher precision (SmolLM2's
Q4_1 file stores its tied ``token_embd`` in Q8_0). Norms and biases stay float32 too.

Left out: quantised activations in the fake round trips, calibration (static quantisation, GPTQ,
AWQ), the k-quants, 4-bit matrix kernels, and quantisation-aware training.
"""

from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from lmcourse._checks import check_int
from lmcourse.gguf import BLOCK_SIZE, dequantize_q4_1

__all__ = ["quantize_int8", "dequantize_int8", "quantize_q4_1", "q4_1_round_trip", "block_round_trip", "linear_layers",
           "fake_quantize_linear_weights", "dynamic_int8", "serialized_bytes", "SCHEMES"]

SCHEMES = ("int8", "q4_1")  # what fake_quantize_linear_weights simulates, besides "block<bits>"


def _check_weights(weights: object, min_dim: int = 0) -> Tensor:
    """`weights` as a detached float tensor, or a clear error."""
    if not isinstance(weights, Tensor) or not weights.is_floating_point():
        got = weights.dtype if isinstance(weights, Tensor) else type(weights).__name__
        raise TypeError(f"weights must be a floating-point torch.Tensor, got {got}")
    if weights.dim() < min_dim:
        raise ValueError(f"per_row=True needs a matrix (rows, ...), got shape {tuple(weights.shape)}; "
                         f"use per_row=False for one scale over the whole tensor")
    if not torch.isfinite(weights).all():
        raise ValueError("weights hold inf or nan: there is no finite scale for them")
    return weights.detach()


def quantize_int8(weights: Tensor, per_row: bool = True) -> tuple[Tensor, Tensor]:
    """Symmetric absmax int8: codes ``q = round(w / s)`` (int8, -127..127) and float32 scales
    ``s = max|w| / 127``, one per row (dim 0, shaped ``(rows, 1, ...)``) or one for the tensor.
    A row of zeros gets ``s = 1`` (and codes 0).

    >>> q, s = quantize_int8(torch.tensor([[1.5, -127.0], [0.0, 0.0]]))
    >>> q.tolist(), s.tolist()  # round half to even: 1.5 -> 2
    ([[2, -127], [0, 0]], [[1.0], [1.0]])
    """
    w = _check_weights(weights, min_dim=2 if per_row else 0).float()
    if per_row:
        absmax = w.abs().amax(dim=tuple(range(1, w.dim())), keepdim=True)  # (rows, 1, ...)
    else:
        absmax = w.abs().amax()  # ()
    scale = torch.where(absmax > 0, absmax / 127, torch.ones_like(absmax))
    q = torch.round(w / scale).clamp(-127, 127).to(torch.int8)
    return q, scale


def dequantize_int8(q: Tensor, scale: Tensor) -> Tensor:
    """Float32 weights ``s q`` back from :func:`quantize_int8`'s codes and scales.

    >>> dequantize_int8(torch.tensor([[2, -127]], dtype=torch.int8), torch.tensor([[0.5]])).tolist()
    [[1.0, -63.5]]
    """
    if not isinstance(q, Tensor) or q.dtype != torch.int8:
        raise TypeError(f"q must be an int8 tensor from quantize_int8, got {getattr(q, 'dtype', type(q).__name__)}")
    return q.to(torch.float32) * scale  # (rows, ...) * (rows, 1, ...), or * () for one scale


def quantize_q4_1(weights: Tensor) -> np.ndarray:
    """GGUF Q4_1 blocks ``(n, 20)`` uint8 of the flattened `weights` (a multiple of 32 numbers),
    exactly as llama.cpp writes them: per block of 32, ``d = (max - min) / 15`` and ``m = min``
    (stored as float16), and ``q = floor((w - min) / d + 1/2)`` in 0..15 (``d = 0``: all ``q = 0``),
    packed two per byte, low nibbles first.

    >>> w = torch.zeros(32)
    >>> w[:3] = torch.tensor([-1.0, 2.75, 0.3])  # d = 3.75 / 15 = 0.25, m = -1
    >>> blocks = quantize_q4_1(w)
    >>> blocks.shape, blocks[0, :4].view(np.float16).tolist()  # d, m
    ((1, 20), [0.25, -1.0])
    >>> dequantize_q4_1(blocks)[0, :4].tolist()  # 0.3 -> q = 5 -> 0.25 * 5 - 1
    [-1.0, 2.75, 0.25, 0.0]
    """
    w = _check_weights(weights).float().cpu()
    if w.numel() % BLOCK_SIZE:
        raise ValueError(f"Q4_1 stores blocks of {BLOCK_SIZE} weights, but weights of shape "
                         f"{tuple(w.shape)} hold {w.numel()}, not a multiple of {BLOCK_SIZE}")
    w = w.reshape(-1, BLOCK_SIZE)  # (n, 32)
    low, high = w.amin(dim=1, keepdim=True), w.amax(dim=1, keepdim=True)  # (n, 1) each
    d = (high - low) / 15
    inverse = torch.where(d > 0, 1 / d, torch.zeros_like(d))
    q = torch.floor((w - low) * inverse + 0.5).clamp(0, 15).to(torch.uint8)  # (n, 32), half rounds up
    packed = q[:, :16] | (q[:, 16:] << 4)  # (n, 16): byte i holds q_i (low) and q_{i+16} (high)
    scales = torch.cat([d, low], dim=1).to(torch.float16).view(torch.uint8)  # (n, 2) float16 -> (n, 4) bytes
    return torch.cat([scales, packed], dim=1).numpy()  # (n, 20)


def q4_1_round_trip(weights: Tensor) -> Tensor:
    """`weights` after Q4_1 and back: float32, same shape and device (through GGUF's reader)."""
    blocks = quantize_q4_1(weights)  # (n, 20)
    return torch.from_numpy(dequantize_q4_1(blocks)).reshape(weights.shape).to(weights.device)  # (n, 32) -> shape


def block_round_trip(weights: Tensor, bits: int, block_size: int = BLOCK_SIZE) -> Tensor:
    """`weights` after a `bits`-bit block quantisation and back (float32, same shape): Q4_1's rule
    with ``2**bits`` levels, ``d = (max - min) / (2**bits - 1)`` per block of `block_size`
    consecutive weights, kept in float32 (Q4_1 stores ``d`` and ``m`` as float16). To see how the
    error grows as the bits shrink.

    >>> block_round_trip(torch.tensor([0.0, 0.1, 0.2, 0.3]), bits=1, block_size=4).tolist()  # 2 levels
    [0.0, 0.0, 0.30000001192092896, 0.30000001192092896]
    """
    check_int("bits", bits, 1)
    check_int("block_size", block_size, 1)
    w = _check_weights(weights).float()
    if w.numel() % block_size:
        raise ValueError(f"blocks of {block_size} need a multiple of {block_size} weights, got {w.numel()}")
    blocks = w.reshape(-1, block_size)  # (n, block)
    low, high = blocks.amin(dim=1, keepdim=True), blocks.amax(dim=1, keepdim=True)  # (n, 1) each
    d = (high - low) / (2**bits - 1)
    inverse = torch.where(d > 0, 1 / d, torch.zeros_like(d))
    q = torch.floor((blocks - low) * inverse + 0.5).clamp(0, 2**bits - 1)  # (n, block) codes
    return (q * d + low).reshape(w.shape)


def _round_trip(scheme: str) -> Callable[[Tensor], Tensor]:
    """The round trip a scheme names: "int8", "q4_1" or "block<bits>" (e.g. "block3")."""
    if scheme == "int8":
        return lambda w: dequantize_int8(*quantize_int8(w))
    if scheme == "q4_1":
        return q4_1_round_trip
    if isinstance(scheme, str) and scheme.startswith("block") and scheme[5:].isdigit() and 1 <= int(scheme[5:]) <= 8:
        return lambda w: block_round_trip(w, int(scheme[5:]))
    raise ValueError(f"unknown scheme {scheme!r}; choose one of {', '.join(map(repr, SCHEMES))} or 'block<bits>' "
                     "with 1 to 8 bits, e.g. 'block3'")


def linear_layers(model: nn.Module) -> dict[str, nn.Linear]:
    """The ``nn.Linear`` layers of `model` by name, leaving out any whose weight is an
    ``nn.Embedding``'s (a tied output layer): the layers quantised and pruned in Chapter 10.

    >>> from lmcourse.gpt import GPT, GPTConfig
    >>> list(linear_layers(GPT(GPTConfig.tiny(vocab_size=10, num_layers=1))))  # no "decoder": tied
    ['blocks.0.attn.in_proj', 'blocks.0.attn.out_proj', 'blocks.0.mlp.up', 'blocks.0.mlp.down']
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    return {name: m for name, m in model.named_modules()
            if isinstance(m, nn.Linear) and id(m.weight) not in embeddings}


def fake_quantize_linear_weights(model: nn.Module, scheme: str, embeddings: bool = False) -> nn.Module:
    """A deep copy of `model` whose :func:`linear_layers` weights are replaced by their round trip
    through `scheme` (``"int8"``: per-row absmax; ``"q4_1"``: GGUF blocks; ``"block<bits>"``:
    :func:`block_round_trip`), still float32: weight-only quantisation, simulated. With `embeddings`,
    every ``nn.Embedding`` weight goes through the same round trip (GPT's tied output layer with the
    token embedding); biases and norms are always left alone.
    """
    round_trip = _round_trip(scheme)
    quantized = copy.deepcopy(model)
    targets = dict(linear_layers(quantized))
    if embeddings:
        targets |= {name: m for name, m in quantized.named_modules() if isinstance(m, nn.Embedding)}
    with torch.no_grad():
        for name, layer in targets.items():
            try:
                layer.weight.copy_(round_trip(layer.weight))
            except ValueError as error:
                raise ValueError(f"{name}: {error}") from None
    return quantized


def dynamic_int8(model: nn.Module) -> nn.Module:
    """PyTorch's post-training dynamic quantisation of :func:`linear_layers`, on a deep copy in
    eval mode on the CPU (`model` is untouched): int8 weights with one scale per tensor, activations
    quantised per batch as they come, int8 matrix products.

    The tied output layer stays float32 (an embedding, see the module docstring).
    ``torch.ao.quantization`` is deprecated in favour of the separate ``torchao``
    package, but it is what ships with torch; its deprecation warnings are silenced here.
    """
    quantized = copy.deepcopy(model).cpu().eval()
    names = set(linear_layers(quantized))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"torch\.ao\.quantization is deprecated", DeprecationWarning)
        warnings.filterwarnings("ignore", r"torch\.quantize_per_tensor.* are deprecated", UserWarning)
        from torch.ao.quantization import quantize_dynamic

        return quantize_dynamic(quantized, names, dtype=torch.qint8)


def serialized_bytes(model: nn.Module) -> int:
    """The length of ``torch.save(model.state_dict())``, written to memory only: every parameter
    and buffer (a dynamically quantised layer's int8 weights, scale and zero point in its
    ``_packed_params``), a storage shared by tied weights once, plus the file's names and headers
    (a few hundred bytes per tensor). Nothing is ever loaded back.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell()
