"""Diagrams of Chapters 4b, 5 and 6: the Transformer block on its residual stream (pre- and
post-LayerNorm), BERT's input embeddings, and one step of generation with a KV cache."""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from lmcourse.diagrams._draw import arrow, box, canvas, circle, legend, note, title

STREAM = "#9a9a9a"  # the residual stream: a thick grey line


def _stream(ax: Axes, x: float, y0: float, y1: float) -> None:
    """A stretch of the residual stream, drawn thick."""
    arrow(ax, (x, y0), (x, y1), colour=STREAM, width=3.0, head=False)


def _branch(ax: Axes, x: float, bx: float, y0: float, y1: float, layers: list[tuple[str, str]]) -> None:
    """A residual branch: leave the stream at y0, pass through `layers` at column bx, come back into a + at y1."""
    arrow(ax, (x, y0), (bx, y0), (bx, y0 + 0.35))
    y, previous = y0 + 0.7, None
    for text, kind in layers:
        current = box(ax, bx, y, text, kind, w=3.0, h=0.55 if "\n" not in text else 0.8)
        if previous:
            arrow(ax, previous.top, current.bottom)
        previous, y = current, y + 1.05
    arrow(ax, previous.top, (bx, y1), (x + 0.22, y1))
    circle(ax, x, y1, "+")


def _pre_ln(ax: Axes, x: float) -> None:
    """GPT-2's block: x + Attn(LN(x)), then x + MLP(LN(x)); the stream itself is never normalised."""
    _stream(ax, x, 0.9, 8.3)
    _branch(ax, x, x + 2.2, 1.2, 3.4, [("LayerNorm", "norm"), ("multi-head attention", "attn")])
    _branch(ax, x, x + 2.2, 4.3, 6.5, [("LayerNorm", "norm"), ("MLP", "mlp")])
    note(ax, x - 0.35, 3.4, "$x + \\mathrm{Attn}(\\mathrm{LN}(x))$", ha="right")
    note(ax, x - 0.35, 6.5, "$x + \\mathrm{MLP}(\\mathrm{LN}(x))$", ha="right")
    note(ax, x, 8.55, "to the next block; a final LayerNorm\nfollows the last block", va="bottom")


def _post_ln(ax: Axes, x: float) -> None:
    """The original Transformer's and BERT's block: LN(x + Attn(x)), then LN(x + MLP(x))."""
    _stream(ax, x, 0.9, 8.3)
    _branch(ax, x, x + 2.2, 1.2, 2.6, [("multi-head attention", "attn")])
    _branch(ax, x, x + 2.2, 4.6, 6.0, [("MLP", "mlp")])
    for y in (3.45, 6.85):
        box(ax, x, y, "LayerNorm", "norm", w=1.8, h=0.55)
    note(ax, x - 1.05, 3.45, "$\\mathrm{LN}(x + \\mathrm{Attn}(x))$", ha="right")
    note(ax, x - 1.05, 6.85, "$\\mathrm{LN}(x + \\mathrm{MLP}(x))$", ha="right")
    note(ax, x, 8.55, "to the next block\n(no final LayerNorm needed)", va="bottom")


def draw_transformer_block() -> Figure:
    """Chapter 4b.1 (and 5.3): one block as two branches off the residual stream, pre-LN beside post-LN."""
    fig, ax = canvas(14, 10.2)
    for x, heading, post in ((3.0, "pre-LN (GPT-2, Chapters 4b and 6)", False),
                             (9.8, "post-LN (original Transformer, BERT)", True)):
        title(ax, x + 0.6, 9.85, heading)
        note(ax, x, 0.55, "$x$: (B, T, C)")
        note(ax, x - 0.37, 1.7, "residual stream", rotation=90)
        _post_ln(ax, x) if post else _pre_ln(ax, x)
    legend(ax, ("attn", "mlp", "norm", "add"))
    return fig


BERT_TOKENS = ("[CLS]", "the", "river", "bank", "[SEP]", "it", "was", "muddy", "[SEP]")


def _embedding_row(ax: Axes, y: float, labels: list[str], name: str) -> None:
    """One row of embedding boxes, one per token, with its name on the left."""
    note(ax, 0.2, y, name, ha="left")
    for n, label in enumerate(labels):
        box(ax, 2.6 + 1.32 * n, y, label, "embed", w=1.18, h=0.55, size=8)


