"""Measuring what a computation costs: its time, and the memory it keeps for the backward pass.

Chapter 4b (The Transformer) uses both to compare the book's attention with PyTorch's fused
kernel as the sequence grows; ``benchmarks/`` uses them for longer sweeps.

The memory measure counts the bytes of every tensor that autograd saves during a forward pass
(via ``torch.autograd.graph.saved_tensors_hooks``): the activations a training step must keep
until its backward pass. It is exact and the same on every machine, unlike the process's peak
memory, and it is what grows as ``T^2`` when attention stores its ``T x T`` weights. Tensors that
share memory (views of one storage, such as a reshaped matrix) count once, by the storage's size.

Left out: peak memory of the allocator, GPU timing (needs synchronisation), FLOP counting.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["median_seconds", "saved_tensor_bytes"]


def median_seconds(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall-clock seconds of ``fn()`` over `repeats` calls, after `warmup` untimed calls.

    The median ignores the odd slow call caused by another process.

    >>> median_seconds(lambda: sum(range(1000)), repeats=3) < 1.0
    True
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def saved_tensor_bytes(fn: Callable[[], Any]) -> int:
    """Bytes of the tensors autograd saves for the backward pass while ``fn()`` runs.

    Run `fn` with inputs that require gradients, or nothing is saved.

    >>> x = torch.ones(1000, requires_grad=True)
    >>> saved_tensor_bytes(lambda: (x * 2).exp())  # exp saves its output: 1,000 float32
    4000
    """
    seen: dict[int, int] = {}  # storage address -> bytes

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())
