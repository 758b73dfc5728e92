"""What a training run is told and what it keeps: :class:`TrainConfig`, :class:`History` and
:class:`LoopState`, shared by :mod:`lmcourse.train` (which runs the loop) and
:mod:`lmcourse.checkpoint` (which saves and restores them).

Chapter 3a (Word embeddings and a feed-forward language model) introduces them with the loop.
This module imports neither the loop nor the checkpoint files, so each of those two can import it.
"""

from __future__ import annotations

import math
import os
import statistics
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from lmcourse._checks import check_float, check_int

__all__ = ["TrainConfig", "History", "LoopState", "plot_history", "check_language_model",
           "OPTIMIZERS", "SCHEDULES", "PathLike"]

PathLike = str | os.PathLike
OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("constant", "cosine", "linear")


@dataclass
class TrainConfig:
    """How :func:`~lmcourse.train.train` trains: optimizer, schedule, batching, evaluation, checkpoints.

    Training stops after `epochs` epochs or `max_steps` steps, whichever comes first; with
    neither set it runs one epoch. `stop_after` ends it sooner without changing the learning-rate
    schedule, so the steps taken are exactly the first steps of the full run (Chapter 6 trains the
    first eighth of a stored run this way, and a checkpoint written there resumes the rest). Values
    are checked here, so ``dataclasses.replace`` checks too.

    >>> TrainConfig(lr=3e-4, schedule="cosine", warmup_steps=100, max_steps=2000).schedule
    'cosine'
    """

    # optimizer
    optimizer: str = "adamw"  # "adamw" (Loshchilov & Hutter, 2019) or "sgd"
    lr: float = 1e-3  # peak learning rate, reached after warmup
    weight_decay: float = 0.01  # applied to matrices and embeddings only, not to biases or gains
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW's decay rates of the gradient moments
    eps: float = 1e-8  # AdamW's guard against division by zero
    momentum: float = 0.0  # SGD only; 0 = plain SGD
    # learning-rate schedule (see lmcourse.train.lr_multiplier)
    schedule: str = "constant"  # after warmup: "constant", "cosine" or "linear" decay
    warmup_steps: int = 0  # linear warmup from lr / warmup_steps up to lr
    min_lr_ratio: float = 0.0  # cosine and linear decay end at lr * min_lr_ratio
    clip_grad_norm: float | None = 1.0  # largest total gradient norm (L2); None = no clipping
    # data
    batch_size: int = 20  # B parallel streams
    bptt: int = 35  # T: chunk length for truncated back-propagation through time
    epochs: int | None = None  # passes over the training stream; None = 1 unless max_steps is set
    max_steps: int | None = None  # optimizer steps; None = no limit
    stop_after: int | None = None  # stop after this many steps, the schedule still set by max_steps/epochs
    # evaluation and early stopping
    eval_every: int | None = None  # steps between evaluations (also at each epoch end and the end)
    eval_batch_size: int = 10  # B for the validation stream
    patience: int | None = None  # evaluations without a new best before stopping; None = never stop
    # reproducibility, checkpoints, display
    seed: int = 0  # seeds torch, random and numpy at the start (not on resume: RNGs are restored)
    checkpoint: PathLike | None = None  # safetensors file; "{step}" in the name keeps one per save
    checkpoint_every: int | None = None  # steps between saves (also at each epoch end and the end)
    resume: PathLike | None = None  # checkpoint to continue from (or train(..., resume_from=...))
    progress: bool = True  # tqdm bar with loss, lr and tokens per second

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}")
        check_float("lr", self.lr, 0.0, low_open=True)
        check_float("weight_decay", self.weight_decay, 0.0)
        if not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {self.betas!r}")
        for i, beta in enumerate(self.betas):
            check_float(f"betas[{i}]", beta, 0.0, 1.0, high_open=True)
        self.betas = (float(self.betas[0]), float(self.betas[1]))
        check_float("eps", self.eps, 0.0, low_open=True)
        check_float("momentum", self.momentum, 0.0, 1.0, high_open=True)
        check_int("warmup_steps", self.warmup_steps, 0)
        check_float("min_lr_ratio", self.min_lr_ratio, 0.0, 1.0)
        if self.clip_grad_norm is not None:
            check_float("clip_grad_norm", self.clip_grad_norm, 0.0, low_open=True)
        for name in ("batch_size", "bptt", "eval_batch_size"):
            check_int(name, getattr(self, name), 1)
        for name in ("epochs", "max_steps", "stop_after", "eval_every", "patience", "checkpoint_every"):
            check_int(name, getattr(self, name), 1, allow_none=True)
        check_int("seed", self.seed, 0)
        if self.stop_after is not None and self.eval_every is not None and self.stop_after % self.eval_every:
            raise ValueError(f"stop_after={self.stop_after} must be a multiple of eval_every={self.eval_every}: "
                             "stopping adds an evaluation, which would then differ from the full run's")


