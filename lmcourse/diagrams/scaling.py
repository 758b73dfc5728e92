"""Diagrams of Chapter 10: data parallelism as PyTorch's ``DistributedDataParallel`` does it on $W = 2$
ranks, as in the chapter's ``torchrun --nproc_per_node 2`` run (each rank holds a full copy of the
model, computes the gradient of its own shard of $B$ sequences, and the all-reduce replaces every
rank's gradient by the average $\\bar g$, so that every copy takes the same AdamW step), the ring
all-reduce underneath it, step by step on three ranks, the bit layouts of the three float formats,
what each ZeRO stage keeps on every device, and the loss of knowledge distillation."""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from lmcourse.diagrams._draw import Box, arrow, box, canvas, legend, note, relabel, title

__all__ = ["draw_data_parallel", "draw_ring_all_reduce", "draw_float_formats", "draw_zero_sharding",
           "draw_distillation"]


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


def _ring_states(n: int) -> list[tuple[str, list[list[set[int]]], set[tuple[int, int]]]]:
    """The ring all-reduce of :func:`lmcourse.distributed.ring_all_reduce` on `n` ranks, as sets: after
    each step, which ranks' contributions every rank's chunk c holds; and which (rank, chunk) pairs
    the next step sends."""
    state = [[{i} for _ in range(n)] for i in range(n)]  # state[i][c]: contributors of rank i's chunk c
    steps = [("reduce-scatter", lambda i, s: (i - s) % n), ("all-gather", lambda i, s: (i + 1 - s) % n)]
    frames = []
    label = "start"
    for phase, chunk in steps:
        for s in range(n - 1):
            frames.append((label, [[set(c) for c in row] for row in state], {(i, chunk(i, s)) for i in range(n)}))
            messages = [(i, chunk(i, s), set(state[i][chunk(i, s)])) for i in range(n)]
            for i, c, message in messages:
                target = state[(i + 1) % n][c]
                if phase == "reduce-scatter":
                    target |= message
                else:
                    target.clear()
                    target |= message
            label = f"after {phase}\nstep {s + 1}"
    frames.append((label, [[set(c) for c in row] for row in state], set()))
    return frames


def draw_ring_all_reduce() -> Figure:
    """Chapter 10.4: the ring all-reduce on $W = 3$ ranks, each tensor cut into chunks A, B, C. Each
    panel shows what every rank's chunks hold (the ranks whose numbers are summed in them); a bold
    chunk is the one its rank sends to the next rank (rank 2 sends to rank 0) in the following step.
    Reduce-scatter adds what arrives, all-gather overwrites with it."""
    n, names = 3, "ABC"
    frames = _ring_states(n)
    fig, ax = canvas(14.4, 5.6)
    title(ax, 7.2, 5.3, "Ring all-reduce on 3 ranks: 2 steps of reduce-scatter, then 2 of all-gather")
    rows = [3.9, 2.9, 1.9]
    for i, y in enumerate(rows):
        note(ax, 0.5, y, f"rank {i}", size=9, color="black", weight="bold")
    for k, (label, state, sends) in enumerate(frames):
        x0 = 2.25 + 2.65 * k
        note(ax, x0, 4.65, label, size=8.5, color="black")
        for i, y in enumerate(rows):
            for c in range(n):
                held = state[i][c]
                text = f"{names[c]}: " + ("Σ" if len(held) == n else "+".join(map(str, sorted(held))))
                kind = "add" if len(held) == n else "state" if len(held) > 1 else "input"
                box(ax, x0 + (c - 1) * 0.8, y, text, kind, w=0.75, h=0.5, size=7, bold=(i, c) in sends)
        if k < len(frames) - 1:
            arrow(ax, (x0 + 1.2, 2.9), (x0 + 1.45, 2.9))
    note(ax, 7.2, 1.05, "bold: the chunk each rank sends to the next rank (0 → 1 → 2 → 0) in the following step;\n"
                        "reduce-scatter adds what arrives, all-gather overwrites with it", size=8)
    note(ax, 7.2, 0.3, "each rank sends 2 (W − 1) chunks of 1/W of its tensor: 2 (W − 1)/W of a tensor, "
                       "whatever the number of ranks", size=8, color="black")
    legend(ax, ["input", "state", "add"])
    relabel(ax, ["its own numbers only", "a partial sum", "the sum over all ranks (Σ)"])
    return fig


