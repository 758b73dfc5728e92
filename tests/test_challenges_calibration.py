"""lmcourse.challenges.calibration: the expected calibration error and reliability table against
cases worked out by hand, the bin edges (0.0 first, 1.0 last, inner edges to the upper bin), and
a loop over the definition on random data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lmcourse.challenges.calibration import CalibrationBin, expected_calibration_error, reliability_table


def test_perfectly_calibrated_answers_give_zero():
    confidences = [0.25] * 4 + [0.75] * 4 + [0.95] * 20
    correct = [1, 0, 0, 0] + [1, 1, 1, 0] + [1] * 19 + [0]
    assert expected_calibration_error(confidences, correct) == pytest.approx(0.0, abs=1e-12)


def test_two_bins_by_hand():
    # bin [0, 0.5): confidences 0.1, 0.3 (mean 0.2), 1 of 2 right: gap 0.3, weight 2/5
    # bin [0.5, 1]: confidences 0.6, 0.8, 1.0 (mean 0.8), 2 of 3 right: gap 0.8 - 2/3, weight 3/5
    confidences, correct = [0.1, 0.3, 0.6, 0.8, 1.0], [False, True, True, False, True]
    expected = 2 / 5 * 0.3 + 3 / 5 * (0.8 - 2 / 3)
    assert expected_calibration_error(confidences, correct, bins=2) == pytest.approx(expected)
    low, high = reliability_table(confidences, correct, bins=2)
    assert (low.low, low.high, low.count, low.accuracy) == (0.0, 0.5, 2, 0.5)
    assert low.mean_confidence == pytest.approx(0.2)
    assert (high.low, high.high, high.count) == (0.5, 1.0, 3)
    assert high.accuracy == pytest.approx(2 / 3) and high.mean_confidence == pytest.approx(0.8)


def test_sure_and_right_gives_zero_sure_and_wrong_gives_one():
    assert expected_calibration_error([1.0] * 5, [True] * 5) == 0.0
    assert expected_calibration_error([1.0] * 5, [False] * 5) == 1.0
    assert expected_calibration_error([0.0] * 3, [False] * 3) == 0.0


def test_edge_values_land_in_the_first_and_last_bins():
    rows = reliability_table([0.0, 1.0], [False, True], bins=4)
    assert [r.count for r in rows] == [1, 0, 0, 1]
    assert rows[0].mean_confidence == 0.0 and rows[-1].mean_confidence == 1.0


@pytest.mark.parametrize("bins", [3, 10, 100])
def test_inner_edges_open_the_next_bin(bins):
    edges = [k / bins for k in range(1, bins)]
    rows = reliability_table(edges, [True] * len(edges), bins=bins)
    assert [r.count for r in rows] == [0] + [1] * (bins - 1)
    assert all(r.low == pytest.approx(k / bins) and r.high == pytest.approx((k + 1) / bins)
               for k, r in enumerate(rows))


def test_empty_bins_are_listed_with_nan():
    rows = reliability_table([0.55], [True])
    assert len(rows) == 10 and sum(r.count for r in rows) == 1
    assert rows[5] == CalibrationBin(0.5, 0.6, 1, 1.0, 0.55)
    assert math.isnan(rows[0].accuracy) and math.isnan(rows[0].mean_confidence)


def test_matches_the_definition_on_random_answers():
    rng = np.random.default_rng(0)
    confidences = rng.uniform(size=500)
    correct = rng.uniform(size=500) < confidences ** 2  # overconfident
    total = 0.0
    for b in range(15):
        low, high = b / 15, (b + 1) / 15
        inside = (confidences >= low) & ((confidences < high) | (b == 14))
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidences[inside].mean())
    assert expected_calibration_error(confidences, correct, bins=15) == pytest.approx(total)
    assert total > 0.1


@pytest.mark.parametrize("confidences, correct, bins, message", [
    ([0.5, 1.2], [True, False], 10, "probabilities in \\[0, 1\\], got 1.2"),
    ([-0.1], [True], 10, "got -0.1"),
    ([float("nan")], [True], 10, "got nan"),
    ([0.5, 0.6], [True], 10, "one length"),
    ([], [], 10, "non-empty"),
    ([[0.5]], [[True]], 10, "1-D"),
    ([0.5], [0.5], 10, "booleans"),
    ([0.5], [True], 0, "bins must be a positive int"),
])
def test_errors(confidences, correct, bins, message):
    with pytest.raises(ValueError, match=message):
        expected_calibration_error(confidences, correct, bins=bins)
