"""Diagrams of Chapter 4a: the seq2seq bottleneck against attention, scaled dot-product attention,
and multi-head attention, with the shapes of ``lmcourse.attention`` (B, H, L, S, T, C, D)."""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from lmcourse.diagrams._draw import Box, arrow, box, canvas, legend, note, title

ENCODER = ("$h_1$", "$h_2$", "$h_3$", "$h_4$", "$h_S$")
ALPHA = (0.05, 0.1, 0.6, 0.2, 0.05)  # illustrative weights of decoder step 2


def _encoder(ax: Axes, x0: float) -> list[Box]:
    """The encoder's states in a row, each reading its input token."""
    states = []
    for j, label in enumerate(ENCODER):
        x = x0 + 1.1 * j
        token = box(ax, x, 0.3, f"$x_{{{label[3]}}}$", "input", w=0.8, h=0.5)
        states.append(box(ax, x, 1.4, label, "state", w=0.8, h=0.5))
        arrow(ax, token.top, states[-1].bottom)
    for a, b in zip(states, states[1:]):
        arrow(ax, a.right, b.left)
    note(ax, x0 - 0.75, 1.4, "encoder", rotation=90)
    return states


def _decoder(ax: Axes, x0: float) -> list[Box]:
    """The decoder's states in a row, each writing one output token."""
    states = []
    for i in range(4):
        x = x0 + 1.5 * i
        states.append(box(ax, x, 5.0, f"$s_{i + 1}$", "state", w=0.8, h=0.5))
        out = box(ax, x, 6.1, f"$y_{i + 1}$", "out", w=0.8, h=0.5)
        arrow(ax, states[-1].top, out.bottom)
    for a, b in zip(states, states[1:]):
        arrow(ax, a.right, b.left)
    note(ax, x0 - 0.75, 5.0, "decoder", rotation=90)
    return states


def draw_seq2seq_attention() -> Figure:
    """Chapter 4a.1-4a.2: without attention every decoder step reads one vector c; with it, step i
    reads its own weighted average c_i of all encoder states."""
    fig, ax = canvas(14.2, 7.4)
    title(ax, 3.7, 7.0, "without attention")
    enc = _encoder(ax, 1.4)
    dec = _decoder(ax, 1.4)
    c = box(ax, 3.6, 3.2, "$c$", "state", w=0.8, h=0.5)
    arrow(ax, enc[-1].top, (enc[-1].x, 3.2), c.right)
    for s in dec:
        arrow(ax, c.top, s.bottom, colour="#8a8a8a")
    note(ax, 3.4, 2.6, "one vector for the whole input", ha="center")
    title(ax, 10.8, 7.0, "with attention (step 2)")
    enc = _encoder(ax, 8.6)
    dec = _decoder(ax, 8.6)
    c2 = box(ax, 10.1, 3.4, "$c_2 = \\Sigma_j\\, \\alpha_{2j} h_j$", "attn", w=2.4, h=0.55)
    for h, weight in zip(enc, ALPHA):
        arrow(ax, h.top, c2.bottom, width=0.6 + 6 * weight, head=False)
    arrow(ax, dec[0].bottom, (8.6, 3.4), c2.left)
    note(ax, 8.7, 4.1, "query $s_1$", ha="left")
    arrow(ax, c2.top, dec[1].bottom)
    note(ax, 12.8, 2.4, "line width: $\\alpha_{2j}$", ha="center")
    legend(ax, ("input", "state", "attn", "out"))
    return fig


def draw_scaled_dot_product() -> Figure:
    """Chapter 4a.3: softmax(QK^T / sqrt(d_k)) V with the mask of Section 4a.5, step by step."""
    fig, ax = canvas(12.4, 8.0)
    q = box(ax, 2.0, 0.8, "$Q$", "input", w=1.4)
    k = box(ax, 4.4, 0.8, "$K$", "input", w=1.4)
    v = box(ax, 10.8, 0.8, "$V$", "input", w=1.4)
    note(ax, 2.0, 0.25, "(B, H, L, D)")
    note(ax, 4.4, 0.25, "(B, H, S, D)")
    note(ax, 10.8, 0.25, "(B, H, S, D)")
    steps = (("scores $QK^\\top$", "(B, H, L, S)"), ("scale by $1/\\sqrt{d_k}$", "(B, H, L, S)"),
             ("mask: $-\\infty$ where reading is not allowed", "(causal, padding)"),
             ("softmax over the keys (each row sums to 1)", "weights (B, H, L, S)"))
    previous = None
    for n, (text, shape) in enumerate(steps):
        step = box(ax, 3.4, 2.0 + 1.1 * n, text, "attn", w=6.4)
        note(ax, 6.8, 2.0 + 1.1 * n, shape, ha="left")
        if previous:
            arrow(ax, previous.top, step.bottom)
        previous = step
    arrow(ax, q.top, (2.0, 1.7))
    arrow(ax, k.top, (4.4, 1.7))
    mix = box(ax, 7.4, 6.5, "weighted sum of values: weights $\\cdot\\ V$", "attn", w=7.6)
    arrow(ax, previous.top, (3.4, 6.5), mix.left)
    arrow(ax, v.top, (10.8, mix.bottom[1]))
    out = box(ax, 7.4, 7.6, "output", "out", w=1.8)
    note(ax, 8.5, 7.6, "(B, H, L, D)", ha="left")
    arrow(ax, mix.top, out.bottom)
    legend(ax, ("input", "attn", "out"))
    return fig


def _heads(ax: Axes, x: float, y: float) -> Box:
    """H attention boxes drawn as a stack, the front one labelled."""
    for n in (2, 1):
        box(ax, x + 0.18 * n, y + 0.18 * n, "", "attn", w=6.4, h=0.7)
    front = box(ax, x, y, "scaled dot-product attention, in each head", "attn", w=6.4, h=0.7)
    note(ax, x + 3.65, y + 0.36, "H heads", ha="left")
    return front


def draw_multi_head() -> Figure:
    """Chapter 4a.6: project once, split into H heads of width D = C / H, attend, merge, project."""
    fig, ax = canvas(12.4, 8.0)
    rows = (("$X$", "input", "(B, T, C)", 1.8), ("one linear layer: $W^Q, W^K, W^V$ packed, $C \\to 3C$", "attn",
                                                  "(B, T, 3C)", 6.4),
            ("split into heads: $Q, K, V$", "attn", "3 × (B, T, C) → (B, H, T, D)", 6.4))
    previous = None
    for n, (text, kind, shape, width) in enumerate(rows):
        step = box(ax, 4.0, 0.4 + 1.2 * n, text, kind, w=width)
        note(ax, 7.4, 0.4 + 1.2 * n, shape, ha="left")
        if previous:
            arrow(ax, previous.top, step.bottom)
        previous = step
    heads = _heads(ax, 4.0, 4.0)
    arrow(ax, previous.top, heads.bottom)
    note(ax, 7.6, 3.3, "(B, H, T, D)", ha="left")
    merge = box(ax, 4.0, 5.4, "concatenate the heads", "attn", w=6.4)
    note(ax, 7.4, 5.4, "(B, H, T, D) → (B, T, C)", ha="left")
    project = box(ax, 4.0, 6.5, "output projection $W^O$, $C \\to C$", "attn", w=6.4)
    out = box(ax, 4.0, 7.6, "output", "out", w=1.8)
    note(ax, 7.4, 6.5, "(B, T, C)", ha="left")
    arrow(ax, heads.top, merge.bottom)
    arrow(ax, merge.top, project.bottom)
    arrow(ax, project.top, out.bottom)
    legend(ax, ("input", "attn", "out"))
    return fig
