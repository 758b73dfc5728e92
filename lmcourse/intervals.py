"""Intervals for the book's scores: a bootstrap over units of text (bits per character of test
paragraphs) or over examples (a pass/fail rate), alone or paired between two models.

Resampling the units with replacement and recomputing the score answers "how much would this number
move on another test set drawn like this one?". A *paired* bootstrap resamples the same units for both
models, so what the units share (a hard paragraph is hard for both) cancels. Percentile intervals;
left out: BCa corrections and units that depend on each other. A single pass/fail rate gets Wilson's
interval instead, which a bootstrap cannot replace at 0% or 100%. :mod:`lmcourse.metrics` re-exports
every public function here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from statistics import NormalDist

import numpy as np

from lmcourse._checks import check_positive_int

__all__ = ["bootstrap_bpc", "paired_bootstrap", "rate_interval", "paired_rate_difference", "mean_interval",
           "paired_mean_difference", "statistic_interval"]


def _units(nll: Sequence[float] | np.ndarray, num_chars: Sequence[int] | np.ndarray, resamples: int,
           confidence: float, *others: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check one entry per unit of text in every array; return them as floats."""
    arrays = [np.asarray(a, dtype=float) for a in (nll, *others)]
    chars = np.asarray(num_chars, dtype=float)
    if any(a.ndim != 1 or a.size == 0 or a.shape != chars.shape for a in arrays):
        shapes = " and ".join(str(a.shape) for a in (*arrays, chars))
        raise ValueError(f"the nll arrays and num_chars must be 1-D, non-empty and of one length (one entry per "
                         f"unit of text), got shapes {shapes}")
    if np.any(chars < 0) or chars.sum() <= 0:
        raise ValueError("num_chars must be >= 0 for every unit and add up to more than 0")
    if any(not np.all(np.isfinite(a)) for a in arrays):
        raise ValueError("the nll arrays hold inf or nan: a model gave some unit probability 0 (smooth it)")
    return np.stack(arrays), chars


def _ratio_interval(numerator: np.ndarray, denominator: np.ndarray, resamples: int, confidence: float,
                    seed: int) -> tuple[float, float, float]:
    """``sum(numerator) / sum(denominator)`` over the units and its percentile bootstrap interval."""
    check_positive_int("resamples", resamples)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), e.g. 0.95, got {confidence}")
    picks = np.random.default_rng(seed).integers(0, numerator.size, size=(resamples, numerator.size))  # (R, U)
    resampled = numerator[picks].sum(axis=1) / np.maximum(denominator[picks].sum(axis=1), 1)  # (R,)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(resampled, [tail, 100 - tail])
    return float(numerator.sum() / denominator.sum()), float(low), float(high)


def _percentile_interval(nll: np.ndarray, chars: np.ndarray, resamples: int, confidence: float,
                         seed: int) -> tuple[float, float, float]:
    """Bits per character of the summed units and its percentile bootstrap interval."""
    ratio, low, high = _ratio_interval(nll, chars, resamples, confidence, seed)
    return ratio / math.log(2), low / math.log(2), high / math.log(2)


def bootstrap_bpc(unit_nll: Sequence[float] | np.ndarray, num_chars: Sequence[int] | np.ndarray,
                  resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """Bits per character of a text cut into units, with a bootstrap interval: (bpc, low, high).

    ``unit_nll[i]`` is the model's negative log-likelihood of unit i (a test paragraph) in nats,
    ``num_chars[i]`` its characters. Each resample draws as many units with replacement; the
    interval holds the middle `confidence` of the resampled scores (percentile bootstrap). It
    answers: how much would this number move on another test set of such paragraphs? Two models'
    intervals can overlap while one is consistently better: rank a pair with
    :func:`paired_bootstrap`. Left out: units that depend on each other (paragraphs of one article).

    >>> bpc, low, high = bootstrap_bpc([10.0, 20.0, 30.0, 40.0], [10, 10, 10, 10])
    >>> round(bpc * math.log(2), 6), low < bpc < high
    (2.5, True)
    """
    arrays, chars = _units(unit_nll, num_chars, resamples, confidence)
    return _percentile_interval(arrays[0], chars, resamples, confidence, seed)


def paired_bootstrap(nll_a: Sequence[float] | np.ndarray, nll_b: Sequence[float] | np.ndarray,
                     num_chars: Sequence[int] | np.ndarray, resamples: int = 1000, confidence: float = 0.95,
                     seed: int = 0) -> tuple[float, float, float]:
    """Bits per character of model a minus model b, with a paired bootstrap interval: (difference, low, high).

    The text is cut into units (documents or paragraphs): ``nll_a[i]`` and ``nll_b[i]`` are the two
    models' negative log-likelihoods of unit i in nats, ``num_chars[i]`` its characters. Each of
    `resamples` resamples draws units with replacement, *the same units for both models*, so what
    the units share (a hard paragraph is hard for both) cancels and the interval measures only how
    consistently one model beats the other. The interval is the percentile one; an interval that
    excludes 0 says the ranking is not an accident of which units were tested. Chapter 6 ranks its
    GPT against a trigram with it. Left out: BCa corrections, units that depend on each other.

    >>> paired_bootstrap([3.0, 5.0, 4.0], [2.0, 4.0, 3.0], [1, 1, 1])[0] * math.log(2)  # doctest: +ELLIPSIS
    1.0...
    """
    arrays, chars = _units(nll_a, num_chars, resamples, confidence, nll_b)
    return _percentile_interval(arrays[0] - arrays[1], chars, resamples, confidence, seed)  # (U,) a pays more than b


def _hits(hits: Sequence[bool] | np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(hits)
    if array.ndim != 1 or array.size == 0 or not np.isin(array, (0, 1)).all():
        raise ValueError(f"{name} must be a non-empty 1-D sequence of booleans (one per example), got shape "
                         f"{array.shape}" + ("" if array.ndim != 1 or array.size == 0 else " with values other than 0/1"))
    return array.astype(float)


def rate_interval(hits: Sequence[bool] | np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """The share of examples a model got right, with Wilson's score interval: (rate, low, high).

    Not a bootstrap: resampling 0 successes (or all) gives 0 (or all) every time, an interval of
    width zero, while Wilson's interval stays honest at the ends (24 of 24 right: 0.86 to 1).

    >>> rate, low, high = rate_interval([True] * 24)
    >>> rate, round(low, 3), high
    (1.0, 0.862, 1.0)
    >>> rate_interval([True] * 86)[2]  # not 0.9999999999999999
    1.0
    """
    values = _hits(hits, "hits")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), e.g. 0.95, got {confidence}")
    n, rate = values.size, float(values.mean())
    z = NormalDist().inv_cdf(0.5 + confidence / 2)  # the normal quantile: 1.96 for 0.95
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n))
    # the interval holds the rate exactly: at 0% or 100% rounding could leave an end a hair inside it
    return rate, min(rate, max(0.0, centre - half)), max(rate, min(1.0, centre + half))