def draw_bert_input() -> Figure:
    """Chapter 5.3: BERT's input is token + segment + position embeddings, then LayerNorm and dropout."""
    fig, ax = canvas(14, 6.6)
    for n, token in enumerate(BERT_TOKENS):
        x = 2.6 + 1.32 * n
        box(ax, x, 6.0, token, "input", w=1.18, h=0.55, size=8)
        for y in (4.2, 3.0):
            note(ax, x, y, "+", size=11, color="black")
    note(ax, 0.2, 6.0, "tokens", ha="left")
    _embedding_row(ax, 4.8, ["$E_\\mathrm{" + t.strip("[]") + "}$" for t in BERT_TOKENS], "token")
    _embedding_row(ax, 3.6, ["$E_A$"] * 5 + ["$E_B$"] * 4, "segment")
    _embedding_row(ax, 2.4, [f"$E_{n}$" for n in range(len(BERT_TOKENS))], "position")
    steps = (("sum", "add", 1.2), ("LayerNorm", "norm", 1.8), ("dropout", "other", 1.6),
             ("encoder layers: (B, T, C)", "attn", 3.6))
    x, previous = 2.6, None
    for text, kind, width in steps:
        current = box(ax, x + width / 2, 0.7, text, kind, w=width)
        if previous:
            arrow(ax, previous.right, current.left)
        previous, x = current, x + width + 0.6
        if text == "sum":
            first = current
    columns = [2.6 + 1.32 * n for n in range(len(BERT_TOKENS))]
    for x in columns:
        arrow(ax, (x, 2.12), (x, 1.6), head=False)
    arrow(ax, (columns[0], 1.6), (columns[-1], 1.6), head=False)
    arrow(ax, (first.x, 1.6), first.top)
    legend(ax, ("embed", "add", "norm", "other", "attn"))
    return fig


def _cache_row(ax: Axes, y: float, letter: str) -> tuple[float, float]:
    """The cached keys (or values) of positions 1..t-1 and the new one of position t; returns the right of t's."""
    labels = (f"${letter}_1$", f"${letter}_2$", "$\\cdots$", f"${letter}_{{t-1}}$")
    for n, label in enumerate(labels):
        box(ax, 5.0 + 0.95 * n, y, label, "state", w=0.9, h=0.55)
    new = box(ax, 9.0, y, f"${letter}_t$", "attn", w=0.9, h=0.55, bold=True)
    note(ax, 6.45, y + (-0.5 if letter == "k" else 0.5), "cached at earlier steps: (B, H, t-1, D)")
    return new.right


def draw_kv_cache() -> Figure:
    """Chapter 6.6: one generation step with a KV cache, in one layer: the new token's query attends
    to the cached keys and values plus its own, which are appended to the cache."""
    fig, ax = canvas(14, 6.6)
    token = box(ax, 0.7, 3.2, "$w_t$", "input", w=0.9)
    x = box(ax, 2.2, 3.2, "$x_t$", "embed", w=0.9)
    proj = box(ax, 4.1, 3.2, "$W^Q, W^K, W^V$", "attn", w=1.9)
    arrow(ax, token.right, x.left)
    arrow(ax, x.right, proj.left)
    note(ax, 2.2, 2.65, "(B, 1, C)")
    k_right = _cache_row(ax, 5.0, "k")
    v_right = _cache_row(ax, 1.4, "v")
    arrow(ax, proj.top, (4.1, 5.85), (9.0, 5.85), (9.0, 5.28))
    arrow(ax, proj.bottom, (4.1, 0.55), (9.0, 0.55), (9.0, 1.12))
    note(ax, 6.6, 6.1, "$k_t$ is appended to the cache")
    note(ax, 6.6, 0.3, "$v_t$ is appended to the cache")
    q = box(ax, 6.8, 3.2, "$q_t$", "attn", w=0.9)
    arrow(ax, proj.right, q.left)
    scores = box(ax, 11.6, 3.9, "softmax$(q_t K^\\top / \\sqrt{D})$", "attn", w=3.4)
    mix = box(ax, 10.9, 2.3, "weights $\\cdot\\ V$", "attn", w=2.2)
    out = box(ax, 13.1, 2.3, "$o_t$", "out", w=0.9)
    arrow(ax, q.right, (8.0, 3.2), (8.0, 3.9), scores.left)
    arrow(ax, k_right, (11.6, k_right[1]), scores.top)
    arrow(ax, v_right, (10.9, v_right[1]), mix.bottom)
    arrow(ax, (10.9, scores.bottom[1]), mix.top)
    arrow(ax, mix.right, out.left)
    note(ax, 9.7, 5.25, "all $t$ keys: (B, H, t, D)", ha="left")
    note(ax, 9.7, 1.15, "all $t$ values: (B, H, t, D)", ha="left")
    note(ax, 11.05, 3.05, "weights: (B, H, 1, t)", ha="left")
    note(ax, 13.1, 1.75, "(B, H, 1, D)")
    legend(ax, ("input", "embed", "attn", "state", "out"))
    return fig
