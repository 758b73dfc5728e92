"""Checkers for Chapter 10 (scaling and efficiency): a GPT's forward FLOPs per token, a ring
all-reduce simulated over tensors, an int8 round trip, and the distillation loss.

The oracles are the package's production code: :func:`lmcourse.scaling.flops.gpt_forward_flops_per_token`
(itself checked against ``torch.utils.flop_counter``), :func:`lmcourse.distributed.ring_all_reduce`,
:func:`lmcourse.scaling.quantize.quantize_int8` with its inverse, and
:func:`lmcourse.scaling.distill.distillation_loss`.

>>> _flops_oracle(100, 32, 2, 10)  # 2 (2 * 12 * 32^2 + 100 * 32) + 2 * 4 * 10 * 32
58112
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lmcourse.distributed import ring_all_reduce
from lmcourse.exercises.core import Case, Exercise, register
from lmcourse.gpt import GPTConfig
from lmcourse.scaling.distill import distillation_loss
from lmcourse.scaling.flops import gpt_forward_flops_per_token, gpt_matmul_parameters
from lmcourse.scaling.quantize import dequantize_int8, quantize_int8

# --- scaling.forward_flops_per_token -----------------------------------------------------------


def _config(vocab_size: int, emb_dim: int, num_layers: int, seq_len: int) -> GPTConfig:
    return GPTConfig(vocab_size=vocab_size, context_length=seq_len, emb_dim=emb_dim, num_heads=1, num_layers=num_layers)


def _flops_oracle(vocab_size, emb_dim, num_layers, seq_len):
    return gpt_forward_flops_per_token(_config(vocab_size, emb_dim, num_layers, seq_len), seq_len)


def _flops_no_attention(vocab_size, emb_dim, num_layers, seq_len):
    return 2 * gpt_matmul_parameters(_config(vocab_size, emb_dim, num_layers, seq_len))


def _flops_all_parameters(vocab_size, emb_dim, num_layers, seq_len):
    config = _config(vocab_size, emb_dim, num_layers, seq_len)
    return 2 * config.num_parameters + 4 * num_layers * seq_len * emb_dim


register(Exercise(
    name="scaling.forward_flops_per_token",
    cases=[Case((100, 32, 2, 10), label="a tiny GPT: V 100, C 32, 2 blocks, 10 tokens"),
           Case((8192, 128, 2, 64), label="Chapter 6's GPT: V 8192, C 128, 2 blocks, 64 tokens"),
           Case((50257, 768, 12, 1024), label="GPT-2 small at its full context of 1,024"),
           Case((2048, 96, 3, 1), label="one token of context: attention costs almost nothing"),
           Case((10, 512, 24, 4096), label="a long context: attention weighs more than the output layer")],
    oracle=_flops_oracle,
    hint="Count 2 FLOPs (a multiply and an add) per weight of every matrix product a token goes through: "
         "per block W_Q, W_K, W_V, W_O (4 C^2) and the MLP (8 C^2), then the V x C output layer. The "
         "embedding lookups cost nothing. Attention adds 4 T C per block: Q K^T and the weighted sum of "
         "the values, each 2 T C per token over T positions.",
    nudge="2 * (num_layers * 12 * C**2 + V * C) + num_layers * 4 * seq_len * C.",
    wrong_answers={"leaves out attention": _flops_no_attention,
                   "counts 1 FLOP per multiply-add": lambda *a: _flops_oracle(*a) // 2,
                   "counts every parameter, embeddings and biases too": _flops_all_parameters,
                   "gives the training FLOPs (3 forward passes)": lambda *a: 3 * _flops_oracle(*a)},
))

# --- scaling.ring_all_reduce -------------------------------------------------------------------


def _tensors(seed: int, devices: int, shape: tuple[int, ...]) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(-9, 10, shape, generator=g).float() for _ in range(devices)]


def _naive_all_reduce(tensors):
    """Every device sends its whole tensor to every other: right sums, n - 1 tensors sent each."""
    total = torch.stack(tensors).sum(0)
    return [total.clone() for _ in tensors], (len(tensors) - 1) * tensors[0].numel()


def _mean_all_reduce(tensors):
    sums, sent = ring_all_reduce(tensors)
    return [s / len(tensors) for s in sums], sent


def _reduce_scatter_only(tensors):
    """Stops after the first phase: each device holds one finished chunk and partial sums elsewhere."""
    n = len(tensors)
    buffers = [t.flatten().clone() for t in tensors]
    chunks = [b.tensor_split(n) for b in buffers]
    for s in range(n - 1):
        messages = [chunks[i][(i - s) % n].clone() for i in range(n)]
        for i, message in enumerate(messages):
            chunks[(i + 1) % n][(i - s) % n].add_(message)
    return [b.view_as(t) for b, t in zip(buffers, tensors)], (n - 1) * buffers[0].numel() // n


def _sums_into_inputs(tensors):
    """Right sums and counts, but written into the callers' tensors: the gradients are gone."""
    sums, sent = ring_all_reduce(tensors)
    for t, total in zip(tensors, sums):
        t.copy_(total)
    return list(tensors), sent


