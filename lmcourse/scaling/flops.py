"""What training and generation cost: FLOPs and memory by arithmetic, and both measured.
Chapter 10 (Scaling and efficiency) explains it.

**FLOPs.** A matrix product of a ``(1, m)`` row with an ``(m, n)`` weight costs ``2 m n`` floating-point
operations (a multiply and an add per weight), so a forward pass costs about ``2 N`` FLOPs per token
for a model whose ``N`` parameters all sit in matrix products, and the backward pass twice that
(gradients for the activations and for the weights): training costs ``6 N D`` FLOPs for ``D``
tokens (Kaplan et al., 2020). Attention adds ``4 T C`` per token and block (the scores ``Q K^T`` and
the weighted sum of values over ``T`` positions), which the ``6 N D`` rule leaves out.
:func:`gpt_forward_flops_per_token` counts both exactly for the book's GPT;
:func:`measured_flops` counts what PyTorch actually runs, with ``torch.utils.flop_counter``.

**Memory.** Training with AdamW keeps, per parameter, the weight, its gradient and two moments:
16 bytes in float32. Mixed precision (Micikevicius et al., 2018) keeps 16-bit copies for the
arithmetic plus float32 master weights: 2 + 2 + 4 + 4 + 4 = 16 bytes as well; what it saves is the
activations. ZeRO (Rajbhandari et al., 2020) and FSDP shard these states over the devices of a
data-parallel group (:func:`zero_bytes_per_device`). Activations are measured, not modelled:
:func:`lmcourse.profiling.saved_tensor_bytes` adds up the tensors autograd keeps for the backward
pass.

Left out: the FLOPs of LayerNorm, GELU, softmax and the optimizer (a few per parameter or per
activation, small next to the matrix products), the causal mask's halving of attention (PyTorch
computes the full score matrix), and allocator overheads and temporary buffers in the memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from lmcourse._checks import check_int
from lmcourse.gpt.config import GPTConfig

__all__ = ["training_flops", "gpt_matmul_parameters", "gpt_forward_flops_per_token", "gpt_training_flops_per_token",
           "measured_flops", "TrainingMemory", "training_memory", "zero_bytes_per_device",
           "state_bytes"]


def training_flops(num_parameters: float, num_tokens: float) -> float:
    """The ``6 N D`` estimate: forward ``2 N`` plus backward ``4 N`` FLOPs per training token.

    >>> f"{training_flops(175e9, 300e9):.2e}"  # GPT-3 (Brown et al., 2020)
    '3.15e+23'
    """
    if num_parameters < 0 or num_tokens < 0:
        raise ValueError(f"num_parameters and num_tokens must be >= 0, got {num_parameters}, {num_tokens}")
    return 6.0 * num_parameters * num_tokens


def gpt_matmul_parameters(config: GPTConfig) -> int:
    """The weights that take part in matrix products, per token: ``12 C^2`` per block (``W_Q, W_K,
    W_V, W_O`` and the MLP's two ``4 C^2``) plus the ``V C`` output layer. Embedding lookups and
    position embeddings cost no products; biases and LayerNorms are left out.

    >>> gpt_matmul_parameters(GPTConfig.gpt2_small())  # 85M in the blocks, 39M in the output layer
    123532032
    """
    C = config.emb_dim
    return config.num_layers * 12 * C * C + config.vocab_size * C


def gpt_forward_flops_per_token(config: GPTConfig, seq_len: int | None = None) -> int:
    """Forward FLOPs per token of the book's GPT on sequences of `seq_len` tokens (default: the
    context length): ``2`` per matrix-product weight, plus ``4 T C`` per block for attention.

    >>> cfg = GPTConfig.tiny(vocab_size=100)  # 2 blocks, C = 32, context 32
    >>> gpt_forward_flops_per_token(cfg, seq_len=10) == 2 * (2 * 12 * 32**2 + 100 * 32) + 2 * 4 * 10 * 32
    True
    """
    T = config.context_length if seq_len is None else seq_len
    check_int("seq_len", T, 1)
    return 2 * gpt_matmul_parameters(config) + config.num_layers * 4 * T * config.emb_dim


def gpt_training_flops_per_token(config: GPTConfig, seq_len: int | None = None) -> int:
    """Training FLOPs per token: three forward passes' worth (the backward pass costs two)."""
    return 3 * gpt_forward_flops_per_token(config, seq_len)


