"""Knowledge distillation: training a small student to match a large teacher's distributions.
Chapter 10 (Scaling and efficiency) explains it.

A teacher's next-token distribution says more than the one token that came next: which other
tokens were plausible, and how much. Hinton et al. (2015) train the student on both, per position,

    loss = alpha T^2 KL(softmax(t / T) || softmax(s / T)) + (1 - alpha) CE(s, target)

with the student's logits ``s``, the teacher's ``t`` and a temperature ``T > 1`` that softens both
distributions so the small probabilities count. The gradient of the KL term shrinks as ``1 / T^2``;
the factor ``T^2`` puts it back on the scale of the cross-entropy's (at large ``T`` it is about
``(s - t) / V`` for zero-mean logits). :func:`distillation_loss` computes it.

:class:`Distillation` wraps a student and a frozen teacher into one model that the book's unchanged
training loop, :func:`lmcourse.train.train`, trains: its ``nll(inputs (T, B), targets, state)``
returns this loss per position in training mode. Any two models of the protocol of
:mod:`lmcourse.neural` with the same vocabulary fit (GPT, LLaMA, an RNN); both are read through
their ``log_probs``, which are logits up to a constant per position, so every softmax is the same.

Left out: matching hidden states or attention maps (DistilBERT's cosine loss, TinyBERT),
sequence-level distillation on the teacher's samples, and teacher and student on different
tokenizers.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from lmcourse._checks import check_float
from lmcourse._torch import eval_mode

__all__ = ["distillation_loss", "Distillation"]


def _check_logits(student_logits: Tensor, teacher_logits: Tensor, targets: Tensor) -> None:
    for name, x in (("student_logits", student_logits), ("teacher_logits", teacher_logits)):
        if not isinstance(x, Tensor) or not x.is_floating_point() or x.dim() < 2:
            got = f"{x.dtype} of shape {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
            raise TypeError(f"{name} must be a float tensor of logits (..., V), got {got}")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student and teacher logits must have the same shape (..., V), got "
                         f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}")
    if not isinstance(targets, Tensor) or targets.dtype != torch.long:
        got = targets.dtype if isinstance(targets, Tensor) else type(targets).__name__
        raise TypeError(f"targets must be a LongTensor of token ids, got {got}")
    if targets.shape != student_logits.shape[:-1]:
        raise ValueError(f"targets must have shape {tuple(student_logits.shape[:-1])} (the logits' without V), "
                         f"got {tuple(targets.shape)}")


def distillation_loss(student_logits: Tensor, teacher_logits: Tensor, targets: Tensor,
                      temperature: float = 2.0, alpha: float = 0.5) -> Tensor:
    """Hinton et al.'s (2015) loss at every position: logits ``(..., V)``, targets ``(...)`` -> ``(...)``:
    ``alpha T^2 KL(softmax(t / T) || softmax(s / T)) + (1 - alpha) CE(s, targets)``.

    >>> s, t = torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, 0.0]])
    >>> distillation_loss(s, t, torch.tensor([1]), alpha=0.5)  # KL 0, CE ln 2, halved
    tensor([0.3466])
    """
    _check_logits(student_logits, teacher_logits, targets)
    check_float("temperature", temperature, 0.0, low_open=True)
    check_float("alpha", alpha, 0.0, 1.0)
    T = temperature
    log_p_student = F.log_softmax(student_logits / T, dim=-1)  # (..., V)
    log_p_teacher = F.log_softmax(teacher_logits / T, dim=-1)  # (..., V)
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(dim=-1)  # (...)
    ce = F.cross_entropy(student_logits.flatten(0, -2), targets.flatten(), reduction="none")  # (N,)
    return alpha * T**2 * kl + (1 - alpha) * ce.view(targets.shape)


class Distillation(nn.Module):
    """A student trained towards a frozen teacher, as one language model for :func:`lmcourse.train.train`.

    In training mode ``nll(inputs, targets, state)`` is :func:`distillation_loss` per position
    ``(T, B)``, the teacher read in eval mode without gradients. In eval mode (the loop's validation,
    :func:`lmcourse.train.evaluate`) it is the student's own nll, so the perplexity reported is the
    student's. The state is the pair (student's state, teacher's state).

    The teacher is kept out of the module tree: ``parameters()``, ``state_dict()`` and checkpoints
    hold the student only (``student.*``), so the optimizer never sees, and weight decay never moves,
    the teacher. ``.to(device)`` moves only the student: move the teacher yourself. ``config`` is the
    student's.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module, temperature: float = 2.0,
                 alpha: float = 0.5) -> None:
        super().__init__()
        for name, model in (("student", student), ("teacher", teacher)):
            if not isinstance(model, nn.Module) or not callable(getattr(model, "log_probs", None)):
                raise TypeError(f"{name} must be a language model with log_probs(inputs (T, B), state), "
                                f"as in lmcourse.neural; got {type(model).__name__}")
        vocab = [getattr(getattr(m, "config", None), "vocab_size", None) for m in (student, teacher)]
        if vocab[0] is None or vocab[0] != vocab[1]:
            raise ValueError(f"student and teacher must share one vocabulary: config.vocab_size is "
                             f"{vocab[0]} and {vocab[1]}")
        check_float("temperature", temperature, 0.0, low_open=True)
        check_float("alpha", alpha, 0.0, 1.0)
        self.student, self.config = student, student.config
        object.__setattr__(self, "teacher", teacher)  # a plain attribute: not a submodule
        self.temperature, self.alpha = temperature, alpha

    def nll(self, inputs: Tensor, targets: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """Distillation loss per position ``(T, B)`` in training mode, the student's nll in eval mode;
        and the new state (student's, teacher's)."""
        student_state, teacher_state = state if state is not None else (None, None)
        if not self.training:
            nll, student_state = self.student.nll(inputs, targets, student_state)
            return nll, (student_state, teacher_state)
        with eval_mode(self.teacher):
            teacher_logp, teacher_state = self.teacher.log_probs(inputs, teacher_state)  # (T, B, V)
        student_logp, student_state = self.student.log_probs(inputs, student_state)  # (T, B, V)
        if isinstance(targets, Tensor) and targets.dim() == 1 and targets.numel() == inputs.numel():
            targets = targets.view(inputs.shape)  # (T*B,) -> (T, B), as lmcourse.data.get_batch gives them
        loss = distillation_loss(student_logp, teacher_logp, targets, self.temperature, self.alpha)
        return loss, (student_state, teacher_state)  # (T, B)
