"""lmcourse.glue: NumPy scalars reach myst-nb as plain numbers, other values unchanged."""

import numpy as np

import lmcourse.glue


def test_numpy_scalars_are_glued_as_plain_numbers(monkeypatch):
    seen = []
    monkeypatch.setattr("myst_nb.glue", lambda name, value, display=False: seen.append((name, value, display)))
    lmcourse.glue.glue("a", np.float64(76.5))
    lmcourse.glue.glue("b", np.int64(5), display=True)
    lmcourse.glue.glue("c", "text")
    assert seen == [("a", 76.5, False), ("b", 5, True), ("c", "text", False)]
    assert type(seen[0][1]) is float and type(seen[1][1]) is int