FLOAT_FORMATS = [  # name, exponent bits, mantissa bits, what the layout gives
    ("float32", 8, 23, "largest 3.4 × 10³⁸, smallest normal 1.2 × 10⁻³⁸; neighbours differ by 1 part in 8.4 million (2⁻²³)"),
    ("bfloat16", 8, 7, "float32's range (the same 8 exponent bits); neighbours differ by 1 part in 128 (2⁻⁷)"),
    ("float16", 5, 10, "largest 65,504, smallest normal 6.1 × 10⁻⁵; neighbours differ by 1 part in 1,024 (2⁻¹⁰)"),
]


def draw_float_formats() -> Figure:
    """Chapter 10.5: the bits of float32, bfloat16 and float16, one box per field drawn to scale: a sign
    bit, the exponent (which sets the range) and the mantissa (which sets the precision)."""
    fig, ax = canvas(14.4, 5.3)
    title(ax, 7.2, 5.0, "Three float formats, drawn to scale: 1 sign bit, the exponent, the mantissa")
    bit, left = 0.38, 1.9
    for k, (name, exponent, mantissa, says) in enumerate(FLOAT_FORMATS):
        y = 4.1 - 1.45 * k
        note(ax, 0.95, y, f"{name}\n{1 + exponent + mantissa} bits", size=8.5, color="black", weight="bold")
        x = left
        for text, width, kind in (("±", 1, "out"), (f"exponent {exponent}", exponent, "attn"),
                                  (f"mantissa {mantissa}", mantissa, "mlp")):
            box(ax, x + width * bit / 2, y, text, kind, w=width * bit, h=0.5, size=7.5)
            x += width * bit
        note(ax, left, y - 0.5, says, size=8, ha="left")
    legend(ax, ["out", "attn", "mlp"])
    relabel(ax, ["sign", "exponent: the range", "mantissa: the precision"])
    return fig


def draw_zero_sharding(num_parameters: int = 7_000_000_000, num_devices: int = 8) -> Figure:
    """Chapter 10.1: the mixed-precision AdamW state one device holds for a 7B model on 8 devices, under
    plain data parallelism (ZeRO stage 0) and ZeRO stages 1 to 3, drawn to scale: 16-bit weights and
    gradients (2 bytes a parameter each) and the optimizer state (12 bytes: float32 master weights and
    two moments); a sharded part is divided by the number of devices. The totals are those of
    :func:`lmcourse.scaling.zero_bytes_per_device` (the tests check it)."""
    fig, ax = canvas(14.4, 5.6)
    title(ax, 7.2, 5.3, f"Training state per device: a {num_parameters / 1e9:.0f}B model on {num_devices} devices")
    parts = [("weights", 2.0, "embed"), ("gradients", 2.0, "state"), ("optimizer state", 12.0, "mlp")]
    left, per_gb = 2.9, 0.085  # units per GB
    for stage in range(4):
        y = 4.4 - 1.0 * stage
        name = "plain data parallel" if stage == 0 else f"ZeRO-{stage}"
        note(ax, 1.4, y, name, size=8.5, color="black", weight="bold")
        x, total = left, 0.0
        for k, (part, bytes_per_parameter, kind) in enumerate(parts):
            sharded = k >= 3 - stage  # stage 1 shards the optimizer state, 2 the gradients too, 3 everything
            gb = num_parameters * bytes_per_parameter / (num_devices if sharded else 1) / 1e9
            width = gb * per_gb
            box(ax, x + width / 2, y, f"{gb:g}" if width > 0.6 else "", kind, w=width, h=0.55, size=7.5)
            x += width
            total += gb
        note(ax, x + 0.15, y, f"{total:g} GB", size=8.5, color="black", ha="left")
    gpu = left + 80 * per_gb
    ax.plot([gpu, gpu], [0.95, 4.85], color="black", linestyle=":", linewidth=1)
    note(ax, gpu, 0.75, "80 GB: one large GPU's memory", size=8)
    note(ax, 7.2, 0.2, "sharded parts are split 8 ways; activations come on top of all of this", size=8)
    legend(ax, [kind for _, _, kind in parts])
    relabel(ax, ["16-bit weights (2 B)", "16-bit gradients (2 B)", "optimizer state: master weights + moments (12 B)"])
    return fig


