"""Diagrams of Chapter 8: a linear layer adapted with LoRA (Hu et al. 2021), and one training step of
direct preference optimisation (Rafailov et al. 2023). Symbols follow the chapter: $d_\\text{in}$,
$d_\\text{out}$, rank $r$, scale $\\alpha / r$; policy $\\pi_\\theta$, reference $\\pi_\\text{ref}$, chosen
reply $y_w$, rejected reply $y_l$."""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Arc, Polygon, Rectangle

from lmcourse.diagrams._draw import (EDGE, FONT, NOTE, PALETTE, SMALL, Box, arrow, box, canvas, circle, legend, note,
                                    relabel, title)

__all__ = ["draw_lora", "draw_dpo"]


def _lock(ax: Axes, x: float, y: float) -> None:
    """A small padlock centred at (x, y): frozen, not updated by training."""
    ax.add_patch(Arc((x, y + 0.07), 0.17, 0.26, theta1=0, theta2=180, color=EDGE, linewidth=1.1, zorder=3))
    ax.plot([x - 0.085, x - 0.085], [y - 0.02, y + 0.07], [x + 0.085, x + 0.085], [y - 0.02, y + 0.07],
            color=EDGE, linewidth=1.1, zorder=3, solid_capstyle="butt")
    ax.add_patch(Rectangle((x - 0.14, y - 0.17), 0.28, 0.19, facecolor=EDGE, edgecolor=EDGE, linewidth=0.8,
                           zorder=3))


def _trapezoid(ax: Axes, x: float, y0: float, y1: float, w0: float, w1: float, text: str) -> None:
    """A trainable matrix drawn as a trapezoid, `w0` wide at y0 and `w1` wide at y1: it changes the width."""
    ax.add_patch(Polygon([(x - w0 / 2, y0), (x + w0 / 2, y0), (x + w1 / 2, y1), (x - w1 / 2, y1)], closed=True,
                         facecolor=PALETTE["mlp"][0], edgecolor=EDGE, linewidth=0.8, zorder=2))
    ax.text(x, (y0 + y1) / 2, text, ha="center", va="center", fontsize=FONT, zorder=3)


def draw_lora() -> Figure:
    """Chapter 8.3: a linear layer with LoRA. The frozen W and, beside it, the trainable bottleneck A
    (d_in to r) then B (r to d_out), scaled by alpha / r; the two paths are added."""
    fig, ax = canvas(14, 7.2)
    title(ax, 7, 6.85, "A linear layer with LoRA")
    wx, cx, mid = 3.6, 8.8, 6.2  # the frozen path, the adapter's path, the input and the sum
    x_in = box(ax, mid, 0.5, "$x$   ($d_\\mathrm{in}$)", "input", w=2.2, h=0.55)
    frozen = box(ax, wx, 3.1, "$W$   ($d_\\mathrm{out} \\times d_\\mathrm{in}$)\npretrained", "other", w=3.4, h=1.7)
    _lock(ax, wx + 1.4, 3.62)
    note(ax, wx - 0.15, 1.7, "$d_\\mathrm{in}\\, d_\\mathrm{out}$ weights, frozen", ha="right")
    # the bottleneck: A narrows d_in to r numbers, B widens them back to d_out
    _trapezoid(ax, cx, 1.95, 2.65, 2.8, 1.0, "$A$  ($r \\times d_\\mathrm{in}$)")
    _trapezoid(ax, cx, 3.55, 4.25, 1.0, 2.8, "$B$  ($d_\\mathrm{out} \\times r$)")
    arrow(ax, (cx, 2.65), (cx, 3.55))
    note(ax, cx + 0.15, 3.1, "$r$ numbers", ha="left")
    note(ax, cx + 1.6, 2.3, "random at the start", ha="left")
    note(ax, cx + 1.6, 3.9, "zeros at the start", ha="left")
    note(ax, cx + 0.15, 1.55, "$r\\,(d_\\mathrm{in} + d_\\mathrm{out})$ weights, trained", ha="left")
    scale = box(ax, cx, 4.95, "$\\times\\ \\alpha / r$", "add", w=1.4, h=0.5)
    arrow(ax, (cx, 4.25), scale.bottom)
    total = circle(ax, mid, 5.65, "+")
    arrow(ax, x_in.top, (mid, 1.15), (wx, 1.15), frozen.bottom)
    arrow(ax, (mid, 1.15), (cx, 1.15), (cx, 1.95))
    arrow(ax, frozen.top, (wx, 5.65), total.left)
    arrow(ax, scale.top, (cx, 5.65), total.right)
    arrow(ax, total.top, (mid, 6.3))
    note(ax, mid + 0.25, 6.3, "$h = W x + \\frac{\\alpha}{r} B A x$", size=FONT + 1, color="black", ha="left")
    note(ax, 13.8, 0.5, "after training, merge: $W \\leftarrow W + \\frac{\\alpha}{r} B A$", ha="right")
    legend(ax, ["input", "other", "mlp", "add"])
    relabel(ax, ["input", "frozen weights", "trainable adapter", "scale and sum"])
    return fig


