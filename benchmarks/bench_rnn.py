"""Training speed of the Chapter 3 neural language models on a CPU, and of the from-scratch
recurrent cells against torch's fused layers.

Prints two tables:

1. training tokens per second (forward, backward and an AdamW step) of FeedForwardLM and of
   RNNModel with rnn_tanh / lstm / gru, each with the full softmax and with the adaptive
   softmax (cutoffs 2000, 6000), at vocabulary 15,000, emb/hidden 256, one layer, batch 32,
   bptt 35;
2. forward+backward tokens per second of ``unroll(LSTMCell...)`` etc. against ``nn.LSTM`` etc.
   at the same sizes.

Token ids are random but Zipf-distributed (frequency ~ 1/rank), like words sorted by frequency,
since the adaptive softmax's cost depends on how often targets fall in its tail clusters.
Run: ``python benchmarks/bench_rnn.py`` (1-3 minutes) or ``--quick``; ``--threads N`` to change
the 2 threads. On a machine shared with other processes, 2 threads can be several times slower
than 1 (the threads wait for each other at every operation): the header prints the load.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Callable

import torch
from torch import nn

from lmcourse.feedforward import FeedForwardConfig, FeedForwardLM
from lmcourse.profiling import median_seconds
from lmcourse.rnn import GRUCell, LSTMCell, RNNCell, RNNConfig, RNNModel, unroll

VOCAB, DIM, BATCH, BPTT, THREADS = 15_000, 256, 32, 35, 2
CUTOFFS = (2000, 6000)


def zipf_ids(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    weights = 1.0 / torch.arange(1, VOCAB + 1, dtype=torch.float64)  # P(rank r) ~ 1/r
    return torch.multinomial(weights, int(torch.tensor(shape).prod()), replacement=True,
                             generator=generator).view(shape)


def training_step(model: nn.Module) -> Callable[[], None]:
    """One forward+backward+AdamW step on a fresh Zipfian chunk, carrying the (detached) state."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    data = zipf_ids((BPTT + 1, BATCH), gen)
    holder = {"state": None}

    def step() -> None:
        nll, state = model.nll(data[:-1], data[1:], holder["state"])
        holder["state"] = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        opt.zero_grad(set_to_none=True)
        nll.mean().backward()
        opt.step()

    return step


def model_rows(steps: int) -> list[tuple[str, int, float]]:
    rows = []
    for softmax, cutoffs in (("full", None), ("adaptive", CUTOFFS)):
        models = {"feed-forward (n=5)": FeedForwardLM(FeedForwardConfig(
            VOCAB, context=4, emb_dim=DIM, hidden_dim=DIM, adaptive_cutoffs=cutoffs))}
        for cell in ("rnn_tanh", "lstm", "gru"):
            models[cell] = RNNModel(RNNConfig(VOCAB, cell=cell, emb_dim=DIM, hidden_dim=DIM,
                                              num_layers=1, dropout=0.2, adaptive_cutoffs=cutoffs))
        for name, model in models.items():
            torch.manual_seed(0)
            seconds = median_seconds(training_step(model.train()), repeats=steps, warmup=2)
            rows.append((f"{name}, {softmax} softmax", model.num_parameters, seconds))
    return rows


def cell_rows(steps: int) -> list[tuple[str, int, float]]:
    rows = []
    x = torch.randn(BPTT, BATCH, DIM)  # (T, B, C)
    for name, ours, theirs in (("rnn_tanh", RNNCell, nn.RNN), ("lstm", LSTMCell, nn.LSTM),
                               ("gru", GRUCell, nn.GRU)):
        layer = theirs(DIM, DIM)
        cell = ours.from_torch(layer)
        for label, run in ((f"{name}: from-scratch cell, unroll", lambda: unroll(cell, x)[0]),
                           (f"{name}: torch nn.{theirs.__name__}", lambda: layer(x)[0])):
            seconds = median_seconds(lambda: run().sum().backward(), repeats=steps, warmup=2)  # noqa: B023
            rows.append((label, sum(p.numel() for p in layer.parameters()), seconds))
    return rows


def print_table(title: str, rows: list[tuple[str, int, float]]) -> None:
    tokens = BPTT * BATCH
    print(f"\n{title}")
    print(f"{'what':40} {'parameters':>12} {'ms/step':>9} {'tokens/s':>10}")
    for what, params, seconds in rows:
        print(f"{what:40} {params:>12,} {seconds * 1e3:9.1f} {tokens / seconds:>10,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 timed steps instead of 10")
    parser.add_argument("--threads", type=int, default=THREADS, help=f"torch threads (default {THREADS})")
    args = parser.parse_args()
    steps = 3 if args.quick else 10
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    start = time.perf_counter()
    print(f"torch {torch.__version__}, {args.threads} thread(s), vocab {VOCAB:,}, emb/hidden {DIM}, "
          f"1 layer, batch {BATCH} x bptt {BPTT} = {BATCH * BPTT} tokens/step, median of {steps} steps")
    # other processes on the CPU slow multi-threaded torch a lot: say how busy the machine was
    print(f"load average before the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPU(s)")
    print_table("Training (forward + backward + AdamW step)", model_rows(steps))
    print_table("Recurrent layer alone (forward + backward)", cell_rows(steps))
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
