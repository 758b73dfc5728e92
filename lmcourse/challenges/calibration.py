"""Calibration: does a model that says "90% sure" get 90% right? Chapter 11 (Challenges) explains it.

Each answer has a *confidence* in [0, 1] (the probability the model gave its answer) and an outcome
(right or wrong). Cut [0, 1] into equal-width bins and compare, in each bin, the share of answers
that were right (the *accuracy*) with their mean confidence: :func:`reliability_table` gives the
rows of a reliability diagram. The *expected calibration error* (Naeini et al., 2015; Guo et al.,
2017) averages the gaps, each weighted by its bin's share of the answers:

    ECE = sum over non-empty bins b of (n_b / n) * |accuracy_b - mean confidence_b|.

Bins are closed on the left, ``[low, high)``: a confidence exactly on an inner edge joins the bin
that starts there, 0.0 the first bin, and 1.0 the last (which is closed on both sides). Guo et al.'s
code uses ``(low, high]`` instead; only confidences exactly on an edge can land differently.

A question answered "I don't know" is neither right nor wrong: :func:`is_abstention` recognises the
usual ways a chat model declines, so that correct, wrong and abstained answers can be counted apart
and calibration measured on the answers actually given.

Left out: equal-mass (adaptive) bins, the maximum calibration error, classwise calibration over
every label rather than the chosen answer, and recalibration such as temperature scaling.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lmcourse._checks import check_positive_int

__all__ = ["CalibrationBin", "reliability_table", "expected_calibration_error", "is_abstention"]

# Phrases with which a chat model declines to answer, matched case-insensitively as whole words.
_ABSTENTION = re.compile(r"\b(i don'?t know|i do not know|not known|unknown|i'?m not sure|i am not sure|"
                         r"i cannot (answer|provide|determine)|i can'?t (answer|provide|determine)|"
                         r"i'?m sorry|i am sorry|no information|not (mentioned|stated|provided) in)\b",
                         re.IGNORECASE)


@dataclass(frozen=True)
class CalibrationBin:
    """One row of a reliability diagram: the answers whose confidence lies in ``[low, high)``."""

    low: float
    high: float
    count: int  # answers in the bin
    accuracy: float  # share of them that were right; nan in an empty bin
    mean_confidence: float  # their mean confidence; nan in an empty bin


def _check_answers(confidences: Sequence[float] | np.ndarray, correct: Sequence[bool] | np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    conf, right = np.asarray(confidences, dtype=float), np.asarray(correct)
    if conf.ndim != 1 or right.ndim != 1 or conf.size == 0 or conf.shape != right.shape:
        raise ValueError(f"confidences and correct must be non-empty 1-D sequences of one length (one entry per "
                         f"answer), got shapes {conf.shape} and {right.shape}")
    if not np.all((conf >= 0) & (conf <= 1)):  # also refuses nan
        bad = conf[~((conf >= 0) & (conf <= 1))][0]
        raise ValueError(f"confidences must be probabilities in [0, 1], got {bad}")
    if not np.isin(right, (0, 1)).all():
        raise ValueError("correct must hold booleans (or 0 and 1): whether each answer was right")
    return conf, right.astype(float)


def _bin_index(conf: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """The edges ``(bins + 1,)`` and each confidence's bin ``(n,)``: bins ``[low, high)``, 1.0 in the last."""
    check_positive_int("bins", bins)
    edges = np.arange(bins + 1) / bins  # k / bins exactly as the literal would round: 0.3 is 3 / 10
    return edges, np.minimum(np.searchsorted(edges, conf, side="right") - 1, bins - 1)


def reliability_table(confidences: Sequence[float] | np.ndarray, correct: Sequence[bool] | np.ndarray,
                      bins: int = 10) -> list[CalibrationBin]:
    """The rows of a reliability diagram: one :class:`CalibrationBin` per equal-width bin of [0, 1],
    empty bins included (count 0, accuracy and mean confidence nan).

    >>> rows = reliability_table([0.2, 0.4, 0.6, 0.9], [True, False, True, True], bins=2)
    >>> [(r.low, r.high, r.count, r.accuracy, round(r.mean_confidence, 6)) for r in rows]
    [(0.0, 0.5, 2, 0.5, 0.3), (0.5, 1.0, 2, 1.0, 0.75)]
    """
    conf, right = _check_answers(confidences, correct)
    edges, index = _bin_index(conf, bins)
    rows = []
    for b in range(bins):
        inside = index == b
        count = int(inside.sum())
        accuracy = float(right[inside].mean()) if count else float("nan")
        mean_confidence = float(conf[inside].mean()) if count else float("nan")
        rows.append(CalibrationBin(float(edges[b]), float(edges[b + 1]), count, accuracy, mean_confidence))
    return rows


def expected_calibration_error(confidences: Sequence[float] | np.ndarray, correct: Sequence[bool] | np.ndarray,
                               bins: int = 10) -> float:
    """The expected calibration error over `bins` equal-width bins: 0 for a calibrated model, at most 1.

    >>> round(expected_calibration_error([0.2, 0.4, 0.6, 0.9], [True, False, True, True], bins=2), 6)
    0.225
    """
    rows = reliability_table(confidences, correct, bins)
    n = sum(r.count for r in rows)
    return float(sum(r.count / n * abs(r.accuracy - r.mean_confidence) for r in rows if r.count))


def is_abstention(reply: str) -> bool:
    """Whether `reply` declines to answer ("I don't know", "The answer is not known", "I'm sorry, ...")
    rather than giving an answer, by a fixed list of phrases.

    >>> is_abstention("I don't know."), is_abstention("The answer is not known."), is_abstention("Mobile.")
    (True, True, False)
    """
    if not isinstance(reply, str):
        raise TypeError(f"reply must be a str, got {type(reply).__name__}")
    return bool(_ABSTENTION.search(reply.replace("\u2019", "'")))