register(Exercise(
    name="scaling.ring_all_reduce",
    cases=[Case((_tensors(1, 2, (4,)),), label="2 devices, 4 numbers each"),
           Case((_tensors(2, 4, (8,)),), label="4 devices, 8 numbers each"),
           Case((_tensors(3, 3, (2, 6)),), label="3 devices, a 2 x 6 matrix each (keep the shape)"),
           Case((_tensors(4, 1, (5,)),), label="one device: nothing to send"),
           Case((_tensors(5, 5, (10,)),), label="5 devices, 10 numbers each")],
    oracle=ring_all_reduce,
    hint="Split each device's flattened tensor into n chunks. Reduce-scatter: for s in 0..n-2, every "
         "device i sends its chunk (i - s) mod n to device (i + 1) mod n, which adds it to its own; take "
         "copies of all messages before adding any. Then all-gather: for s in 0..n-2, device i sends its "
         "finished chunk (i + 1 - s) mod n on, and the receiver overwrites its chunk. Return every device's "
         "result in the input's shape and the elements one device sent: 2 (n - 1) chunks.",
    nudge="Two phases of n - 1 steps each; every device sends one chunk per step.",
    wrong_answers={"sends every whole tensor to every device": _naive_all_reduce,
                   "averages instead of summing": _mean_all_reduce,
                   "stops after the reduce-scatter phase": _reduce_scatter_only,
                   "writes the sums into the input tensors": _sums_into_inputs},
))

# --- scaling.int8_round_trip -------------------------------------------------------------------


def _int8_oracle(weights):
    return dequantize_int8(*quantize_int8(weights))


def _int8_wrong(weights, per_row=True, levels=127, rounding=torch.round):
    w = weights.float()
    absmax = w.abs().amax(dim=1, keepdim=True) if per_row else w.abs().amax()
    scale = torch.where(absmax > 0, absmax / levels, torch.ones_like(absmax))
    return rounding(w / scale).clamp(-127, 127) * scale


def _weights(seed: int, rows: int, columns: int, outlier: float = 0.0) -> torch.Tensor:
    w = torch.randn(rows, columns, generator=torch.Generator().manual_seed(seed)) * 0.05
    if outlier:
        w[0, 0] = outlier  # one large weight in row 0
    return w