@dataclass
class History:
    """What happened in :func:`~lmcourse.train.train`, step by step; ``history.plot()`` draws the
    loss curves. Every loop records into it with :meth:`add_step` and :meth:`add_evaluation`."""

    train_loss: list[float] = field(default_factory=list)  # mean nll (nats) of each step's chunk
    lr: list[float] = field(default_factory=list)  # learning rate each step used
    grad_norm: list[float] = field(default_factory=list)  # total gradient norm, before clipping
    eval_steps: list[int] = field(default_factory=list)  # steps after which validation was scored
    valid_loss: list[float] = field(default_factory=list)  # mean nll per validation token
    valid_perplexity: list[float] = field(default_factory=list)  # exp(valid_loss)
    best_step: int | None = None  # step of the lowest validation loss
    best_valid_loss: float = math.inf
    best_valid_perplexity: float = math.inf
    epochs_completed: int = 0
    tokens_seen: int = 0  # training tokens predicted: T * B per step
    train_seconds: float = 0.0  # time spent in training steps (evaluation and saving excluded)
    total_seconds: float = 0.0  # wall time of train(), over all resumed runs
    step_seconds: list[float] = field(default_factory=list)  # time of each training step
    stopped_early: bool = False  # True if patience ran out

    @property
    def steps(self) -> int:
        return len(self.train_loss)

    @property
    def tokens_per_second(self) -> float:
        """Training throughput: tokens_seen / train_seconds."""
        return self.tokens_seen / self.train_seconds if self.train_seconds > 0 else 0.0

    @property
    def median_step_seconds(self) -> float:
        """The median time of one step: a machine's pace from a few steps, which the first step (slower:
        memory is allocated, caches are cold) would sway in a mean. Histories written before steps were
        timed one by one give their mean."""
        if self.step_seconds:
            return statistics.median(self.step_seconds)
        return self.train_seconds / self.steps if self.steps else 0.0

    def add_step(self, loss: float, lr: float, grad_norm: float, tokens: int, seconds: float) -> None:
        """Record one optimizer step: its loss, learning rate, gradient norm, tokens and time."""
        self.train_loss.append(loss)
        self.lr.append(lr)
        self.grad_norm.append(grad_norm)
        self.tokens_seen += tokens
        self.train_seconds += seconds
        self.step_seconds.append(seconds)

    def add_evaluation(self, step: int, loss: float, perplexity: float) -> bool:
        """Record a validation score after `step`; True if it is the best so far.

        >>> h = History()
        >>> h.add_evaluation(10, 2.0, 7.39), h.add_evaluation(20, 2.5, 12.18), h.best_step
        (True, False, 10)
        """
        self.eval_steps.append(step)
        self.valid_loss.append(loss)
        self.valid_perplexity.append(perplexity)
        if loss < self.best_valid_loss:
            self.best_step, self.best_valid_loss, self.best_valid_perplexity = step, loss, perplexity
            return True
        return False

    def plot(self, ax: Any = None) -> Any:
        """Train and validation loss against step; see :func:`plot_history`."""
        return plot_history(self, ax)


def plot_history(history: History, ax: Any = None) -> Any:
    """Draw the per-step training loss and the validation loss on `ax` (a new figure if None).

    Returns the matplotlib ``Axes``. A dotted line marks the best validation step.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    steps = range(1, len(history.train_loss) + 1)
    ax.plot(steps, history.train_loss, lw=0.8, alpha=0.7, label="train (per step)")
    if history.eval_steps:
        ax.plot(history.eval_steps, history.valid_loss, "o-", label="validation")
    if history.best_step is not None:
        ax.axvline(history.best_step, ls=":", color="gray",
                   label=f"best: step {history.best_step}, ppl {history.best_valid_perplexity:.2f}")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats per token)")
    ax.legend()
    return ax


@dataclass
class LoopState:
    """Where :func:`~lmcourse.train.train` is in its data: what it needs, besides weights, to resume."""

    epoch: int = 0  # epochs completed
    offset: int = 0  # row of the batchified training stream where the next chunk starts
    state: Any = None  # recurrent state carried into that chunk (None at an epoch start)
    bad_evals: int = 0  # evaluations since the best one, for early stopping
    data_sha256: str = ""  # of the training stream's bytes, so a resume on other data is refused


def check_language_model(model: Any) -> None:
    """Refuse anything but an ``nn.Module`` with the ``nll`` method of :mod:`lmcourse.neural`'s protocol."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(getattr(model, "nll", None)):
        raise TypeError(
            f"{type(model).__name__} has no nll method. lmcourse.train needs language models with "
            "nll(inputs (T, B), targets (T, B), state) -> (per-token nll (T, B), new state)")
