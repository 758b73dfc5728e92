r"""One optimizer step, shared by every loop in the book: the optimizer, the learning-rate
schedule, the update itself (finite checks, backward, clipping) and the progress bar.

:func:`lmcourse.train.train` (a token stream), :func:`lmcourse.train.train_on_examples` (separate
examples) and :func:`lmcourse.embeddings.train_skipgram` (word2vec's pairs) all step through
:func:`backward` and, the first two, :func:`update`; Chapter 3a explains the loop.

Left out: gradient accumulation and mixed precision.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from lmcourse.trainstate import TrainConfig

__all__ = ["lr_multiplier", "run_steps", "make_optimizer", "make_scheduler", "grad_norm", "backward",
           "update", "StepBar"]

Diverged = Callable[[str, float], Exception]  # (what, value) -> the error to raise


def lr_multiplier(step: int, config: TrainConfig, total_steps: int) -> float:
    r"""Factor on ``config.lr`` for optimizer step `step` (0-based) of `total_steps`.

    Warmup: $(s+1)/W$ for $s < W$. Then, with progress $p = (s - W) / (S - W)$ clipped to [0, 1]
    and floor $m$ = ``min_lr_ratio``: constant $1$; cosine $m + (1-m)\frac12(1 + \cos \pi p)$;
    linear $m + (1-m)(1-p)$.

    >>> cfg = TrainConfig(schedule="cosine", warmup_steps=2)
    >>> [round(lr_multiplier(s, cfg, total_steps=6), 3) for s in range(6)]
    [0.5, 1.0, 1.0, 0.854, 0.5, 0.146]
    """
    warmup = config.warmup_steps
    if step < warmup:
        return (step + 1) / warmup
    if config.schedule == "constant":
        return 1.0
    progress = min(1.0, max(0.0, (step - warmup) / max(1, total_steps - warmup)))
    m = config.min_lr_ratio
    if config.schedule == "cosine":
        return m + (1 - m) * 0.5 * (1 + math.cos(math.pi * progress))
    return m + (1 - m) * (1 - progress)  # linear


def run_steps(config: TrainConfig, steps_per_epoch: int) -> int:
    """Steps of a run: ``max_steps`` or ``epochs`` (1 if neither is set), whichever ends first.

    >>> run_steps(TrainConfig(epochs=3, max_steps=100), steps_per_epoch=20), run_steps(TrainConfig(), 20)
    (60, 20)
    """
    epochs = config.epochs if config.epochs is not None else (None if config.max_steps else 1)
    return min(x for x in (config.max_steps, epochs and epochs * steps_per_epoch) if x)


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW or SGD over the trainable parameters, as `config` says.

    Weight decay goes to parameters with two or more dimensions (matrices, embeddings) and not
    to biases or normalisation gains, as in nanoGPT: shrinking a bias towards 0 is no prior anyone
    holds.
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError(f"{type(model).__name__} has no trainable parameters (requires_grad=True)")
    groups = [
        {"params": [p for _, p in named if p.dim() >= 2], "weight_decay": config.weight_decay},
        {"params": [p for _, p in named if p.dim() < 2], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, eps=config.eps)
    return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig,
                   total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` that multiplies the learning rate by :func:`lr_multiplier`."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_multiplier(s, config, total_steps))


def grad_norm(params: list[torch.Tensor], max_norm: float | None) -> float:
    """Total L2 norm of the gradients before clipping; clip them to `max_norm` if given."""
    params = [p for p in params if p.grad is not None]
    if not params:
        return 0.0
    if max_norm is not None:
        return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
    return float(torch.nn.utils.get_total_norm([p.grad for p in params]))


def backward(loss: torch.Tensor, optimizer: torch.optim.Optimizer, diverged: Diverged) -> float:
    """Check the loss is finite (else raise ``diverged("the loss", value)``), clear the old
    gradients and back-propagate; returns the loss as a float."""
    loss_value = float(loss.detach())
    if not math.isfinite(loss_value):
        raise diverged("the loss", loss_value)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    return loss_value


def update(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scheduler: Any, clip_grad_norm: float | None,
           diverged: Diverged) -> tuple[float, float]:
    """One update from a scalar loss: :func:`backward`, clip, optimizer and schedule step.

    Returns the loss and the gradient norm before clipping. Raises ``diverged(what, value)``
    before any weight changes if the loss or the gradient norm is not finite.
    """
    loss_value = backward(loss, optimizer, diverged)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    norm = grad_norm(params, clip_grad_norm)
    if not math.isfinite(norm):
        raise diverged("the gradient norm", norm)
    optimizer.step()
    scheduler.step()
    return loss_value, norm


class StepBar:
    """A tqdm bar over optimizer steps that shows the smoothed loss, the learning rate and, with
    `speed`, the tokens per second of this call; extra fields (validation scores) join each step's."""

    def __init__(self, total: int, *, desc: str, enabled: bool, initial: int = 0, smoothing: float = 0.9,
                 lr_format: str = ".2e", speed: bool = True) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, initial=initial, disable=not enabled, desc=desc, unit="step")
        self.smoothing, self.lr_format, self.speed = smoothing, lr_format, speed
        self.smooth: float | None = None
        self.tokens, self.seconds = 0, 0.0
        self.postfix: dict[str, str] = {}

    def step(self, loss: float, lr: float, tokens: int, seconds: float) -> None:
        """Start a step's fields from its loss, learning rate, tokens and time."""
        a = self.smoothing
        self.smooth = loss if self.smooth is None else a * self.smooth + (1 - a) * loss
        self.tokens, self.seconds = self.tokens + tokens, self.seconds + seconds
        self.postfix = {"loss": f"{self.smooth:.3f}", "lr": f"{lr:{self.lr_format}}"}
        if self.speed:
            self.postfix["tok/s"] = f"{self.tokens / self.seconds:.0f}"

    def show(self, extra: dict[str, str] | None = None) -> None:
        """Add `extra` fields, show them and move the bar on by one step."""
        self.postfix.update(extra or {})
        self.bar.set_postfix(self.postfix, refresh=False)
        self.bar.update(1)

    def __enter__(self) -> StepBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()
