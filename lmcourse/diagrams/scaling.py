"""Diagrams of Chapter 10: data parallelism as PyTorch's ``DistributedDataParallel`` does it on $W = 2$
ranks, as in the chapter's ``torchrun --nproc_per_node 2`` run. Each rank holds a full copy of the
model, computes the gradient of its own shard of $B$ sequences, and the all-reduce replaces every
rank's gradient by the average $\\bar g$, so that every copy takes the same AdamW step."""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from lmcourse.diagrams._draw import Box, arrow, box, canvas, legend, note, relabel, title

__all__ = ["draw_data_parallel"]


def _rank(ax: Axes, x: float, rank: int) -> tuple[Box, Box, Box]:
    """One rank's column, top to bottom: its shard, its model copy, forward + backward, its gradient.
    Returns the shard, the gradient and the AdamW step, for the arrows between the columns."""
    note(ax, x, 7.1, f"rank {rank}", size=9, color="black", weight="bold")
    shard = box(ax, x, 6.2, f"shard {rank} ($B$ sequences)", "input", w=3.2, h=0.55)
    model = box(ax, x, 5.2, "model copy", "mlp", w=2.6, h=0.55)
    work = box(ax, x, 4.25, "forward + backward", "other", w=3.0, h=0.55)
    grad = box(ax, x, 3.3, f"gradient $g_{rank}$", "state", w=2.6, h=0.55)
    step = box(ax, x, 1.5, "AdamW step with $\\bar g$", "other", w=2.8, h=0.55)
    arrow(ax, shard.bottom, model.top)
    arrow(ax, model.bottom, work.top)
    arrow(ax, work.bottom, grad.top)
    return shard, grad, step


def draw_data_parallel() -> Figure:
    """Chapter 10.4: one step of data parallelism on 2 ranks. The global batch is split into one shard
    per rank; each rank's copy of the model computes the gradient of its shard; the all-reduce averages
    the gradients and hands the average back to every rank, which takes the same AdamW step."""
    fig, ax = canvas(14, 8.15)
    title(ax, 7, 7.85, "Data parallelism: one training step on $W = 2$ ranks")
    batch = box(ax, 7, 7.1, "global batch: $W \\times B$ sequences", "input", w=4.6, h=0.55)
    (shard0, grad0, step0), (shard1, grad1, step1) = _rank(ax, 2.8, 0), _rank(ax, 11.2, 1)
    arrow(ax, batch.bottom, (7, 6.2), shard0.right)
    arrow(ax, (7, 6.2), shard1.left)
    note(ax, 7, 5.2, "same weights on every rank")
    note(ax, 7, 4.25, "each rank on its own shard")
    reduce = box(ax, 7, 2.4, "all-reduce: $\\bar g = (g_0 + g_1) / 2$", "add", w=5.0, h=0.6)
    arrow(ax, grad0.right, (5.2, 3.3), (5.2, reduce.top[1]))
    arrow(ax, grad1.left, (8.8, 3.3), (8.8, reduce.top[1]))
    arrow(ax, reduce.left, (step0.x, 2.4), step0.top)
    arrow(ax, reduce.right, (step1.x, 2.4), step1.top)
    note(ax, 3.0, 2.6, "$\\bar g$", ha="left")
    note(ax, 11.0, 2.6, "$\\bar g$", ha="right")
    note(ax, 7, 1.6, "ring all-reduce: each rank\nsends $2(W-1)/W$ of a gradient")
    note(ax, 7, 0.55, "every rank takes the same step: the step one process would take on the whole batch",
         size=8.5, color="black")
    legend(ax, ["input", "mlp", "other", "state", "add"])
    relabel(ax, ["batch and shards", "model copies", "computation", "gradients", "averaging"])
    return fig