def paired_rate_difference(hits_a: Sequence[bool] | np.ndarray, hits_b: Sequence[bool] | np.ndarray,
                           resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """Rate of model a minus rate of model b on the same examples, with a paired bootstrap interval
    (the same resampled examples for both): (difference, low, high), as :func:`paired_bootstrap`.

    >>> paired_rate_difference([1, 1, 1, 0], [0, 1, 0, 0])[0]
    0.5
    """
    a, b = _hits(hits_a, "hits_a"), _hits(hits_b, "hits_b")
    if a.shape != b.shape:
        raise ValueError(f"hits_a and hits_b must score the same examples, got {a.size} and {b.size}")
    return _ratio_interval(a - b, np.ones_like(a), resamples, confidence, seed)


def _scores(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size == 0 or not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be a non-empty 1-D sequence of finite numbers (one per example), got "
                         f"shape {array.shape}")
    return array


def mean_interval(values: Sequence[float] | np.ndarray, resamples: int = 1000, confidence: float = 0.95,
                  seed: int = 0) -> tuple[float, float, float]:
    """The mean of a per-example score (a query's reciprocal rank, its recall@k) with a percentile
    bootstrap interval over the examples: (mean, low, high).

    >>> mean_interval([1.0, 0.5, 0.0, 0.5])[0]
    0.5
    """
    array = _scores(values, "values")
    return _ratio_interval(array, np.ones_like(array), resamples, confidence, seed)


def paired_mean_difference(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, resamples: int = 1000,
                           confidence: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """Mean score of method a minus that of method b on the same examples, with a paired bootstrap
    interval: (difference, low, high). :func:`paired_rate_difference` is the case of 0/1 scores.

    >>> paired_mean_difference([1.0, 0.5, 1.0], [0.5, 0.5, 0.0])[0]
    0.5
    """
    first, second = _scores(a, "a"), _scores(b, "b")
    if first.shape != second.shape:
        raise ValueError(f"a and b must score the same examples, got {first.size} and {second.size}")
    return _ratio_interval(first - second, np.ones_like(first), resamples, confidence, seed)


def statistic_interval(statistic: Callable[..., float], *samples: Sequence[float] | np.ndarray, resamples: int = 1000,
                       confidence: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """Any score computed from paired per-example arrays (F1 from labels and predictions), with a
    percentile bootstrap interval over the examples from ``scipy.stats.bootstrap``: (score, low, high).
    For a score that is not a mean of per-example numbers, such as F1 or a corpus-level ratio.

    >>> from lmcourse.metrics import f1_score
    >>> statistic_interval(f1_score, [1, 1, 0, 0], [1, 0, 1, 0])[0]
    0.5
    """
    from scipy.stats import bootstrap

    check_positive_int("resamples", resamples)
    arrays = [np.asarray(s) for s in samples]
    if not arrays or any(a.ndim != 1 or a.size == 0 for a in arrays) or len({a.size for a in arrays}) > 1:
        raise ValueError(f"samples must be one or more non-empty 1-D arrays of the same length (one entry per "
                         f"example), got shapes {[a.shape for a in arrays]}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence!r}")
    value = float(statistic(*arrays))
    result = bootstrap(arrays, lambda *resampled: float(statistic(*resampled)), paired=True, vectorized=False,
                       n_resamples=resamples, confidence_level=confidence, method="percentile",
                       random_state=np.random.default_rng(seed))
    return value, float(result.confidence_interval.low), float(result.confidence_interval.high)
