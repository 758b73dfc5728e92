"""lmcourse.apps.table: rows replaced by key, intervals checked, the file format refused when wrong."""

import math

import pytest

from lmcourse.apps.table import AppResult, applications_table, load_applications, record_applications


def row(method="bag of words", value=0.6, **changes):
    base = dict(task="sentiment", dataset="polarity", method=method, metric="accuracy", value=value,
                split="5-fold CV", seconds=1.5, ci_low=value - 0.1, ci_high=value + 0.1)
    base.update(changes)
    return AppResult(**base)


def test_recording_replaces_the_same_key_and_keeps_the_rest(tmp_path):
    path = tmp_path / "apps.csv"
    assert load_applications(path) == []
    record_applications([row(), row("prompting", 0.7)], path)
    table = record_applications([row(value=0.65), row("prompting", 0.5, metric="F1")], path)
    assert [(r.method, r.metric, r.value) for r in table] == [("bag of words", "accuracy", 0.65),
                                                               ("prompting", "accuracy", 0.7),
                                                               ("prompting", "F1", 0.5)]
    assert table[0].ci_low == pytest.approx(0.55) and table[0].seconds == 1.5
    record_applications([row("no interval", 0.3, ci_low=math.nan, ci_high=math.nan)], path)
    assert math.isnan(load_applications(path)[-1].ci_low)
    frame = applications_table(path, task="sentiment")
    assert list(frame["method"]) == ["bag of words", "prompting", "prompting", "no interval"]


@pytest.mark.parametrize("changes, message", [
    ({"task": " "}, "task must be a non-empty string"),
    ({"value": math.nan}, "finite"),
    ({"seconds": -1.0}, "seconds must be >= 0"),
    ({"ci_low": 0.7, "ci_high": 0.8}, "must hold value"),
    ({"ci_low": math.nan}, "both ends or neither"),
])
def test_bad_rows_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        row(**changes)


def test_a_file_of_another_shape_is_refused(tmp_path):
    path = tmp_path / "apps.csv"
    path.write_text("model,bpc\nx,1\n")
    with pytest.raises(ValueError, match="expected"):
        load_applications(path)
    with pytest.raises(TypeError, match="list of AppResult"):
        record_applications(row(), tmp_path / "other.csv")


def test_replacing_a_chapter_drops_its_stale_rows_and_keeps_the_others(tmp_path):
    path = tmp_path / "apps.csv"
    record_applications([row("renamed since", chapter="9a"), row("kept", chapter="9a"), row("other", chapter="9b")], path)
    table = record_applications([row("kept", 0.7, chapter="9a")], path, replace_chapter="9a")
    assert [(r.method, r.chapter, r.value) for r in table] == [("other", "9b", 0.6), ("kept", "9a", 0.7)]
    with pytest.raises(ValueError, match="belong to chapter"):
        record_applications([row("stray", chapter="9b")], path, replace_chapter="9a")
