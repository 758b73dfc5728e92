"""Rank models only where a ranking means something: within one tokenization, in pairs, with
intervals.

Bits per character puts every model on one scale, but a word-level model that maps rare words to
``<unk>`` and lowercases its input is not charged for what it throws away, so it is ranked only
against models that read the same tokens. Within a group, each model is compared with the next
better one by :func:`lmcourse.metrics.paired_bootstrap` over the test paragraphs: a difference
whose interval holds 0 is noise. The results page (after Chapter 7) shows these comparisons.
Left out: corrections for making many comparisons at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from lmcourse.metrics import Result, paired_bootstrap

__all__ = ["Comparison", "tokenization_groups", "neighbour_comparisons"]


@dataclass(frozen=True)
class Comparison:
    """Model `worse` minus model `better` in bits per character, with a paired 95% interval."""

    tokenization: str
    worse: str
    better: str
    difference: float
    low: float
    high: float

    @property
    def settled(self) -> bool:
        """Whether the interval excludes 0: `better` wins on this kind of text, not by luck of the draw."""
        return self.low > 0


def tokenization_groups(results: Sequence[Result]) -> dict[str, list[Result]]:
    """The results grouped by tokenization (in order of first appearance), each group best first."""
    groups: dict[str, list[Result]] = {}
    for result in results:
        groups.setdefault(result.tokenization, []).append(result)
    return {name: sorted(rows, key=lambda r: r.bits_per_char) for name, rows in groups.items()}


def neighbour_comparisons(results: Sequence[Result], paragraph_nll: Mapping[str, np.ndarray],
                          num_chars: Sequence[int] | np.ndarray, resamples: int = 1000,
                          seed: int = 0) -> list[Comparison]:
    """Within each tokenization, every model against the next better one (models without per-paragraph
    nats are skipped), on the same resampled paragraphs."""
    comparisons = []
    for tokenization, rows in tokenization_groups(results).items():
        scored = [r for r in rows if r.model in paragraph_nll]
        for better, worse in zip(scored, scored[1:]):
            diff, low, high = paired_bootstrap(paragraph_nll[worse.model], paragraph_nll[better.model], num_chars,
                                               resamples=resamples, seed=seed)
            comparisons.append(Comparison(tokenization, worse.model, better.model, diff, low, high))
    return comparisons
