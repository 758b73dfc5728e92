"""Scaling and efficiency (Chapter 10): FLOPs and memory, scaling laws, quantisation, pruning,
distillation. Data-parallel training with ``torchrun`` is :mod:`lmcourse.distributed`."""

from lmcourse.scaling.distill import Distillation, distillation_loss
from lmcourse.scaling.flops import (TrainingMemory, gpt_forward_flops_per_token, gpt_matmul_parameters,
                                    gpt_training_flops_per_token, measured_flops, state_bytes,
                                    training_flops, training_memory, zero_bytes_per_device)
from lmcourse.scaling.laws import PowerLaw, chinchilla_optimal, compute_frontier, fit_power_law
from lmcourse.scaling.prune import SCOPES, finalize_pruning, magnitude_prune, sparsity
from lmcourse.scaling.quantize import (SCHEMES, block_round_trip, dequantize_int8, dynamic_int8,
                                       fake_quantize_linear_weights,
                                       linear_layers, q4_1_round_trip, quantize_int8, quantize_q4_1,
                                       serialized_bytes)
from lmcourse.scaling.sweep import SweepRun, run_sweep

__all__ = [
    # flops
    "training_flops", "gpt_matmul_parameters", "gpt_forward_flops_per_token", "gpt_training_flops_per_token",
    "measured_flops", "TrainingMemory", "training_memory", "zero_bytes_per_device", "state_bytes",
    # laws, sweep
    "PowerLaw", "fit_power_law", "compute_frontier", "chinchilla_optimal", "SweepRun", "run_sweep",
    # quantize
    "quantize_int8", "dequantize_int8", "quantize_q4_1", "q4_1_round_trip", "block_round_trip", "linear_layers",
    "fake_quantize_linear_weights", "dynamic_int8", "serialized_bytes", "SCHEMES",
    # prune
    "magnitude_prune", "finalize_pruning", "sparsity", "SCOPES",
    # distill
    "distillation_loss", "Distillation",
]
