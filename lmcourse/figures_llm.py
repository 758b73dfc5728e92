"""Diagrams of Chapter 7, drawn from code so that they can be rebuilt and checked: a GPT-2 block
beside a Llama block (what changed, in one colour), and one Q4_1 block of a GGUF file laid out
byte by byte above the weights it stores.

Only drawing lives here; the numbers drawn (a block's scale, minimum and codes) are computed by the
chapter and passed in. Matplotlib is imported inside the functions, as the rest of the package
does not need it.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

CHANGED, SAME = "#f4a259", "#d9e6f2"  # what Llama changed / what it kept from GPT-2

_GPT2 = [("embedding + learned positions", False), ("LayerNorm", False), ("multi-head attention\n(Q, K, V: 12 heads)", False),
         ("+", False), ("LayerNorm", False), ("MLP: Linear, GELU, Linear\n(4C, with biases)", False), ("+", False),
         ("final LayerNorm, tied output", False)]
_LLAMA = [("embedding (no positions)", True), ("RMSNorm", True),
          ("grouped-query attention\nRoPE on Q, K; 9 Q heads, 3 K/V heads", True), ("+", False), ("RMSNorm", True),
          ("SwiGLU: down(silu(gate) * up)\n(no biases)", True), ("+", False), ("final RMSNorm, tied output", True)]


def _box(ax: Any, x: float, y: float, text: str, changed: bool, width: float = 3.4) -> None:
    """One labelled box centred at (x, y); a residual '+' is drawn as a circle."""
    from matplotlib.patches import Circle, FancyBboxPatch

    if text == "+":
        ax.add_patch(Circle((x, y), 0.22, facecolor="white", edgecolor="black"))
        ax.text(x, y, "+", ha="center", va="center", fontsize=12)
        return
    height = 0.9 if "\n" in text else 0.6
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.05",
                                facecolor=CHANGED if changed else SAME, edgecolor="black", linewidth=0.8))
    ax.text(x, y, text, ha="center", va="center", fontsize=8)


def _column(ax: Any, x: float, title: str, boxes: Sequence[tuple[str, bool]]) -> None:
    """A block drawn bottom-up: embedding, two residual sub-layers, the output; skips drawn on the left."""
    ys = [0.0, 1.3, 2.5, 3.7, 4.8, 6.0, 7.2, 8.5]
    for (text, changed), y in zip(boxes, ys):
        _box(ax, x, y, text, changed)
    for y0, y1 in zip(ys, ys[1:]):  # the main path
        ax.annotate("", (x, y1 - 0.45), (x, y0 + 0.45), arrowprops=dict(arrowstyle="->", lw=0.8))
    for start, plus in ((0.7, 3.7), (4.1, 7.2)):  # residual connections around each sub-layer
        left = x - 2.0
        ax.plot([x, left, left], [start, start, plus], color="black", lw=0.8)
        ax.annotate("", (x - 0.22, plus), (left, plus), arrowprops=dict(arrowstyle="->", lw=0.8))
    ax.plot([x + 1.95] * 2, [0.75, 7.5], color="grey", lw=0.8)
    ax.text(x + 2.05, 4.1, "× N blocks", rotation=90, va="center", fontsize=8, color="grey")
    ax.text(x, 9.4, title, ha="center", fontsize=10, weight="bold")


def draw_gpt2_vs_llama() -> Any:
    """GPT-2's block (Chapter 6) beside Llama's (Chapter 7); the parts Llama changed in orange."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    fig, ax = plt.subplots(figsize=(8.6, 5.6))
    _column(ax, 2.5, "GPT-2 (2019)", _GPT2)
    _column(ax, 8.0, "Llama / SmolLM2 (2023-2025)", _LLAMA)
    ax.legend(handles=[Patch(facecolor=SAME, edgecolor="black", label="as in GPT-2"),
                       Patch(facecolor=CHANGED, edgecolor="black", label="changed by Llama")],
              loc="lower center", bbox_to_anchor=(0.5, -0.08), ncol=2, fontsize=8, frameon=False)
    ax.set(xlim=(-0.2, 10.6), ylim=(-0.8, 9.9))
    ax.axis("off")
    fig.tight_layout()
    return fig


def _byte_strip(ax: Any, codes: Sequence[int], d: float, m: float) -> None:
    """The 20 bytes of a Q4_1 block: d and m (float16, two bytes each), then 16 bytes of two codes."""
    from matplotlib.patches import Rectangle

    cells = [("d", 2, CHANGED), ("m", 2, "#f6d186")] + [(f"{codes[j + 16]:x}|{codes[j]:x}", 1, SAME) for j in range(16)]
    x = 0.0
    for label, width, colour in cells:
        ax.add_patch(Rectangle((x, 0), width, 1, facecolor=colour, edgecolor="black", linewidth=0.6))
        ax.text(x + width / 2, 0.5, label, ha="center", va="center", fontsize=7 if width == 1 else 9)
        x += width
    ax.text(2, 1.25, f"d = {d:.5f}", ha="center", fontsize=8)
    ax.text(4, -0.35, f"m = {m:.5f}", ha="center", fontsize=8, va="top")
    ax.text(12, 1.25, "byte 4 + j: high nibble = code of weight j + 16 | low nibble = code of weight j (hex)",
            ha="center", fontsize=8)
    ax.set(xlim=(-0.2, 20.2), ylim=(-0.8, 1.6))
    ax.axis("off")


def draw_q4_1_block(weights: np.ndarray, codes: Sequence[int], d: float, m: float) -> Any:
    """One Q4_1 block: its bytes (top) and its 32 weights on the 16 levels m + k d (bottom).

    `weights` are the 32 values before quantisation, `codes` their 4-bit codes (0-15), `d` and `m`
    the block's scale and minimum as stored."""
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8.6, 4.6), gridspec_kw={"height_ratios": [1, 3]})
    _byte_strip(top, codes, d, m)
    levels = m + d * np.arange(16)
    for level in levels:
        bottom.axhline(level, color="lightgrey", lw=0.6, zorder=0)
    index = np.arange(32)
    stored = levels[np.asarray(codes)]
    bottom.vlines(index, weights, stored, color="tab:red", lw=1.0, label="error")
    bottom.plot(index, weights, "o", ms=4, color="black", label="weight before quantisation")
    bottom.plot(index, stored, "_", ms=9, mew=2, color="tab:blue", label="m + d × code (what is stored)")
    bottom.axvline(15.5, color="grey", ls=":", lw=0.8)
    bottom.set(xlabel="weight j in the block (0-15: low nibbles, 16-31: high nibbles)", ylabel="value",
               xticks=range(0, 32, 4))
    bottom.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=3, frameon=False)
    fig.tight_layout()
    return fig
