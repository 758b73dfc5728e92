"""Diagrams of Chapters 3a and 3b: Bengio's feed-forward language model, skip-gram with negative
sampling, an unrolled Elman RNN and one LSTM cell."""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from lmcourse.diagrams._draw import FONT, arrow, box, canvas, circle, legend, note, title


def draw_bengio_ffnn() -> Figure:
    """Chapter 3a.3: the feed-forward LM of Bengio et al. (2003) with n - 1 = 3 words of context."""
    fig, ax = canvas(13, 8.2)
    cols = (2.6, 5.6, 8.6)
    for x, word in zip(cols, ("t-3", "t-2", "t-1")):
        token = box(ax, x, 0.5, f"$w_{{{word}}}$", "input", w=1.4)
        emb = box(ax, x, 1.9, f"$C(w_{{{word}}})$", "embed", w=1.8)
        arrow(ax, token.top, emb.bottom)
        arrow(ax, emb.top, (x, 3.0))
    note(ax, 10.4, 1.9, "one shared table $C$\n($|\\mathcal{V}| \\times m$)", ha="left")
    x_box = box(ax, 5.6, 3.3, "$x = [C(w_{t-3}); C(w_{t-2}); C(w_{t-1})]$", "embed", w=7.8)
    note(ax, 9.7, 3.3, "$(n-1)m$", ha="left")
    hidden = box(ax, 5.6, 4.8, "$\\tanh(d + Hx)$", "mlp", w=3.0)
    note(ax, 7.3, 4.8, "$h$ hidden units", ha="left")
    scores = box(ax, 5.6, 6.2, "$y = b + U\\,\\tanh(d + Hx) + Wx$", "out", w=5.0)
    probs = box(ax, 5.6, 7.5, "$P(w_t \\mid w_{t-3}, w_{t-2}, w_{t-1}) = \\mathrm{softmax}(y)$", "out", w=6.6)
    arrow(ax, x_box.top, hidden.bottom)
    arrow(ax, hidden.top, scores.bottom)
    arrow(ax, scores.top, probs.bottom)
    arrow(ax, (9.5, 3.6), (10.6, 3.6), (10.6, 6.2), scores.right, style="--")
    note(ax, 10.75, 4.9, "direct\nconnections $W$\n(optional)", ha="left")
    legend(ax, ("input", "embed", "mlp", "out"))
    return fig


def draw_skipgram() -> Figure:
    """Chapter 3a.2: one (centre, context) pair of skip-gram with K = 2 noise words."""
    fig, ax = canvas(13.6, 7.0)
    centre = box(ax, 1.4, 1.2, "cat", "input", w=1.4)
    v = box(ax, 7.5, 1.2, "$v_\\mathrm{cat}$", "embed", w=1.6)
    arrow(ax, centre.right, v.left)
    note(ax, 4.4, 1.45, "centre word's input vector")
    words = (("sat", "context word (in the window)", "1"), ("of", "noise word from $P_n$", "0"),
             ("river", "noise word from $P_n$", "0"))
    for x, (word, role, target) in zip((4.0, 7.5, 11.0), words):
        token = box(ax, x, 6.1, word, "input", w=1.4)
        note(ax, x, 6.7, role)
        u = box(ax, x, 4.7, f"$u_\\mathrm{{{word}}}$", "embed", w=1.6)
        score = box(ax, x, 3.0, f"$\\sigma(u_\\mathrm{{{word}}}^\\top v_\\mathrm{{cat}})$", "out", w=2.6)
        note(ax, x + 1.4, 3.0, f"→ {target}", size=9, ha="left")
        arrow(ax, token.bottom, u.top)
        arrow(ax, u.bottom, score.top)
        arrow(ax, v.top, score.bottom)
    note(ax, 0.2, 6.1, "words", ha="left")
    note(ax, 0.2, 4.7, "output vectors", ha="left")
    note(ax, 0.2, 3.0, "push towards", ha="left")
    note(ax, 6.8, 0.2, "loss $= -\\log \\sigma(u_o^\\top v_c) - \\sum_{j=1}^{K} \\log \\sigma(-u_{k_j}^\\top v_c)$"
                       "  with $o$ = sat, $k_1$ = of, $k_2$ = river", size=9)
    legend(ax, ("input", "embed", "out"))
    return fig


