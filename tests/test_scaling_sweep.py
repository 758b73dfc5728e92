"""lmcourse.scaling.sweep: each model of a sweep trained by the book's loop with one recipe, its
curve recorded in tokens and in FLOPs that the flop formula gives, and the recipe's requirements."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from lmcourse.gpt import GPTConfig
from lmcourse.scaling.flops import gpt_training_flops_per_token
from lmcourse.scaling.sweep import run_sweep
from lmcourse.train import TrainConfig

V = 16
STREAM = torch.arange(V).repeat(80)  # a stream a model can learn: each id is followed by the next
RECIPE = TrainConfig(lr=3e-3, batch_size=4, bptt=8, max_steps=30, eval_every=10, progress=False)
CONFIGS = [GPTConfig.tiny(V, emb_dim=16, num_layers=1), GPTConfig.tiny(V, emb_dim=32, num_layers=2)]


def test_each_model_is_trained_and_scored_as_it_trains():
    runs = run_sweep(CONFIGS, STREAM, STREAM[:200], RECIPE, keep_models=True)
    assert [r.name for r in runs] == ["1 x 16", "2 x 32"]
    for run, config in zip(runs, CONFIGS):
        assert run.tokens == [320, 640, 960]  # evaluations after steps 10, 20, 30 of 4 x 8 tokens
        assert run.valid_loss[-1] < run.valid_loss[0]
        assert run.flops.tolist() == [t * gpt_training_flops_per_token(config, 8) for t in run.tokens]
        assert run.num_parameters == run.model.num_parameters and run.seconds > 0
    assert runs[0].num_parameters < runs[1].num_parameters


def test_sweep_is_seeded_by_the_recipe():
    one = run_sweep(CONFIGS[:1], STREAM, STREAM[:200], RECIPE)
    two = run_sweep(CONFIGS[:1], STREAM, STREAM[:200], RECIPE)
    assert one[0].valid_loss == two[0].valid_loss and one[0].model is None


@pytest.mark.parametrize("recipe, message", [
    (dataclasses.replace(RECIPE, eval_every=None), "needs max_steps and eval_every"),
    (dataclasses.replace(RECIPE, bptt=64), "longer than the context"),
])
def test_bad_recipes(recipe, message):
    with pytest.raises(ValueError, match=message):
        run_sweep(CONFIGS, STREAM, STREAM[:200], recipe)
    with pytest.raises(ValueError, match="at least one"):
        run_sweep([], STREAM, STREAM[:200], RECIPE)
