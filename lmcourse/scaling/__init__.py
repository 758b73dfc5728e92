"""Scaling and efficiency (Chapter 10): FLOPs and memory, scaling laws, quantisation, pruning,
distillation. Data-parallel training with ``torchrun`` is :mod:`lmcourse.distributed`."""

from lmcourse.scaling.distill import Distillation, distillation_loss
from lmcourse.scaling.prune import SCOPES, finalize_pruning, magnitude_prune, sparsity
from lmcourse.scaling.quantize import (SCHEMES, dequantize_int8, dynamic_int8, fake_quantize_linear_weights,
                                       linear_layers, q4_1_round_trip, quantize_int8, quantize_q4_1,
                                       serialized_bytes)

__all__ = [
    # quantize
    "quantize_int8", "dequantize_int8", "quantize_q4_1", "q4_1_round_trip", "linear_layers",
    "fake_quantize_linear_weights", "dynamic_int8", "serialized_bytes", "SCHEMES",
    # prune
    "magnitude_prune", "finalize_pruning", "sparsity", "SCOPES",
    # distill
    "distillation_loss", "Distillation",
]