def draw_distillation() -> Figure:
    """Chapter 10.8: knowledge distillation's loss. The same tokens go through the frozen teacher and
    the trained student; both logits are softened by the temperature $T$, and the KL divergence of the
    student's softened distribution from the teacher's (times $T^2$ and $\\alpha$) is added to the
    student's ordinary cross-entropy with the next token (times $1 - \\alpha$)."""
    fig, ax = canvas(14.4, 5.6)
    title(ax, 7.2, 5.3, "Knowledge distillation: the loss of one position")
    tokens = box(ax, 1.2, 2.9, "tokens\n$x_{\\leq t}$", "input", w=1.6, h=0.9)
    teacher = box(ax, 3.9, 4.2, "teacher (frozen)", "other", w=2.4)
    student = box(ax, 3.9, 1.6, "student (trained)", "mlp", w=2.4)
    soft_t = box(ax, 7.0, 4.2, "softmax($z_t / T$)", "state", w=2.3)
    soft_s = box(ax, 7.0, 2.9, "softmax($z_s / T$)", "state", w=2.3)
    hard_s = box(ax, 7.0, 1.6, "softmax($z_s$)", "state", w=2.3)
    kl = box(ax, 10.35, 3.55, "$\\alpha\\, T^2\\,$KL(teacher $\\|$ student)", "out", w=3.7)
    ce = box(ax, 10.35, 1.6, "$(1 - \\alpha)\\,$CE(student, $y_{t+1}$)", "out", w=3.7)
    loss = box(ax, 13.55, 2.55, "loss", "add", w=1.2)
    arrow(ax, tokens.right, (2.4, 2.9), (2.4, 4.2), teacher.left)
    arrow(ax, (2.4, 2.9), (2.4, 1.6), student.left)
    arrow(ax, teacher.right, soft_t.left)
    note(ax, 5.45, 3.85, "logits $z_t$", size=7.5)
    arrow(ax, student.right, (5.4, 1.6), (5.4, 2.9), soft_s.left)
    arrow(ax, (5.4, 1.6), hard_s.left)
    note(ax, 5.4, 1.2, "logits $z_s$", size=7.5)
    arrow(ax, soft_t.right, (8.4, 4.2), (8.4, 3.7), (kl.x - kl.w / 2, 3.7))
    arrow(ax, soft_s.right, (8.4, 2.9), (8.4, 3.4), (kl.x - kl.w / 2, 3.4))
    arrow(ax, hard_s.right, ce.left)
    note(ax, 10.35, 0.85, "next token $y_{t+1}$ from the text", size=8)
    arrow(ax, (10.35, 1.05), ce.bottom)
    arrow(ax, kl.right, (12.6, 3.55), (12.6, 2.55), loss.left)
    arrow(ax, ce.right, (12.6, 1.6), (12.6, 2.55), head=False)
    note(ax, 7.0, 4.8, "soft targets: every token's probability, not just the right one's", size=8)
    legend(ax, ["input", "other", "mlp", "state", "out", "add"])
    relabel(ax, ["tokens", "teacher (frozen)", "student (trained)", "distributions", "the two terms", "sum"])
    return fig
