"""A scaling sweep: GPTs of several sizes trained with one recipe, each scored as it trains.
Chapter 10 (Scaling and efficiency) runs it.

Every model is trained by the book's one loop (:func:`lmcourse.train.train`) with the same
:class:`~lmcourse.train.TrainConfig`; its validation loss, scored every ``eval_every`` steps, gives a
whole curve of loss against training tokens from one run, and the exact training FLOPs per token
(:func:`lmcourse.scaling.flops.gpt_training_flops_per_token`) turn tokens into compute. Use a
constant learning rate after warm-up for such a sweep: with a cosine decay, the early points of a
long run would be scored at a high learning rate that a shorter run would already have decayed,
which is the comparison Hoffmann et al. (2022) warn about; a constant rate treats all points alike
(and leaves every point a little above what a schedule tuned to its length would reach).

Left out: tuning the learning rate per size (Kaplan et al. 2020 did), and repeating runs with
other seeds (the chapter measures that noise separately).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from lmcourse.gpt import GPT, GPTConfig
from lmcourse.scaling.flops import gpt_training_flops_per_token
from lmcourse.train import TrainConfig, train

__all__ = ["SweepRun", "run_sweep"]


@dataclass
class SweepRun:
    """One model of a sweep: its size, its validation curve and what it cost."""

    config: GPTConfig
    num_parameters: int
    flops_per_token: int  # training FLOPs per token (forward and backward, attention included)
    tokens: list[int]  # training tokens seen at each evaluation
    valid_loss: list[float]  # mean nats per validation token at each evaluation
    seconds: float  # wall-clock training time, evaluations excluded
    model: GPT | None = field(default=None, repr=False)  # the trained model, if kept

    @property
    def flops(self) -> np.ndarray:
        """Training compute at each evaluation, in FLOPs."""
        return np.asarray(self.tokens, dtype=float) * self.flops_per_token

    @property
    def name(self) -> str:
        return f"{self.config.num_layers} x {self.config.emb_dim}"


def run_sweep(configs: Sequence[GPTConfig], train_stream: torch.Tensor, valid_stream: torch.Tensor,
              recipe: TrainConfig, keep_models: bool = False, device: torch.device | str = "cpu") -> list[SweepRun]:
    """Train one GPT per configuration with `recipe` (seeded by ``recipe.seed``) on `device` and record
    its curve.

    `recipe` needs ``max_steps`` and ``eval_every``; ``recipe.bptt`` must fit the models' context.
    """
    if not configs:
        raise ValueError("run_sweep needs at least one GPTConfig")
    if recipe.max_steps is None or recipe.eval_every is None:
        raise ValueError("a sweep's recipe needs max_steps and eval_every, to score each model as it trains")
    runs = []
    for config in configs:
        if recipe.bptt > config.context_length:
            raise ValueError(f"recipe.bptt={recipe.bptt} is longer than the context of {config}")
        torch.manual_seed(recipe.seed)
        model = GPT(config).to(device)
        history = train(model, train_stream, valid_stream, recipe)
        tokens_per_step = recipe.batch_size * recipe.bptt
        runs.append(SweepRun(
            config=config, num_parameters=model.num_parameters,
            flops_per_token=gpt_training_flops_per_token(config, recipe.bptt),
            tokens=[step * tokens_per_step for step in history.eval_steps], valid_loss=list(history.valid_loss),
            seconds=history.train_seconds,
            model=model if keep_models else None))
    return runs
