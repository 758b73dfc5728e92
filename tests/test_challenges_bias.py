"""lmcourse.challenges.bias: the WEAT against cosines worked out by hand (unit vectors at known angles)
and against plain loops, its symmetries, and the permutation test enumerated by hand."""

from __future__ import annotations

import math
import statistics
from itertools import combinations

import numpy as np
import pytest

from lmcourse.challenges.bias import association, weat_effect_size, weat_p_value


def _at(*degrees: float) -> np.ndarray:
    """Unit vectors at the given angles from the x axis, one row each."""
    radians = np.radians(degrees)
    return np.stack([np.cos(radians), np.sin(radians)], axis=1)


A, B = _at(0), _at(90)  # cos(w, A) = cos(theta), cos(w, B) = sin(theta)
X, Y = _at(0, 45), _at(90, 135)  # s = cos - sin: 1, 0 and -1, -sqrt(2)
S_X, S_Y = [1.0, 0.0], [-1.0, -math.sqrt(2)]


def test_association_is_cosine_difference_by_hand():
    assert association(_at(0, 30, 45, 90, 135), A, B) == pytest.approx(
        [1.0, math.sqrt(3) / 2 - 0.5, 0.0, -1.0, -math.sqrt(2)], abs=1e-12)


def test_association_averages_over_attribute_words():
    # A at 0 and 90 degrees, B at 180: s(w at 0) = (1 + 0) / 2 - (-1) = 1.5
    assert association(_at(0), _at(0, 90), _at(180)) == pytest.approx([1.5])


def test_association_matches_loops_over_cosines():
    rng = np.random.default_rng(0)
    w, a, b = rng.normal(size=(5, 7)), rng.normal(size=(3, 7)), rng.normal(size=(4, 7))

    def cos(u, v):
        return float(u @ v / np.linalg.norm(u) / np.linalg.norm(v))

    expected = [np.mean([cos(x, y) for y in a]) - np.mean([cos(x, y) for y in b]) for x in w]
    assert association(w, a, b) == pytest.approx(expected, abs=1e-12)


def test_effect_size_by_hand():
    expected = (statistics.mean(S_X) - statistics.mean(S_Y)) / statistics.stdev(S_X + S_Y)
    assert weat_effect_size(X, Y, A, B) == pytest.approx(expected, abs=1e-12)


def test_swapping_targets_or_attributes_negates_the_effect_size():
    d = weat_effect_size(X, Y, A, B)
    assert weat_effect_size(Y, X, A, B) == pytest.approx(-d)
    assert weat_effect_size(X, Y, B, A) == pytest.approx(-d)


def test_scaling_vectors_changes_nothing():
    scales = np.array([[3.0], [0.5]])
    assert association(X * scales, A * 7, B * 0.1) == pytest.approx(association(X, A, B))
    assert weat_effect_size(X * scales, Y * 2, A * 7, B * 0.1) == pytest.approx(weat_effect_size(X, Y, A, B))
    assert weat_p_value(X * 4, Y, A, B * 9) == weat_p_value(X, Y, A, B)


def test_exact_p_value_enumerates_the_six_partitions_by_hand():
    # s = 1, 0 | -1, -1.414: X-side sums of the 6 partitions are 1, 0, -0.41, -1, -1.41, -2.41
    assert weat_p_value(X, Y, A, B) == pytest.approx(1 / 6)  # observed (1) is the largest
    # X = {0, 90}: sum 0, reached by {0, 90} and {0, 45}: 2 of 6
    assert weat_p_value(_at(0, 90), _at(45, 135), A, B) == pytest.approx(2 / 6)
    assert weat_p_value(Y, X, A, B) == pytest.approx(1.0)  # the smallest sum: every partition reaches it


def test_exact_p_value_with_unequal_sizes():
    # s = 1, 0, -1 at 0, 45, 90 degrees; X holds one word: 3 partitions with X-side sums 1, 0, -1
    assert weat_p_value(_at(0), _at(45, 90), A, B) == pytest.approx(1 / 3)
    assert weat_p_value(_at(45), _at(0, 90), A, B) == pytest.approx(2 / 3)


def _partitions_oracle(x, y, a, b):
    s = list(association(x, a, b)) + list(association(y, a, b))
    stat = sum(s[:len(x)]) - sum(s[len(x):])
    sides = list(combinations(range(len(s)), len(x)))
    stats = [sum(s[i] for i in side) - sum(s[i] for i in range(len(s)) if i not in side) for side in sides]
    return sum(t >= stat - 1e-10 for t in stats) / len(sides)


def test_permutation_p_value_is_close_to_the_exact_one():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(8, 5)) + 0.3, rng.normal(size=(8, 5))  # C(16, 8) = 12,870 partitions
    a, b = rng.normal(size=(4, 5)) + 0.5, rng.normal(size=(4, 5))
    exact = weat_p_value(x, y, a, b, permutations=20_000)
    assert exact == pytest.approx(_partitions_oracle(x, y, a, b))
    sampled = weat_p_value(x, y, a, b, permutations=10_000, seed=3)
    assert abs(sampled - exact) < 0.02  # standard error about 0.005
    assert weat_p_value(x, y, a, b, permutations=10_000, seed=3) == sampled  # seeded
    assert round(sampled * 10_001) == sampled * 10_001  # (1 + count) / (1 + permutations)


def test_sampled_p_value_is_never_zero():
    x, y = _at(0, 1, 2, 3, 4, 5), _at(90, 91, 92, 93, 94, 95)  # C(12, 6) = 924 partitions
    assert weat_p_value(x, y, A, B, permutations=100) == pytest.approx(1 / 101, abs=0.02)
    assert weat_p_value(x, y, A, B, permutations=100) > 0


@pytest.mark.parametrize("args, message", [
    ((_at(0)[0], A, B), "2-D array with one row per word.*v\\[None, :\\]"),
    ((np.zeros((0, 2)), A, B), "at least one word vector"),
    ((X, np.array([[0.0, 0.0]]), B), "row 0 of A is the zero vector"),
    ((X, A, np.ones((1, 3))), "same number of columns"),
    ((np.array([[np.nan, 1.0]]), A, B), "inf or nan"),
])
def test_association_errors(args, message):
    with pytest.raises(ValueError, match=message):
        association(*args)


@pytest.mark.parametrize("x, y, message", [
    (np.zeros((0, 2)), Y, "X must hold at least one word vector"),
    (X, np.array([[1.0, 0.0], [0.0, 0.0]]), "row 1 of Y is the zero vector"),
    (X, np.ones((2, 3)), "same number of columns"),
    (X, _at(90)[0], "Y must be a 2-D array"),
    (_at(45, 45), _at(45), "standard deviation 0"),
])
def test_effect_size_errors(x, y, message):
    with pytest.raises(ValueError, match=message):
        weat_effect_size(x, y, A, B)


@pytest.mark.parametrize("kwargs, message", [
    (dict(permutations=0), "permutations must be an int >= 1"),
    (dict(permutations=1.5), "permutations must be an int >= 1"),
    (dict(seed=-1), "seed must be an int >= 0"),
])
def test_p_value_argument_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        weat_p_value(X, Y, A, B, **kwargs)
