"""PyTorch helpers shared across the package: a model's device and a scoped eval mode.

Private to ``lmcourse`` (imports nothing else from it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

__all__ = ["model_device", "eval_mode", "kept_mode"]


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without parameters)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


@contextlib.contextmanager
def kept_mode(model: nn.Module) -> Iterator[None]:
    """Restore the model's train/eval mode on leaving, whatever happened inside."""
    was_training = model.training
    try:
        yield
    finally:
        model.train(was_training)


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode (no dropout) and no gradients inside; the previous mode afterwards."""
    with kept_mode(model):
        model.eval()
        with torch.no_grad():
            yield