register(Exercise(
    name="scaling.int8_round_trip",
    cases=[Case((torch.tensor([[0.5, -1.0, 0.25], [2.0, 0.0, -0.7]]),), label="two rows, worked by hand"),
           Case((_weights(1, 8, 16),), label="8 x 16 weights like a trained layer's"),
           Case((_weights(2, 4, 32, outlier=3.0),), label="one outlier in the first row"),
           Case((torch.tensor([[0.0, 0.0], [1e-3, -2e-3]]),), label="a row of zeros"),
           Case((_weights(3, 16, 8) * 100,), label="large weights")],
    oracle=_int8_oracle,
    hint="Per row: scale = max |w| / 127 (1 for a row of zeros), codes = round(w / scale) clamped to "
         "[-127, 127] and stored as int8, and back: codes * scale as float32. A per-tensor scale lets one "
         "large weight blur every row.",
    nudge="scale per row = row.abs().max() / 127; return (w / scale).round().clamp(-127, 127) * scale.",
    wrong_answers={"uses one scale for the whole tensor": lambda w: _int8_wrong(w, per_row=False),
                   "divides by 255, as if the codes were unsigned": lambda w: _int8_wrong(w, levels=255),
                   "truncates instead of rounding": lambda w: _int8_wrong(w, rounding=torch.trunc)},
    rel_tol=1e-6, abs_tol=1e-7,
))

# --- scaling.distillation_loss -----------------------------------------------------------------


def _logits(seed: int, positions: int, vocab: int, scale: float = 2.0) -> tuple:
    g = torch.Generator().manual_seed(seed)
    student = torch.randn(positions, vocab, generator=g) * scale
    teacher = torch.randn(positions, vocab, generator=g) * scale
    return student, teacher, torch.randint(0, vocab, (positions,), generator=g)


def _distill_wrong(student, teacher, targets, temperature=2.0, alpha=0.5, *, square=True, reverse=False,
                   soften_teacher=True):
    log_s = F.log_softmax(student / temperature, dim=-1)
    log_t = F.log_softmax(teacher / (temperature if soften_teacher else 1.0), dim=-1)
    kl = (log_s.exp() * (log_s - log_t)).sum(-1) if reverse else (log_t.exp() * (log_t - log_s)).sum(-1)
    ce = F.cross_entropy(student, targets, reduction="none")
    return alpha * (temperature ** 2 if square else 1.0) * kl + (1 - alpha) * ce


register(Exercise(
    name="scaling.distillation_loss",
    cases=[Case(_logits(1, 3, 5), label="3 positions, a vocabulary of 5, T = 2, alpha = 0.5"),
           Case(_logits(2, 4, 10), {"temperature": 4.0, "alpha": 0.9}, label="T = 4, alpha = 0.9"),
           Case(_logits(3, 2, 7), {"temperature": 1.0, "alpha": 1.0}, label="T = 1, only the teacher's term"),
           Case(_logits(4, 5, 6), {"temperature": 3.0, "alpha": 0.0}, label="alpha = 0: only the data's term"),
           Case(_logits(5, 6, 50, scale=5.0), {"temperature": 2.5, "alpha": 0.5}, label="peaked logits, V = 50")],
    oracle=distillation_loss,
    hint="Per position: alpha * T^2 * KL(p_teacher || p_student) + (1 - alpha) * cross-entropy(student, "
         "target), where both p are softmaxes of the logits divided by T, and the KL is "
         "sum p_teacher (log p_teacher - log p_student). The cross-entropy uses the student's logits at T = 1. "
         "Use log_softmax for both, and return one number per position.",
    nudge="kl = (p_t * (log_p_t - log_p_s)).sum(-1) with log_p = log_softmax(logits / T); "
          "return alpha * T**2 * kl + (1 - alpha) * F.cross_entropy(s, y, reduction='none').",
    wrong_answers={"forgets the T^2 factor": lambda *a, **k: _distill_wrong(*a, **k, square=False),
                   "reverses the KL (student || teacher)": lambda *a, **k: _distill_wrong(*a, **k, reverse=True),
                   "softens only the student": lambda *a, **k: _distill_wrong(*a, **k, soften_teacher=False)},
    rel_tol=1e-5, abs_tol=1e-6,
))
