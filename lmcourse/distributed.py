r"""Data-parallel training with PyTorch's engine, and the ring all-reduce beneath it.
Chapter 10 (Scaling and efficiency) explains it.

Data parallelism keeps one copy of the model per process (a *rank*), gives each rank a different
shard of the batch, and averages the gradients over the ranks before every optimizer step, so all
copies take the same step. ``torch.nn.parallel.DistributedDataParallel`` (DDP) does the averaging
with an *all-reduce* while the backward pass is still running. Because the loss is a mean over
tokens and the shards are equal, the average of the shard gradients is the gradient of the whole
batch: DDP over ``W`` ranks with ``B`` sequences each takes the step that one process would take on
``W * B`` sequences.

Run under ``torchrun`` (one process per rank, ``gloo`` on CPU threads)::

    torchrun --standalone --nproc_per_node 2 -m lmcourse.distributed               # the check
    torchrun --standalone --nproc_per_node 2 -m lmcourse.distributed --throughput  # tokens/s

The check (the default) trains the book's GPT (:class:`lmcourse.gpt.GPT`) under DDP beside a plain
copy of the same weights that reads the whole global batch, prints the largest gradient and weight
difference at each step and exits with status 0 when every difference is within ``--tolerance``.
The gradients agree to float rounding (about 1e-8 here). With AdamW at a learning rate of 1e-3
the weights would drift apart by a few 1e-7 per step: where the true gradient is 0 (the key bias:
softmax ignores a shift shared by every key) rounding noise is all there is, and Adam divides it by
its own size, so a step of up to ``lr * noise / eps`` follows the noise. The check's default
learning rate, 1e-4, keeps that drift far below the tolerance; with SGD the weights stay within
about 1e-9. ``--no-sync`` skips DDP's all-reduce (its ``no_sync`` context, meant for gradient accumulation):
each rank then steps on its own shard's gradient, the copies drift apart and the check fails; in
``--throughput`` mode it measures the steps without communication. From Python (a notebook, a
test), :func:`run_torchrun` launches the same command and :func:`largest_difference` and
:func:`throughput` read its output. :func:`ring_all_reduce` simulates the algorithm behind the
all-reduce (Patarasuk & Yuan, 2009) on tensors in one process and counts what each device sends.

Left out: GPUs and NCCL, several machines, sharded optimizers and parameters (ZeRO, FSDP), tensor
and pipeline parallelism, and overlapping the communication of gradient buckets (DDP does it; the
simulation does not).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from lmcourse._checks import check_float, check_int
from lmcourse.gpt import GPT, GPTConfig
from lmcourse.markov import MarkovSource
from lmcourse.trainstate import TrainConfig
from lmcourse.trainstep import make_optimizer

__all__ = ["ring_all_reduce", "all_reduce_mean", "token_batches", "check_ddp", "measure_throughput",
           "run_torchrun", "largest_difference", "throughput", "main", "VOCAB_SIZE"]

VOCAB_SIZE = 32  # symbols of the Markov source (lmcourse.markov) that every rank samples
_LAUNCH = "torchrun --standalone --nproc_per_node 2 -m lmcourse.distributed"


def ring_all_reduce(tensors: list[torch.Tensor]) -> tuple[list[torch.Tensor], int]:
    """Every device's copy of the elementwise sum of `tensors` (one per simulated device, in a
    ring), and the most elements one device sent: ``2 (n-1)/n`` of a tensor, up to rounding.

    >>> sums, sent = ring_all_reduce([torch.tensor([1., 2, 3, 4]), torch.tensor([10., 20, 30, 40])])
    >>> sums[1].tolist(), sent  # 2 devices, 4 elements: each sends 2 chunks of 2
    ([11.0, 22.0, 33.0, 44.0], 4)
    """
    _check_devices(tensors)
    n = len(tensors)
    buffers = [t.flatten().clone() for t in tensors]  # (N,) per device; the inputs stay unchanged
    chunks = [b.tensor_split(n) for b in buffers]  # chunks[i][c]: (about N/n,), a view into buffers[i]
    sent = [0] * n
    # Phase 1, reduce-scatter: at step s device i sends chunk (i - s) to device i + 1 (indices
    # mod n), which adds it to its own; after n - 1 steps device i holds the sum of chunk i + 1.
    for s in range(n - 1):
        messages = [chunks[i][(i - s) % n].clone() for i in range(n)]  # all send at once
        for i, message in enumerate(messages):
            chunks[(i + 1) % n][(i - s) % n].add_(message)
            sent[i] += message.numel()
    # Phase 2, all-gather: at step s device i passes the finished chunk (i + 1 - s) on to
    # device i + 1, which overwrites its partial sum; after n - 1 steps every chunk is everywhere.
    for s in range(n - 1):
        messages = [chunks[i][(i + 1 - s) % n].clone() for i in range(n)]
        for i, message in enumerate(messages):
            chunks[(i + 1) % n][(i + 1 - s) % n].copy_(message)
            sent[i] += message.numel()
    return [b.view_as(t) for b, t in zip(buffers, tensors)], max(sent)  # (N,) -> the input's shape


def all_reduce_mean(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """The ring all-reduce divided by the number of devices: the average DDP gives every rank.

    >>> all_reduce_mean([torch.tensor([1., 2]), torch.tensor([3., 6])])[0].tolist()
    [2.0, 4.0]
    """
    sums, _ = ring_all_reduce(tensors)
    return [s / len(tensors) for s in sums]


def _check_devices(tensors: list[torch.Tensor]) -> None:
    """A clear ``ValueError`` unless `tensors` is a non-empty list of tensors of one shape and dtype."""
    if not isinstance(tensors, (list, tuple)) or not tensors:
        raise ValueError("tensors must be a non-empty list of tensors, one per device")
    if not all(isinstance(t, torch.Tensor) for t in tensors):
        raise ValueError(f"tensors must all be torch.Tensor, got {[type(t).__name__ for t in tensors]}")
    for i, t in enumerate(tensors[1:], 1):
        if t.shape != tensors[0].shape or t.dtype != tensors[0].dtype:
            raise ValueError(f"every device needs the same shape and dtype: device 0 has "
                             f"{tuple(tensors[0].shape)} {tensors[0].dtype}, device {i} {tuple(t.shape)} {t.dtype}")


def token_batches(steps: int, rows: int, context: int, seed: int = 0) -> torch.Tensor:
    """``(steps, rows, context + 1)`` token ids from a seeded Markov source: every rank regenerates
    the same global batches; row ``r`` of a batch is ``context`` inputs and, shifted by one, targets."""
    for name, value in (("steps", steps), ("rows", rows), ("context", context)):
        check_int(name, value, 1)
    stream = MarkovSource.random(VOCAB_SIZE, seed=seed).sample(steps * rows * (context + 1), seed=seed)
    return torch.from_numpy(stream).view(steps, rows, context + 1)  # (S*R*(T+1),) -> (S, R, T+1)


def _loss(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy per token of `batch` ``(B, T+1)``, through the model's (or DDP's) forward."""
    logits = model(batch[:, :-1])  # (B, T) -> (B, T, V)
    return F.cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten())  # (B*T, V), (B*T,)


