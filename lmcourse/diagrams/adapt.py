"""Diagrams of Chapter 8: a LoRA-adapted linear layer, and one DPO training step."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.patches import Polygon

from lmcourse.diagrams._draw import EDGE, PALETTE, arrow, box, canvas, circle, legend, note, title

__all__ = ["draw_lora", "draw_dpo"]


def draw_lora() -> Figure:
    """A linear layer with LoRA: the frozen W beside the trainable bottleneck B A, scaled and summed."""
    fig, ax = canvas(14, 6.9)
    title(ax, 7, 6.6, "A linear layer with LoRA")
    x_in = box(ax, 7, 0.55, "$x$   ($d_{in}$)", "input", w=2.2)
    frozen = box(ax, 3.9, 2.9, "$W$  ($d_{out} \\times d_{in}$)\nfrozen", "other", w=3.2, h=1.5)
    note(ax, 3.75, 1.85, "pretrained, not updated", ha="right")
    note(ax, 3.7, 4.3, "$d_{in} d_{out}$ weights", ha="right")
    # the bottleneck: A narrows d_in to r, B widens r back to d_out
    cx = 9.3
    ax.add_patch(Polygon([(cx - 1.4, 1.75), (cx + 1.4, 1.75), (cx + 0.5, 2.45), (cx - 0.5, 2.45)], closed=True,
                         facecolor=PALETTE["mlp"][0], edgecolor=EDGE, linewidth=0.8, zorder=2))
    ax.text(cx, 2.05, "$A$  ($r \\times d_{in}$)", ha="center", va="center", fontsize=9, zorder=3)
    ax.add_patch(Polygon([(cx - 0.5, 3.35), (cx + 0.5, 3.35), (cx + 1.4, 4.05), (cx - 1.4, 4.05)], closed=True,
                         facecolor=PALETTE["mlp"][0], edgecolor=EDGE, linewidth=0.8, zorder=2))
    ax.text(cx, 3.75, "$B$  ($d_{out} \\times r$)", ha="center", va="center", fontsize=9, zorder=3)
    arrow(ax, (cx, 2.45), (cx, 3.35))
    note(ax, cx + 0.2, 2.9, "width $r$", ha="left")
    note(ax, cx + 1.6, 2.05, "random at the start", ha="left")
    note(ax, cx + 1.6, 3.75, "zeros at the start", ha="left")
    scale = box(ax, cx, 4.75, "$\\times\\ \\alpha / r$", "add", w=1.4, h=0.5)
    note(ax, cx + 1.6, 4.75, "trains $r(d_{in} + d_{out})$", ha="left")
    arrow(ax, (cx, 4.05), scale.bottom)
    total = circle(ax, 7, 5.45, "+")
    arrow(ax, x_in.top, (7, 1.15), (3.9, 1.15), frozen.bottom)
    arrow(ax, (7, 1.15), (cx, 1.15), (cx, 1.75))
    arrow(ax, frozen.top, (3.9, 5.45), total.left)
    arrow(ax, scale.top, (cx, 5.45), total.right)
    arrow(ax, total.top, (7, 6.05))
    note(ax, 7.25, 6.1, "$h = W x + \\frac{\\alpha}{r} B A x$", size=10, ha="left")
    legend(ax, ["input", "other", "mlp", "add"])
    ax.get_legend().texts[1].set_text("frozen weights")
    ax.get_legend().texts[2].set_text("trainable adapter")
    return fig


def draw_dpo() -> Figure:
    """One DPO step: the policy and the frozen reference score the chosen and the rejected reply; the
    margin of the implicit rewards goes into -log sigmoid."""
    fig, ax = canvas(14, 6.2)
    title(ax, 7, 5.9, "One step of direct preference optimisation")
    prompt = box(ax, 7, 0.45, "prompt $x$, chosen reply $y_w$, rejected reply $y_l$", "input", w=7.2)
    scores = {}
    for x, model, reply in ((2.0, "\\theta", "y_w"), (5.0, "ref", "y_w"), (9.0, "\\theta", "y_l"), (12.0, "ref", "y_l")):
        kind = "mlp" if model == "\\theta" else "other"
        scores[(model, reply)] = box(ax, x, 2.2, f"$\\log \\pi_{{{model}}}({reply} \\mid x)$", kind, w=2.6, h=0.6)
        arrow(ax, (min(max(x, 3.6), 10.4), prompt.y + prompt.h / 2), (min(max(x, 3.6), 10.4), 1.3), (x, 1.3),
              (x, 2.2 - 0.3))
    reward_w = box(ax, 3.5, 3.75, "$r_w = \\beta\\,[\\log \\pi_\\theta(y_w \\mid x) - \\log \\pi_{ref}(y_w \\mid x)]$",
                   "add", w=5.6, h=0.6)
    reward_l = box(ax, 10.5, 3.75, "$r_l = \\beta\\,[\\log \\pi_\\theta(y_l \\mid x) - \\log \\pi_{ref}(y_l \\mid x)]$",
                   "add", w=5.6, h=0.6)
    for (model, reply), source in scores.items():
        target = reward_w if reply == "y_w" else reward_l
        end_x = target.x + (source.x - target.x) * 0.5
        arrow(ax, source.top, (source.x, 3.15), (end_x, 3.15), (end_x, target.y - target.h / 2))
    loss = box(ax, 7, 5.0, "loss $= -\\log \\sigma(r_w - r_l)$", "out", w=4.2, h=0.6)
    arrow(ax, reward_w.top, (3.5, 5.0), loss.left)
    arrow(ax, reward_l.top, (10.5, 5.0), loss.right)
    note(ax, 7, 4.35, "margin $r_w - r_l$: 0 at the start, where the loss is $\\log 2$")
    legend(ax, ["input", "mlp", "other", "add", "out"])
    texts = ax.get_legend().texts
    for k, label in enumerate(["replies", "policy (trainable)", "reference (frozen)", "implicit rewards", "loss"]):
        texts[k].set_text(label)
    return fig