def draw_rnn_unrolled() -> Figure:
    """Chapter 3b.1: an Elman RNN unrolled over four steps; the same weights at every step."""
    fig, ax = canvas(13.4, 6.2)
    h0 = box(ax, 0.8, 2.9, "$h_0$", "state", w=1.0)
    previous = h0
    for t, x in enumerate((3.0, 5.9, 8.8, 11.7), start=1):
        token = box(ax, x, 0.4, f"$w_{t}$", "input", w=1.2)
        emb = box(ax, x, 1.6, f"$x_{t}$", "embed", w=1.2)
        state = box(ax, x, 2.9, f"$h_{t}$", "state", w=1.2)
        out = box(ax, x, 4.3, f"$P(w_{t + 1} \\mid w_{{\\leq {t}}})$", "out", w=2.3)
        arrow(ax, token.top, emb.bottom)
        arrow(ax, emb.top, state.bottom)
        arrow(ax, state.top, out.bottom)
        arrow(ax, previous.right, state.left)
        note(ax, (previous.right[0] + state.left[0]) / 2, 3.15, "$W_{hh}$")
        note(ax, x + 0.45, 2.25, "$W_{ih}$", ha="left")
        note(ax, x + 0.45, 3.6, "$W_\\mathrm{out}$", ha="left")
        previous = state
    note(ax, 6.7, 5.6, "$h_t = \\tanh(W_{ih}\\,x_t + b_{ih} + W_{hh}\\,h_{t-1} + b_{hh})$, "
                       "the same weights at every step", size=9)
    legend(ax, ("input", "embed", "state", "out"))
    return fig


def _lstm_gates(ax: Axes, bus_y: float) -> tuple[dict[str, tuple[float, float]], tuple[float, float]]:
    """The four gate layers above the [h_{t-1}; x_t] bus; returns the top of each, and the right of the last."""
    tops, right = {}, (0.0, 0.0)
    for name, x, fn, label in (("f", 3.2, "$\\sigma$", "forget $f_t$"), ("i", 5.0, "$\\sigma$", "input $i_t$"),
                               ("g", 6.6, "tanh", "candidate $g_t$"), ("o", 8.6, "$\\sigma$", "output $o_t$")):
        gate = box(ax, x, 2.3, fn, "mlp", w=1.1)
        arrow(ax, (x, bus_y), gate.bottom)
        note(ax, x, 1.65, label)
        tops[name], right = gate.top, gate.right
    return tops, right


def draw_lstm_cell() -> Figure:
    """Chapter 3b.3: one LSTM step; the cell state runs along the top, changed only by × and +."""
    fig, ax = canvas(13.6, 6.6)
    cell_y, bus_y = 5.2, 1.0
    note(ax, 0.55, cell_y, "$c_{t-1}$", size=FONT + 1)
    note(ax, 0.55, bus_y, "$h_{t-1}$", size=FONT + 1)
    note(ax, 2.0, -0.45, "$x_t$", size=FONT + 1)
    arrow(ax, (2.0, -0.25), (2.0, bus_y), head=False)
    arrow(ax, (1.0, bus_y), (8.6, bus_y), head=False)
    note(ax, 4.1, 0.75, "$[h_{t-1};\\, x_t]$")
    tops, o_right = _lstm_gates(ax, bus_y)
    forget = circle(ax, 3.2, cell_y, "×")
    write = circle(ax, 5.8, cell_y, "+")
    product = circle(ax, 5.8, 3.6, "×")
    out = circle(ax, 10.3, 2.3, "×")
    squash = box(ax, 10.3, 3.8, "tanh", "add", w=1.0, h=0.5)
    arrow(ax, (0.95, cell_y), forget.left, colour="#222222", width=1.6)
    arrow(ax, forget.right, write.left, colour="#222222", width=1.6)
    arrow(ax, write.right, (12.4, cell_y), colour="#222222", width=1.6)
    note(ax, 12.85, cell_y, "$c_t$", size=FONT + 1)
    arrow(ax, tops["f"], forget.bottom)
    arrow(ax, tops["i"], (5.0, 3.6), product.left)
    arrow(ax, tops["g"], (6.6, 3.6), product.right)
    arrow(ax, product.top, write.bottom)
    arrow(ax, (10.3, cell_y), squash.top)
    arrow(ax, squash.bottom, out.top)
    arrow(ax, o_right, out.left)
    arrow(ax, out.bottom, (10.3, bus_y), (12.4, bus_y))
    note(ax, 12.85, bus_y, "$h_t$", size=FONT + 1)
    note(ax, 1.0, 6.25, "$c_t = f_t \\odot c_{t-1} + i_t \\odot g_t$", size=9, ha="left")
    note(ax, 7.6, 6.25, "$h_t = o_t \\odot \\tanh(c_t)$", size=9, ha="left")
    note(ax, 11.0, 3.3, "each gate: an\naffine map of $x_t$\nand $h_{t-1}$, then\n$\\sigma$ (tanh for $g_t$)",
         ha="left", va="top")
    title(ax, 4.5, 5.75, "cell state")
    legend(ax, ("mlp", "add"))
    return fig