def _largest_gap(a: Iterable[torch.Tensor], b: Iterable[torch.Tensor]) -> float:
    """The largest absolute elementwise difference between paired tensors."""
    return max((x - y).abs().max().item() for x, y in zip(a, b, strict=True))


def _models(config: GPTConfig, args: argparse.Namespace) -> tuple[DistributedDataParallel, nn.Module]:
    """The DDP model and a plain copy of its initial weights (every rank seeds alike; DDP also
    broadcasts rank 0's weights when it wraps the model)."""
    torch.manual_seed(args.seed)
    model = GPT(config)
    reference = copy.deepcopy(model)  # before wrapping: the same weights, never synchronised
    return DistributedDataParallel(model), reference


def _optimizer(model: nn.Module, args: argparse.Namespace) -> torch.optim.Optimizer:
    """The book's AdamW or SGD (:func:`lmcourse.trainstep.make_optimizer`) with ``args.lr``."""
    return make_optimizer(model, TrainConfig(optimizer=args.optimizer, lr=args.lr))


def check_ddp(config: GPTConfig, args: argparse.Namespace, rank: int, world: int) -> float:
    """Train DDP beside the one-process reference on the global batch; print each step's largest
    differences (rank 0) and return the largest of all, agreed by every rank."""
    B = args.batch_size
    ddp, reference = _models(config, args)
    ddp_opt, ref_opt = _optimizer(ddp.module, args), _optimizer(reference, args)
    sync = ddp.no_sync if args.no_sync else contextlib.nullcontext
    largest = 0.0
    batches = token_batches(args.steps, world * B, config.context_length, args.seed)  # (S, W*B, T+1)
    for step, batch in enumerate(batches, 1):
        ddp_opt.zero_grad()
        ref_opt.zero_grad()
        with sync():
            _loss(ddp, batch[rank * B:(rank + 1) * B]).backward()  # this rank's (B, T+1); all-reduce
        _loss(reference, batch).backward()  # the whole global batch (W*B, T+1) in one process
        grad_gap = _largest_gap((p.grad for p in ddp.parameters()), (p.grad for p in reference.parameters()))
        ddp_opt.step()
        ref_opt.step()
        gaps = torch.tensor([grad_gap, _largest_gap(ddp.parameters(), reference.parameters())])
        dist.all_reduce(gaps, op=dist.ReduceOp.MAX)  # the worst rank decides for all
        if rank == 0:
            print(f"step {step}: largest gradient difference {gaps[0]:.3e}, "
                  f"largest weight difference {gaps[1]:.3e}", flush=True)
        largest = max(largest, gaps.max().item())
    return largest


