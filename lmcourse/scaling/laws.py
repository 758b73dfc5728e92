"""Scaling laws: fitting a power law to losses, and the compute-optimal split of a FLOP budget.
Chapter 10 (Scaling and efficiency) explains it.

Kaplan et al. (2020) found that a language model's test loss falls as a power of its compute,
parameters or data when the other two do not limit it: ``L(C) = a C^(-b)``, a straight line on
log-log axes. :func:`fit_power_law` fits that line by least squares on the logarithms and reports
the exponent's standard error and the relative error of the fit. :func:`compute_frontier` picks,
from many training curves, the lowest loss reached at each compute. Hoffmann et al. (2022,
"Chinchilla") found that a compute-optimal model sees about 20 tokens per parameter;
:func:`chinchilla_optimal` splits a budget ``C = 6 N D`` that way.

Left out: the irreducible-loss term ``E`` of Hoffmann et al.'s ``L(N, D) = E + A/N^alpha + B/D^beta``
(a pure power law is a fair description only over a range where the loss is far above ``E``), and
the learning-rate schedule matched to each budget that their fits assume.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["PowerLaw", "fit_power_law", "compute_frontier", "chinchilla_optimal"]


@dataclass(frozen=True)
class PowerLaw:
    """``y = coefficient * x ** (-exponent)``, with the fit's uncertainty."""

    coefficient: float
    exponent: float
    exponent_stderr: float  # standard error of the exponent from the least-squares fit
    relative_rms_error: float  # root-mean-square of (observed / fitted - 1) over the points
    num_points: int

    def __call__(self, x: float | np.ndarray) -> float | np.ndarray:
        return self.coefficient * np.asarray(x, dtype=float) ** (-self.exponent)

    def solve(self, y: float) -> float:
        """The ``x`` at which the law predicts `y`."""
        return (self.coefficient / y) ** (1.0 / self.exponent)


def fit_power_law(x: Sequence[float], y: Sequence[float]) -> PowerLaw:
    """Least squares of ``log y = log a - b log x``: a straight line on log-log axes.

    >>> law = fit_power_law([1, 10, 100, 1000], [8.0, 4.0, 2.0, 1.0])  # halves per decade
    >>> round(law.exponent, 4), round(law.coefficient, 3), law.relative_rms_error < 1e-9
    (0.301, 8.0, True)
    """
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if xs.shape != ys.shape or xs.ndim != 1:
        raise ValueError(f"x and y must be 1-D and of the same length, got shapes {xs.shape} and {ys.shape}")
    if len(xs) < 3:
        raise ValueError(f"a power-law fit with an uncertainty needs at least 3 points, got {len(xs)}")
    if (xs <= 0).any() or (ys <= 0).any():
        raise ValueError("a power law is fitted on logarithms: every x and y must be > 0")
    lx, ly = np.log(xs), np.log(ys)
    slope, intercept = np.polyfit(lx, ly, 1)
    residuals = ly - (intercept + slope * lx)
    variance = residuals @ residuals / (len(xs) - 2)  # of the residuals, 2 parameters fitted
    slope_stderr = math.sqrt(variance / ((lx - lx.mean()) @ (lx - lx.mean())))
    relative = np.exp(residuals) - 1
    return PowerLaw(math.exp(intercept), -float(slope), slope_stderr, float(np.sqrt(np.mean(relative ** 2))), len(xs))


def compute_frontier(compute: Sequence[float], loss: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The points no other point beats: sorted by compute, each with a lower loss than every
    point of less compute. From a sweep's curves, this is the best loss each budget bought.

    >>> compute_frontier([1, 2, 3, 4], [5.0, 6.0, 4.0, 4.5])
    (array([1., 3.]), array([5., 4.]))
    """
    cs, ls = np.asarray(compute, dtype=float), np.asarray(loss, dtype=float)
    if cs.shape != ls.shape or cs.ndim != 1 or len(cs) == 0:
        raise ValueError(f"compute and loss must be non-empty 1-D sequences of one length, got {cs.shape}, {ls.shape}")
    order = np.lexsort((ls, cs))
    keep, best = [], math.inf
    for i in order:
        if ls[i] < best:
            keep.append(i)
            best = ls[i]
    return cs[keep], ls[keep]


def chinchilla_optimal(compute: float, tokens_per_parameter: float = 20.0) -> tuple[float, float]:
    """Parameters and tokens ``(N, D)`` with ``6 N D = compute`` and ``D = tokens_per_parameter * N``.

    >>> n, d = chinchilla_optimal(5.76e23)  # Chinchilla's budget: about 70B parameters, 1.4T tokens
    >>> f"{n:.2e} {d:.2e}"
    '6.93e+10 1.39e+12'
    """
    if compute <= 0 or tokens_per_parameter <= 0:
        raise ValueError(f"compute and tokens_per_parameter must be > 0, got {compute}, {tokens_per_parameter}")
    n = math.sqrt(compute / (6.0 * tokens_per_parameter))
    return n, tokens_per_parameter * n
