"""The cost of attention against sequence length: the book's from-scratch attention
(`lmcourse.attention.scaled_dot_product_attention`) against PyTorch's fused kernel
(`F.scaled_dot_product_attention`), and a small Transformer LM trained with each.

Prints two tables:
1. causal self-attention of one sequence (8 heads of 64 dimensions), forward + backward: median
   milliseconds and the bytes autograd saves for the backward pass, for T = 128 ... 4096;
2. training tokens per second of a 2-layer TransformerLM (C = 256, T = 128) with each attention.

Runs on one thread (as the chapters do), in about two minutes.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from lmcourse.attention import scaled_dot_product_attention
from lmcourse.profiling import median_seconds, saved_tensor_bytes
from lmcourse.transformer import TransformerConfig, TransformerLM

HEADS, HEAD_DIM = 8, 64
LENGTHS = (128, 256, 512, 1024, 2048, 4096)
IMPLEMENTATIONS = {
    "from scratch": lambda q, k, v: scaled_dot_product_attention(q, k, v, is_causal=True),
    "fused": lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
}


def attention_rows() -> list[tuple[int, str, float, int]]:
    """(T, implementation, ms for forward + backward, bytes saved for backward) for every length."""
    rows = []
    g = torch.Generator().manual_seed(0)
    for T in LENGTHS:
        q, k, v = (torch.randn(1, HEADS, T, HEAD_DIM, generator=g, requires_grad=True) for _ in range(3))
        for name, attend in IMPLEMENTATIONS.items():
            saved = saved_tensor_bytes(lambda: attend(q, k, v))
            seconds = median_seconds(lambda: attend(q, k, v).sum().backward(), repeats=3 if T >= 2048 else 5)
            rows.append((T, name, 1000 * seconds, saved))
    return rows


def training_tokens_per_second(fused: bool, steps: int = 8) -> float:
    """Training tokens per second of a small TransformerLM (batch 16 x 128 tokens, full softmax)."""
    torch.manual_seed(0)
    config = TransformerConfig(vocab_size=8000, context_length=128, emb_dim=256, num_heads=4, num_layers=2,
                               dropout=0.0, fused=fused)
    model = TransformerLM(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1)
    x, y = (torch.randint(0, 8000, (128, 16), generator=g) for _ in range(2))  # (T, B)

    def step() -> None:
        nll, _ = model.nll(x, y)
        optimizer.zero_grad()
        nll.mean().backward()
        optimizer.step()

    return x.numel() / median_seconds(step, repeats=steps)


def main() -> None:
    torch.set_num_threads(1)
    start = time.perf_counter()
    rows = attention_rows()
    print(f"causal self-attention, {HEADS} heads x {HEAD_DIM} dims, batch 1, one thread: forward + backward")
    print(f"{'T':>6} {'from scratch ms':>16} {'fused ms':>9} {'ratio':>6} {'scratch MB saved':>17} {'fused MB saved':>15}")
    by_key = {(T, name): (ms, saved) for T, name, ms, saved in rows}
    for T in LENGTHS:
        (ms_s, mb_s), (ms_f, mb_f) = by_key[T, "from scratch"], by_key[T, "fused"]
        print(f"{T:>6} {ms_s:>16.1f} {ms_f:>9.1f} {ms_s / ms_f:>6.1f} {mb_s / 1e6:>17.1f} {mb_f / 1e6:>15.1f}")
    scratch, fused = training_tokens_per_second(False), training_tokens_per_second(True)
    print("\nTransformerLM training (2 layers, C = 256, T = 128, batch 16, full softmax over 8,000 ids)")
    print(f"  from scratch {scratch:,.0f} tokens/s   fused {fused:,.0f} tokens/s   ratio {fused / scratch:.2f}")
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
