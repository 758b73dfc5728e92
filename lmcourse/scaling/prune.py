"""Magnitude pruning: setting the smallest weights to zero. Chapter 10 (Scaling and efficiency)
explains it.

A trained network has many weights near zero; removing the smallest in magnitude (Han et al., 2015)
costs little quality up to a point, and a short fine-tune recovers part of the loss.
:func:`magnitude_prune` zeroes a fraction of the weights of :func:`~lmcourse.scaling.quantize.linear_layers`
(every ``nn.Linear`` but a tied output layer, which is the token embedding) with
``torch.nn.utils.prune``: either the smallest over all these layers together (``scope="global"``,
so layers with many small weights lose more) or the same fraction of each (``scope="layer"``).

Torch's pruning keeps the weight as ``weight_orig`` (the parameter the optimizer sees) and a 0/1
buffer ``weight_mask``, and recomputes ``weight = weight_orig * weight_mask`` before each forward
of the layer: a fine-tune after pruning keeps the zeros. :func:`finalize_pruning` makes the zeros
permanent (a plain ``weight`` again). :func:`sparsity` measures the fraction of zeros.

After a forward with gradients, the recomputed ``weight`` is part of a graph, and torch cannot
deep-copy such a model ("Only Tensors created explicitly by the user ... support the deepcopy
protocol"): finalise a fine-tuned model before anything copies it (:func:`magnitude_prune`,
:func:`~lmcourse.scaling.quantize.fake_quantize_linear_weights` and
:func:`~lmcourse.scaling.quantize.dynamic_int8` all do).

Left out: structured pruning (whole heads, neurons or layers, which alone make a dense model
faster), sparse storage and kernels (zeros in a dense tensor save neither memory nor time),
iterative prune-and-retrain schedules, and the lottery-ticket rewinding of Frankle & Carbin (2019).
"""

from __future__ import annotations

import copy

from torch import nn
from torch.nn.utils import prune

from lmcourse._checks import check_float
from lmcourse.scaling.quantize import linear_layers

__all__ = ["magnitude_prune", "finalize_pruning", "sparsity", "SCOPES"]

SCOPES = ("global", "layer")  # the smallest weights of all linear layers together, or of each


def _layers(model: nn.Module) -> list[nn.Linear]:
    layers = list(linear_layers(model).values())
    if not layers:
        raise ValueError(f"{type(model).__name__} has no nn.Linear layers to prune (a tied output layer "
                         f"counts as an embedding)")
    return layers


def magnitude_prune(model: nn.Module, sparsity: float, scope: str = "global") -> nn.Module:
    """A deep copy of `model` with the fraction `sparsity` (in [0, 1)) of its linear weights, the
    smallest in absolute value, set to zero, over all linear layers (``scope="global"``) or in each
    (``"layer"``). The masks stay in place (see the module docstring); `model` is untouched.

    >>> from lmcourse.gpt import GPT, GPTConfig
    >>> pruned = magnitude_prune(GPT(GPTConfig.tiny(vocab_size=10)), 0.5)
    >>> sparsity(pruned)
    0.5
    """
    check_float("sparsity", sparsity, 0.0, 1.0, high_open=True)
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; choose one of {', '.join(map(repr, SCOPES))}")
    pruned = copy.deepcopy(model)
    layers = _layers(pruned)
    if scope == "global":
        prune.global_unstructured([(layer, "weight") for layer in layers], prune.L1Unstructured,
                                  amount=float(sparsity))
    else:
        for layer in layers:
            prune.l1_unstructured(layer, "weight", amount=float(sparsity))
    for layer in layers:
        layer.weight = layer.weight.detach()  # no graph kept from pruning, so the copy deep-copies
    return pruned


def finalize_pruning(model: nn.Module) -> nn.Module:
    """Make every pruning of `model` permanent, in place (``prune.remove``): each pruned tensor
    becomes a plain parameter again, holding ``orig * mask``. Returns `model`; a model without
    masks is returned unchanged."""
    for module in model.modules():
        names = [n[:-len("_orig")] for n, _ in module.named_parameters(recurse=False) if n.endswith("_orig")]
        for name in names:
            if hasattr(module, name + "_mask"):
                prune.remove(module, name)
    return model


def sparsity(model: nn.Module) -> float:
    """The fraction of zero entries among the weights of the linear layers (masked ones included).

    >>> import torch
    >>> layer = nn.Linear(2, 2)
    >>> with torch.no_grad():
    ...     _ = layer.weight.copy_(torch.tensor([[0.0, 1.0], [2.0, 0.0]]))
    >>> sparsity(nn.Sequential(layer))
    0.5
    """
    weights = [layer.weight for layer in _layers(model)]
    zeros = sum(int((w == 0).sum()) for w in weights)
    return zeros / sum(w.numel() for w in weights)