def measure_throughput(config: GPTConfig, args: argparse.Namespace, rank: int, world: int) -> dict:
    """Seconds per DDP step and tokens per second over ``args.steps`` steps after one warm-up."""
    B, T = args.batch_size, config.context_length
    ddp, _ = _models(config, args)
    optimizer = _optimizer(ddp.module, args)
    sync = ddp.no_sync if args.no_sync else contextlib.nullcontext
    batches = token_batches(args.steps + 1, world * B, T, args.seed)  # (S+1, W*B, T+1)
    for step, batch in enumerate(batches):
        if step == 1:  # after the warm-up step
            dist.barrier()
            start = time.perf_counter()
        optimizer.zero_grad()
        with sync():
            _loss(ddp, batch[rank * B:(rank + 1) * B]).backward()  # (B, T+1): this rank's shard
        optimizer.step()
    dist.barrier()
    seconds = (time.perf_counter() - start) / args.steps
    return {"processes": world, "tokens_per_second": round(world * B * T / seconds, 1),
            "seconds_per_step": round(seconds, 6), "tokens_per_step": world * B * T}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lmcourse.distributed", description=(
        f"DDP's step equals one process's step on the global batch. Launch with: {_LAUNCH}"))
    add = parser.add_argument
    add("--steps", type=int, default=3, help="optimizer steps (default 3)")
    add("--batch-size", type=int, default=4, help="sequences per process (default 4)")
    add("--context", type=int, default=32, help="tokens per sequence (default 32)")
    add("--layers", type=int, default=2, help="GPT blocks (default 2)")
    add("--width", type=int, default=32, help="GPT emb_dim, a multiple of its 4 heads (default 32)")
    add("--optimizer", choices=("adamw", "sgd"), default="adamw")
    add("--lr", type=float, default=1e-4, help="learning rate (default 1e-4; see the module docstring)")
    add("--seed", type=int, default=0, help="seeds the weights and the data (default 0)")
    add("--tolerance", type=float, default=1e-6, help="largest allowed difference (default 1e-6)")
    add("--no-sync", action="store_true", help="skip DDP's gradient all-reduce (the check then fails)")
    add("--throughput", action="store_true", help="time the DDP steps instead of checking them")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse `argv`, run the check or the throughput measurement on this rank, and return the exit
    status: 0, or 1 when the check finds a difference above ``--tolerance``."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        for name in ("steps", "batch_size", "context", "layers", "width"):
            check_int(name, getattr(args, name), 1)
        check_float("tolerance", args.tolerance, 0.0)
        config = GPTConfig.tiny(VOCAB_SIZE, context_length=args.context, emb_dim=args.width,
                                num_layers=args.layers)
    except ValueError as err:
        parser.error(str(err))
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        parser.error(f"no RANK or WORLD_SIZE in the environment: launch one process per rank with\n  {_LAUNCH}\n"
                     "or, from Python, lmcourse.distributed.run_torchrun(2)")
    torch.set_num_threads(1)
    dist.init_process_group("gloo")  # reads MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE
    try:
        rank, world = dist.get_rank(), dist.get_world_size()
        if args.throughput:
            result = measure_throughput(config, args, rank, world)
            if rank == 0:
                print("throughput: " + json.dumps(result), flush=True)
            return 0
        largest = check_ddp(config, args, rank, world)
        if rank == 0:
            print(f"largest difference: {largest!r}", flush=True)
        return 0 if largest <= args.tolerance else 1
    finally:
        dist.destroy_process_group()


def run_torchrun(nproc: int, *args: str, timeout: float = 300, check: bool = True
                 ) -> subprocess.CompletedProcess[str]:
    """Run ``torchrun --standalone --nproc_per_node <nproc> -m lmcourse.distributed <args>`` with one
    thread per process and return its text output; a non-zero exit raises ``RuntimeError`` with
    the end of the output, unless ``check=False``."""
    check_int("nproc", nproc, 1)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
               "-m", "lmcourse.distributed", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[1:])} exited with status {result.returncode}\n"
                           f"stdout ends:\n{result.stdout[-1000:]}\nstderr ends:\n{result.stderr[-2000:]}")
    return result


def _last_line(output: str, prefix: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith(prefix)]
    if not lines:
        raise ValueError(f"no line starting with {prefix!r} in the output")
    return lines[-1][len(prefix):]


def largest_difference(output: str) -> float:
    """The number on the check's ``largest difference: ...`` line of `output`."""
    return float(_last_line(output, "largest difference: "))


def throughput(output: str) -> dict:
    """The JSON on the ``throughput: {...}`` line of `output`."""
    return json.loads(_last_line(output, "throughput: "))


if __name__ == "__main__":
    sys.exit(main())
