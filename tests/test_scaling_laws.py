"""lmcourse.scaling.laws: the power-law fit recovers known exponents (with an honest standard error
against scipy's curve fit), the frontier keeps only unbeaten points, and Chinchilla's split."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import curve_fit

from lmcourse.scaling.laws import chinchilla_optimal, compute_frontier, fit_power_law


@pytest.mark.parametrize("exponent", [0.05, 0.3, 1.0])
def test_exact_power_law_is_recovered(exponent):
    x = np.logspace(10, 16, 7)
    law = fit_power_law(x, 3.0 * x ** -exponent)
    assert law.exponent == pytest.approx(exponent, abs=1e-12)
    assert law.coefficient == pytest.approx(3.0, rel=1e-9)
    assert law.exponent_stderr < 1e-10 and law.relative_rms_error < 1e-12
    assert law(1e12) == pytest.approx(3.0 * 1e12 ** -exponent)
    assert law.solve(float(law(1e13))) == pytest.approx(1e13, rel=1e-9)


def test_noisy_fit_matches_scipy_in_log_space():
    rng = np.random.default_rng(0)
    x = np.logspace(12, 15, 12)
    y = 5.0 * x ** -0.07 * np.exp(rng.normal(0, 0.01, size=x.size))
    law = fit_power_law(x, y)
    (log_a, b), cov = curve_fit(lambda lx, la, bb: la - bb * lx, np.log(x), np.log(y))
    assert law.exponent == pytest.approx(b, rel=1e-6)
    assert law.coefficient == pytest.approx(math.exp(log_a), rel=1e-6)
    assert law.exponent_stderr == pytest.approx(math.sqrt(cov[1, 1]), rel=1e-4)
    assert abs(law.exponent - 0.07) < 4 * law.exponent_stderr  # the error bar covers the truth
    assert 0.003 < law.relative_rms_error < 0.02


@pytest.mark.parametrize("x, y, message", [
    ([1, 2], [1, 2], "at least 3 points"),
    ([1, 2, 3], [1, 2], "same length"),
    ([1, 0, 3], [1, 2, 3], "must be > 0"),
    ([1, 2, 3], [1, -2, 3], "must be > 0"),
])
def test_fit_errors(x, y, message):
    with pytest.raises(ValueError, match=message):
        fit_power_law(x, y)


def test_frontier_keeps_the_lower_envelope():
    rng = np.random.default_rng(1)
    compute, loss = rng.uniform(1, 100, 200), rng.uniform(1, 10, 200)
    fc, fl = compute_frontier(compute, loss)
    assert np.all(np.diff(fc) > 0) and np.all(np.diff(fl) < 0)
    for c, l in zip(compute, loss):  # no point beats the frontier at its own compute
        assert l >= fl[fc <= c].min()
    with pytest.raises(ValueError, match="non-empty"):
        compute_frontier([], [])


def test_chinchilla_split():
    n, d = chinchilla_optimal(6 * 1e9 * 20e9)
    assert n == pytest.approx(1e9) and d == pytest.approx(20e9)
    n, d = chinchilla_optimal(6e12, tokens_per_parameter=5)
    assert 6 * n * d == pytest.approx(6e12) and d / n == pytest.approx(5)
    with pytest.raises(ValueError, match="must be > 0"):
        chinchilla_optimal(0)
