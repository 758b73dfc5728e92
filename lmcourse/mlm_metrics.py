"""Scoring a masked language model fairly, Chapter 5 (BERT).

BERT's rule (:func:`lmcourse.mlm.mask_tokens`) scores every *chosen* position, but a chosen
position is shown to the model in one of three ways: as ``[MASK]`` (80%), as a random token (10%)
or unchanged (10%). At an unchanged position the answer is in the input, so a model that merely
copies its input is right there, and accuracy over all chosen positions flatters it. This module
separates the three kinds and gives the baselines a model must beat:

- :func:`position_kinds` says which chosen positions were masked, replaced or kept;
- :func:`accuracy_by_kind` is the accuracy on each kind; its ``"[MASK]"`` entry is the number
  that shows what the model infers from the context (:func:`mask_accuracy`);
- :func:`copy_baseline` is the accuracy of answering the input token itself: no model at all;
- :func:`pair_probe_scores` summarises probes in pairs whose answer changes with the context
  (how often the top guess changes between the two sentences, and how often it is right).

All functions work on ``(B, T)`` (or flat) tensors of ids, with labels ``-100`` where nothing is
scored, as :mod:`lmcourse.mlm` produces them. Left out: per-token breakdowns (by frequency or
part of speech), and scores of whole words split into several pieces.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import NamedTuple

import torch

__all__ = ["IGNORE_INDEX", "position_kinds", "accuracy_by_kind", "mask_accuracy", "copy_baseline",
           "PairProbeScores", "pair_probe_scores"]

IGNORE_INDEX = -100  # the label of positions that are not scored (as lmcourse.bert.IGNORE_INDEX)


def _share(hits: torch.Tensor, where: torch.Tensor) -> float:
    """Share of True in `hits` among the positions where `where` is True (nan if there are none)."""
    n = int(where.sum())
    return int((hits & where).sum()) / n if n else float("nan")


def position_kinds(inputs: torch.Tensor, labels: torch.Tensor, mask_id: int
                   ) -> dict[str, torch.Tensor]:
    """Boolean tensors shaped like `inputs`: which scored positions the model saw as ``[MASK]``,
    as another token (``"random"``) or as themselves (``"unchanged"``).

    A random replacement that happens to draw the original id counts as unchanged: the model
    cannot tell the difference.

    >>> inputs = torch.tensor([[1, 4, 7, 9, 4, 2]])  # [MASK] = 4
    >>> labels = torch.tensor([[-100, 5, 6, 9, 8, -100]])
    >>> {k: v.tolist() for k, v in position_kinds(inputs, labels, mask_id=4).items()}
    ... # doctest: +NORMALIZE_WHITESPACE
    {'[MASK]': [[False, True, False, False, True, False]],
     'random': [[False, False, True, False, False, False]],
     'unchanged': [[False, False, False, True, False, False]]}
    """
    if inputs.shape != labels.shape:
        raise ValueError(f"inputs and labels must have one shape, got {tuple(inputs.shape)} and "
                         f"{tuple(labels.shape)}")
    scored = labels != IGNORE_INDEX
    masked = scored & (inputs == mask_id)
    kept = scored & (inputs == labels)
    return {"[MASK]": masked, "random": scored & ~masked & ~kept, "unchanged": kept}


def accuracy_by_kind(predictions: torch.Tensor, inputs: torch.Tensor, labels: torch.Tensor,
                     mask_id: int) -> dict[str, float]:
    """Accuracy of `predictions` (ids shaped like `labels`) over all scored positions and over each
    kind of :func:`position_kinds`; ``nan`` for a kind that does not occur.

    By hand: positions 1 and 4 are ``[MASK]`` (one right), 2 is random (wrong), 3 unchanged (right),
    so 2 of 4 overall, 1 of 2 at ``[MASK]``.

    >>> inputs = torch.tensor([1, 4, 7, 9, 4, 2]); labels = torch.tensor([-100, 5, 6, 9, 8, -100])
    >>> accuracy_by_kind(torch.tensor([0, 5, 7, 9, 3, 0]), inputs, labels, mask_id=4)
    {'all': 0.5, '[MASK]': 0.5, 'random': 0.0, 'unchanged': 1.0}
    """
    if predictions.shape != labels.shape:
        raise ValueError(f"predictions must be shaped like labels {tuple(labels.shape)}, got "
                         f"{tuple(predictions.shape)}")
    right = predictions == labels
    kinds = position_kinds(inputs, labels, mask_id)
    return {"all": _share(right, labels != IGNORE_INDEX), **{k: _share(right, w) for k, w in kinds.items()}}


def mask_accuracy(predictions: torch.Tensor, inputs: torch.Tensor, labels: torch.Tensor, mask_id: int) -> float:
    """Accuracy at the scored positions that the model saw as ``[MASK]`` only.

    >>> mask_accuracy(torch.tensor([5, 7, 9, 3]), torch.tensor([4, 7, 9, 4]), torch.tensor([5, 6, 9, 8]), 4)
    0.5
    """
    return accuracy_by_kind(predictions, inputs, labels, mask_id)["[MASK]"]


def copy_baseline(inputs: torch.Tensor, labels: torch.Tensor) -> float:
    """Accuracy of answering, at every scored position, the token the input shows there.

    It is right exactly at the unchanged positions (about 10% of the chosen ones under BERT's
    rule), and never at a ``[MASK]``.

    >>> copy_baseline(torch.tensor([1, 4, 7, 9, 4, 2]), torch.tensor([-100, 5, 6, 9, 8, -100]))
    0.25
    """
    if inputs.shape != labels.shape:
        raise ValueError(f"inputs and labels must have one shape, got {tuple(inputs.shape)} and "
                         f"{tuple(labels.shape)}")
    return _share(inputs == labels, labels != IGNORE_INDEX)


class PairProbeScores(NamedTuple):
    """How a model's top guesses behave on pairs of probes whose answers differ."""

    changed: float  # share of pairs whose two top guesses differ
    right: float  # share of single probes whose top guess is an accepted answer
    both_right: float  # share of pairs with both guesses right (so they also differ)
    num_pairs: int


def pair_probe_scores(guesses: Sequence[tuple[str, str]],
                      answers: Sequence[tuple[Collection[str], Collection[str]]]) -> PairProbeScores:
    """Score top guesses ``(a, b)`` per pair against each probe's accepted answers.

    A model that ignores the context gives the same guess to both probes of a pair, so its
    ``changed`` is 0 and its ``both_right`` 0, whatever it has learned about frequencies.

    >>> pair_probe_scores([("was", "were"), ("the", "the"), ("to", "as")],
    ...                   [({"was"}, {"were"}), ({"her"}, {"his"}), ({"to"}, {"and"})])
    PairProbeScores(changed=0.6666666666666666, right=0.5, both_right=0.3333333333333333, num_pairs=3)
    """
    if len(guesses) != len(answers) or not guesses:
        raise ValueError(f"need one pair of answers per pair of guesses (at least one), got "
                         f"{len(guesses)} guesses and {len(answers)} answers")
    n = len(guesses)
    changed = sum(a != b for a, b in guesses)
    right = [(a in ra, b in rb) for (a, b), (ra, rb) in zip(guesses, answers)]
    return PairProbeScores(changed / n, sum(x + y for x, y in right) / (2 * n), sum(x and y for x, y in right) / n, n)
