"""The book's GPT against ``transformers.GPT2LMHeadModel``, and what the KV cache buys.

Prints two tables:
1. training tokens per second of our GPT (fused attention) and of ``GPT2LMHeadModel`` (its default
   attention, PyTorch's fused kernel) of the same size: 4 blocks, C = 256, 4 heads, T = 128,
   V = 8,192, batch 16, AdamW; the timed steps of the two alternate, so a busy machine slows both;
2. greedy generation of 128, 512 and 1,024 tokens from a one-token prompt (batch 1, context
   1,024), with and without the KV cache: seconds, milliseconds per token and the speed-up.

Runs on one thread (as the chapters do), in about five minutes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from transformers import GPT2LMHeadModel

from lmcourse.gpt import GPT, GPTConfig, config_to_hf
from lmcourse.profiling import alternating_median_seconds, median_seconds

TRAIN = GPTConfig(vocab_size=8192, context_length=128, emb_dim=256, num_heads=4, num_layers=4, dropout=0.0)
BATCH = 16
GENERATE = GPTConfig(vocab_size=8192, context_length=1024, emb_dim=256, num_heads=4, num_layers=4, dropout=0.0)
LENGTHS = (128, 512, 1024)


def training_steps() -> dict[str, Callable[[], None]]:
    """One AdamW step of each model on the same random batch, as a closure."""
    g = torch.Generator().manual_seed(1)
    x, y = (torch.randint(0, TRAIN.vocab_size, (TRAIN.context_length, BATCH), generator=g) for _ in range(2))  # (T, B)
    torch.manual_seed(0)
    ours = GPT(TRAIN)
    torch.manual_seed(0)
    theirs = GPT2LMHeadModel(config_to_hf(TRAIN))  # attn_implementation: its default, "sdpa"
    steps = {}
    for name, model in (("lmcourse GPT", ours), ("GPT2LMHeadModel", theirs)):
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

        def step(model=model, optimizer=optimizer) -> None:
            if isinstance(model, GPT):
                loss = model.nll(x, y)[0].mean()  # (T, B) -> mean nll
            else:
                logits = model(input_ids=x.T).logits  # (B, T) -> (B, T, V)
                loss = F.cross_entropy(logits.reshape(-1, TRAIN.vocab_size), y.T.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        steps[name] = step
    return steps


def training_rows(rounds: int = 4, repeats: int = 3) -> dict[str, float]:
    """Tokens per second of each model: median over `rounds` alternating rounds of `repeats` steps."""
    seconds = alternating_median_seconds(training_steps(), rounds=rounds, repeats=repeats)
    return {name: TRAIN.context_length * BATCH / s for name, s in seconds.items()}


def generation_rows() -> list[tuple[int, float, float]]:
    """(tokens, seconds with the cache, seconds without) for every length in LENGTHS."""
    torch.manual_seed(0)
    model = GPT(GENERATE)
    rows = []
    for n in LENGTHS:
        cached = median_seconds(lambda: model.generate([0], n, temperature=0, use_cache=True), repeats=3)
        start = time.perf_counter()
        full = model.generate([0], n, temperature=0, use_cache=False)  # slow: timed once
        uncached = time.perf_counter() - start
        assert full == model.generate([0], n, temperature=0, use_cache=True)
        rows.append((n, cached, uncached))
    return rows


def main() -> None:
    torch.set_num_threads(1)
    start = time.perf_counter()
    speeds = training_rows()
    c = TRAIN
    print(f"training, {c.num_layers} blocks, C = {c.emb_dim}, {c.num_heads} heads, T = {c.context_length}, "
          f"V = {c.vocab_size:,}, batch {BATCH}, AdamW, one thread")
    print(f"{'model':>16} {'tokens/s':>9} {'vs HF':>6}")
    hf = speeds["GPT2LMHeadModel"]
    for name, speed in speeds.items():
        print(f"{name:>16} {speed:>9,.0f} {speed / hf:>6.2f}")
    print(f"\ngreedy generation, batch 1, context {GENERATE.context_length}, same model otherwise")
    print(f"{'tokens':>6} {'cache s':>8} {'no cache s':>11} {'cache ms/token':>15} {'no cache ms/token':>18} {'speed-up':>9}")
    for n, cached, uncached in generation_rows():
        print(f"{n:>6} {cached:>8.2f} {uncached:>11.2f} {1000 * cached / n:>15.2f} {1000 * uncached / n:>18.2f} "
              f"{uncached / cached:>9.1f}")
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