def measured_flops(step: Callable[[], torch.Tensor]) -> tuple[int, int]:
    """The FLOPs PyTorch counts for ``loss = step()`` and for ``loss.backward()``: ``(forward, backward)``.

    ``torch.utils.flop_counter`` counts matrix products (and attention kernels where it knows
    them); build the model with ``fused=False`` so that attention runs as plain products it sees.
    """
    with FlopCounterMode(display=False) as forward:
        loss = step()
    with FlopCounterMode(display=False) as backward:
        loss.backward()
    return forward.get_total_flops(), backward.get_total_flops()


@dataclass(frozen=True)
class TrainingMemory:
    """Bytes of the state that training keeps per model, by kind."""

    weights: int  # the parameters the arithmetic reads (16-bit copies under mixed precision)
    gradients: int
    master_weights: int  # float32 copies that mixed precision updates (0 in float32)
    optimizer: int  # AdamW's two moments, float32

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.master_weights + self.optimizer


def training_memory(num_parameters: int, precision: str = "float32") -> TrainingMemory:
    """Bytes of weights, gradients and AdamW state for `num_parameters` parameters, without activations.

    ``"float32"``: 4 + 4 + 8 bytes per parameter. ``"mixed"``: 16-bit weights and gradients (2 + 2),
    float32 master weights (4) and moments (8), as in mixed-precision training with a 16-bit copy.
    (``torch.autocast`` instead keeps float32 weights and gradients and casts inside each product:
    the float32 row, with smaller activations.)

    >>> training_memory(1_000_000, "mixed").total == training_memory(1_000_000).total == 16_000_000
    True
    """
    check_int("num_parameters", num_parameters, 0)
    if precision == "float32":
        return TrainingMemory(4 * num_parameters, 4 * num_parameters, 0, 8 * num_parameters)
    if precision == "mixed":
        return TrainingMemory(2 * num_parameters, 2 * num_parameters, 4 * num_parameters, 8 * num_parameters)
    raise ValueError(f"precision must be 'float32' or 'mixed', got {precision!r}")


def zero_bytes_per_device(num_parameters: int, num_devices: int, stage: int) -> float:
    """Bytes of mixed-precision AdamW state per device under ZeRO `stage` (Rajbhandari et al., 2020).

    Stage 0 is plain data parallelism: every device holds all 16 bytes per parameter. Stage 1
    shards the 12 bytes of optimizer state (master weights and moments) over the devices, stage 2
    the gradients too, stage 3 (FSDP's full sharding) the 16-bit weights as well.

    >>> [zero_bytes_per_device(10**9, 8, s) / 1e9 for s in range(4)]  # a 1B model on 8 devices, in GB
    [16.0, 5.5, 3.75, 2.0]
    """
    check_int("num_parameters", num_parameters, 0)
    check_int("num_devices", num_devices, 1)
    if stage not in (0, 1, 2, 3):
        raise ValueError(f"stage must be 0, 1, 2 or 3, got {stage!r}")
    weights, gradients, states = 2.0, 2.0, 12.0  # bytes per parameter
    sharded = [0.0, states, states + gradients, states + gradients + weights][stage]
    kept = weights + gradients + states - sharded
    return num_parameters * (kept + sharded / num_devices)


def state_bytes(model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> TrainingMemory:
    """Bytes the model and optimizer actually hold now: weights, gradients and optimizer state tensors."""
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    gradients = sum(p.grad.numel() * p.grad.element_size() for p in model.parameters() if p.grad is not None)
    state = 0
    if optimizer is not None:
        for per_param in optimizer.state.values():
            state += sum(t.numel() * t.element_size() for t in per_param.values()
                         if isinstance(t, torch.Tensor) and t.dim() > 0)  # moments, not the step counter
    return TrainingMemory(weights, gradients, 0, state)
