"""Tests for lmcourse._hf, the one bridge to Hugging Face checkpoints: stacking and transposing by
a table, every problem reported at once before anything is copied, and tables that must cover
the model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lmcourse._hf import Weight, export_weights, load_weights, per_layer


class Pair(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(3, 4) for _ in range(2))


TABLE = per_layer([Weight("layers.{i}.weight", ("h.{i}.q", "h.{i}.k"), transpose=True, dims=("width",)),
                   Weight("layers.{i}.bias", ("h.{i}.b",))], 2)


def test_export_then_load_is_exact_with_stacked_and_transposed_pieces():
    torch.manual_seed(0)
    source, target = Pair(), Pair()
    sd = export_weights(source, TABLE)
    assert sd["h.0.q"].shape == (3, 2) and torch.equal(sd["h.0.q"], source.layers[0].weight[:2].t())
    load_weights(target, TABLE, sd, sizes={})
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), target.state_dict().values()))


def test_every_problem_is_listed_and_nothing_is_copied():
    torch.manual_seed(0)
    target = Pair()
    before = {k: v.clone() for k, v in target.state_dict().items()}
    sd = export_weights(Pair(), TABLE)
    del sd["h.1.b"]
    sd["h.0.q"] = torch.zeros(2, 3)  # transposed
    sd["h.0.k"] = torch.zeros(5, 2)
    sd["extra"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"(?s)'h.0.q' has shape \(2, 3\).*stored transposed"
                                         r".*'h.0.k' has shape \(5, 2\).*width probably differs"
                                         r" \(the model has width=3\)"
                                         r".*lacks 1 tensor\(s\) the model needs: h.1.b"
                                         r".*has 1 tensor\(s\) the model has no place for: extra"):
        load_weights(target, TABLE, sd, sizes={"width": 3})
    assert all(torch.equal(v, target.state_dict()[k]) for k, v in before.items())


def test_a_table_must_cover_the_model():
    with pytest.raises(RuntimeError, match="does not fit it: not covered layers.0.bias$"):
        export_weights(Pair(), TABLE[:1] + TABLE[2:])
    with pytest.raises(RuntimeError, match="unknown layers.9.bias"):
        export_weights(Pair(), [*TABLE, Weight("layers.9.bias", ("x",))])