def _scores(ax: Axes, x: float, y: float, model: str, reply: str) -> Box:
    """A log-probability box: the model's log pi(reply | x), with whether it trains in small type under it."""
    policy = model == "\\theta"
    drawn = box(ax, x, y, "", "mlp" if policy else "other", w=3.0, h=0.85)
    ax.text(x, y + 0.15, f"$\\log \\pi_{{{model}}}({reply} \\mid x)$", ha="center", va="center", fontsize=FONT,
            zorder=3)
    ax.text(x, y - 0.22, "trainable: base + LoRA" if policy else "frozen, computed once", ha="center",
            va="center", fontsize=SMALL - 0.5, color=NOTE, zorder=3)
    return drawn


def draw_dpo() -> Figure:
    """Chapter 8.5: one DPO step. The policy and the frozen reference score the chosen and the rejected
    reply; beta times their differences are the implicit rewards, whose margin goes into -log sigmoid."""
    fig, ax = canvas(14, 7.1)
    title(ax, 7, 6.8, "One step of direct preference optimisation")
    note(ax, 7, 6.35, "no reward model and no sampling: two given replies, scored by two models")
    prompt = box(ax, 7, 0.45, "prompt $x$, chosen reply $y_w$, rejected reply $y_l$", "input", w=7.2)
    ref = "\\mathrm{ref}"
    scores = {(model, reply): _scores(ax, x, 2.25, model, reply)
              for x, model, reply in ((1.8, "\\theta", "y_w"), (5.1, ref, "y_w"), (8.9, "\\theta", "y_l"),
                                      (12.2, ref, "y_l"))}
    for drawn in scores.values():  # from the prompt box's top edge, up to each box
        start = min(max(drawn.x, prompt.x - 3.2), prompt.x + 3.2)
        arrow(ax, (start, prompt.top[1]), (start, 1.3), (drawn.x, 1.3), drawn.bottom)
    rewards = {}
    for reply, x in (("w", 3.45), ("l", 10.55)):
        rewards[reply] = box(ax, x, 3.75, f"$r_{reply} = \\beta\\,[\\log \\pi_\\theta(y_{reply} \\mid x) - "
                                          f"\\log \\pi_{{{ref}}}(y_{reply} \\mid x)]$", "add", w=5.6, h=0.6)
    for (model, reply), source in scores.items():
        target = rewards[reply[-1]]
        end = target.x + (source.x - target.x) / 2
        arrow(ax, source.top, (source.x, 3.1), (end, 3.1), (end, target.bottom[1]))
    margin = circle(ax, 7, 4.6, "−")
    arrow(ax, rewards["w"].top, (rewards["w"].x, 4.6), margin.left)
    arrow(ax, rewards["l"].top, (rewards["l"].x, 4.6), margin.right)
    note(ax, 6.55, 4.85, "$r_w$", ha="right")
    note(ax, 7.45, 4.85, "$r_l$", ha="left")
    loss = box(ax, 7, 5.6, "loss $= -\\log \\sigma(r_w - r_l)$", "out", w=4.2, h=0.55)
    arrow(ax, margin.top, loss.bottom)
    note(ax, 9.3, 5.6, "margin $r_w - r_l$ is 0 at the start:\nthe loss starts at $\\log 2$", ha="left")
    legend(ax, ["input", "mlp", "other", "add", "out"])
    relabel(ax, ["prompt and replies", "policy (trainable)", "reference (frozen)", "implicit rewards", "loss"])
    return fig
