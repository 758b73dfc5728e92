"""Measuring what a computation costs: its time, and the memory it keeps for the backward pass.

Chapter 4b (The Transformer) uses both to compare the book's attention with PyTorch's fused
kernel as the sequence grows; Chapter 6 (GPT) times the book's GPT against ``transformers``' in
alternating rounds (:func:`alternating_median_seconds`); ``benchmarks/`` uses them for longer sweeps.

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
from collections.abc import Callable, Mapping
from typing import Any

import torch

__all__ = ["median_seconds", "alternating_median_seconds", "saved_tensor_bytes"]


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


def alternating_median_seconds(fns: Mapping[str, Callable[[], Any]], rounds: int = 4,
                               repeats: int = 3) -> dict[str, float]:
    """Median seconds of each function, timed in `rounds` alternating rounds of `repeats` calls.

    Taking turns means a machine that gets busier or quieter during the run slows every function
    alike, so the ratios stay fair: the way to compare two implementations side by side.

    >>> times = alternating_median_seconds({"short": lambda: sum(range(10)), "long": lambda: sum(range(10**5))})
    >>> times["short"] < times["long"]
    True
    """
    if rounds < 1:
        raise ValueError(f"need rounds >= 1, got {rounds}")
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(median_seconds(fn, repeats=repeats))
    return {name: statistics.median(t) for name, t in times.items()}


def saved_tensor_bytes(fn: Callable[[], Any], exclude: torch.nn.Module | None = None) -> int:
    """Bytes of the tensors autograd saves for the backward pass while ``fn()`` runs; a storage
    saved twice (or as two views) counts once. With `exclude`, that module's parameters are left
    out: what is left of a training step is its activation memory (Chapter 10).

    Run `fn` with inputs that require gradients, or nothing is saved.

    >>> x = torch.ones(1000, requires_grad=True)
    >>> saved_tensor_bytes(lambda: (x * 2).exp())  # exp saves its output: 1,000 float32
    4000
    """
    skip = {p.untyped_storage().data_ptr() for p in exclude.parameters()} if exclude is not None else set()
    seen: dict[int, int] = {}  # storage address -> bytes

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in skip:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())
