"""The training loop over separate examples (sequence pairs, masked sentences, labelled texts)
rather than one token stream: :func:`train_on_examples`, behind :mod:`lmcourse.seq2seq`
(Chapter 4a), :mod:`lmcourse.mlm` and :mod:`lmcourse.classify` (Chapter 5).

It makes the same update as :func:`lmcourse.train.train` (:func:`lmcourse.trainstep.update`) and
records into the same :class:`~lmcourse.trainstate.History`. Left out: early stopping,
checkpoints and resuming (:func:`check_example_config`), since these runs take minutes.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from lmcourse._torch import kept_mode
from lmcourse.trainstate import History, TrainConfig
from lmcourse.trainstep import StepBar, make_optimizer, make_scheduler, run_steps, update

__all__ = ["bucketed_batches", "check_example_config", "train_on_examples"]


def bucketed_batches(lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Indices cut into batches of similar length, in random order: shuffle, sort pools of 50
    batches by length, cut, shuffle the batches. Little time then goes into padding.

    >>> batches = bucketed_batches([1, 9, 2, 8, 1, 9], 2, random.Random(0))
    >>> sorted(sorted(b) for b in batches)  # every index once; short with short, long with long
    [[0, 4], [1, 5], [2, 3]]
    """
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = 50 * batch_size
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start:start + pool], key=lengths.__getitem__)
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def check_example_config(config: Any, who: str) -> None:
    """Refuse what :func:`train_on_examples` leaves out: early stopping, checkpoints and resuming."""
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    for name in ("patience", "checkpoint", "resume"):
        if getattr(config, name) is not None:
            raise ValueError(f"{who} does not support {name} (it trains for minutes); set {name}=None")


def _epoch_batches(num_examples: int, batch_size: int, lengths: Sequence[int] | None,
                   rng: random.Random) -> list[list[int]]:
    """One epoch's batches of example indices, shuffled by `rng` (by similar length if given)."""
    if lengths is not None:
        return bucketed_batches(lengths, batch_size, rng)
    order = list(range(num_examples))
    rng.shuffle(order)
    return [order[i:i + batch_size] for i in range(0, num_examples, batch_size)]


def train_on_examples(model: nn.Module, num_examples: int, config: TrainConfig,
                      batch_loss: Callable[[list[int]], tuple[torch.Tensor, int]], *,
                      history: History | None = None, validate: Callable[[int], dict[str, str]] | None = None,
                      lengths: Sequence[int] | None = None, desc: str = "train") -> History:
    """Train on `num_examples` separate examples rather than one stream.

    Seeds torch with ``config.seed`` (for dropout) and shuffles the example indices every epoch
    (``random.Random(config.seed)``), cut into batches of ``config.batch_size`` (of similar
    `lengths` if given: :func:`bucketed_batches`). Each batch's ``batch_loss(indices) -> (loss,
    tokens)`` is minimised with the optimizer, schedule and clipping of `config`;
    ``validate(step)``, which records into `history` (:meth:`History.add_evaluation`) and returns
    progress-bar fields, runs every ``eval_every`` steps and at the end. ``config.stop_after`` ends the
    run early with the schedule unchanged: its steps are exactly the full run's first ones.

    >>> weight = nn.Parameter(torch.zeros(1))
    >>> model = nn.Module(); model.weight = weight
    >>> targets = torch.linspace(1, 3, 8)  # 8 examples; the best weight is their mean, 2
    >>> loss = lambda idx: (((weight - targets[idx]) ** 2).mean(), len(idx))
    >>> cfg = TrainConfig(lr=0.1, batch_size=4, epochs=50, progress=False)
    >>> history = train_on_examples(model, 8, cfg, loss)
    >>> history.steps, history.epochs_completed, round(float(weight.detach()), 1)
    (100, 50, 2.0)
    """
    start_time = time.perf_counter()
    check_example_config(config, desc)
    history = history if history is not None else History()
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    total_steps = run_steps(config, math.ceil(num_examples / config.batch_size))
    optimizer = make_optimizer(model, config)
    scheduler = make_scheduler(optimizer, config, total_steps)
    step, queue, lr = 0, [], config.lr

    def diverged(what: str, value: float) -> FloatingPointError:
        return FloatingPointError(f"training diverged: {what} is {value} at step {step + 1}; lower the "
                                  f"learning rate (lr={lr:.3g}), add warmup_steps or clip gradients")

    end = min(total_steps, config.stop_after or total_steps)  # the schedule still runs to total_steps
    bar = StepBar(end, desc=desc, enabled=config.progress, smoothing=0.95, lr_format=".1e", speed=False)
    with kept_mode(model), bar:
        model.train()
        while step < end:
            if not queue:
                if step:
                    history.epochs_completed += 1
                queue = _epoch_batches(num_examples, config.batch_size, lengths, rng)
            t0 = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            loss, tokens = batch_loss(queue.pop())
            loss_value, norm = update(loss, optimizer, scheduler, config.clip_grad_norm, diverged)
            step += 1
            history.add_step(loss_value, lr, norm, tokens, time.perf_counter() - t0)
            bar.step(loss_value, lr, tokens, 0.0)
            due = (config.eval_every and step % config.eval_every == 0) or step == end
            bar.show(validate(step) if validate is not None and due else None)
    if not queue:
        history.epochs_completed += 1
    history.total_seconds = time.perf_counter() - start_time
    return history
