"""Tests for lmcourse.cv_record: a saved cross-validation reads back equal, in order; a record made on
other texts, labels or folds is refused; a missing record names the chapter that writes it; a failed
write leaves the old record; and the committed record is Chapter 5's, on the real polarity folds."""

from __future__ import annotations

import json

import pytest

from lmcourse.classify import BagOfWords, NaiveBayes, cross_validate, load_polarity, stratified_folds
from lmcourse.cv_record import load_cross_validation, polarity_cv_path, save_cross_validation

TEXTS = ["good fun", "fine film", "great cast", "nice plot", "bad acting", "poor script", "awful end", "dull start"] * 2
LABELS = [1, 1, 1, 1, 0, 0, 0, 0] * 2


@pytest.fixture
def results():
    folds = stratified_folds(LABELS, k=2, seed=0)
    return folds, {"naive Bayes": cross_validate(NaiveBayes, TEXTS, LABELS, folds),
                   "bag of words": cross_validate(BagOfWords, TEXTS, LABELS, folds)}


def test_saved_results_load_back_equal_and_in_order(tmp_path, results):
    folds, saved = results
    path = save_cross_validation(saved, TEXTS, LABELS, folds, tmp_path / "cv.json")
    loaded = load_cross_validation(TEXTS, LABELS, folds, path)
    assert loaded == saved and list(loaded) == ["naive Bayes", "bag of words"]
    assert loaded["bag of words"].mean() == saved["bag of words"].mean()


@pytest.mark.parametrize("change", ["texts", "labels", "folds"])
def test_a_record_of_other_data_or_folds_is_refused(tmp_path, results, change):
    folds, saved = results
    path = save_cross_validation(saved, TEXTS, LABELS, folds, tmp_path / "cv.json")
    texts, labels = list(TEXTS), list(LABELS)
    if change == "texts":
        texts[0] = "good fun!"
    elif change == "labels":
        labels[0], labels[4] = 0, 1
    else:
        folds = stratified_folds(LABELS, k=2, seed=1)
    with pytest.raises(ValueError, match="other sentences, labels or folds"):
        load_cross_validation(texts, labels, folds, path)


def test_a_missing_record_names_the_chapter_that_writes_it(tmp_path, results):
    folds, _ = results
    with pytest.raises(FileNotFoundError, match="run Chapter 5"):
        load_cross_validation(TEXTS, LABELS, folds, tmp_path / "absent.json")


def test_bad_results_are_refused_and_the_old_record_kept(tmp_path, results):
    folds, saved = results
    path = save_cross_validation(saved, TEXTS, LABELS, folds, tmp_path / "cv.json")
    before = path.read_bytes()
    with pytest.raises(ValueError, match="at least one"):
        save_cross_validation({}, TEXTS, LABELS, folds, path)
    with pytest.raises(ValueError, match="predictions for 16 texts"):
        save_cross_validation({"short": cross_validate(BagOfWords, TEXTS[:8], LABELS[:8],
                                                       stratified_folds(LABELS[:8], k=2))}, TEXTS, LABELS, folds, path)
    assert path.read_bytes() == before


def test_the_committed_record_is_chapter_5s_on_the_real_folds():
    texts, labels = load_polarity()
    folds = stratified_folds(labels, k=5, seed=0)
    record = load_cross_validation(texts, labels, folds, polarity_cv_path())
    assert list(record) == ["bag of words (tf-idf + logistic regression)", "MiniLM frozen + logistic regression",
                            "MiniLM fine-tuned", "tiny BERT (Section 5.5) fine-tuned"]
    bag = cross_validate(BagOfWords, texts, labels, folds)  # the cheap method, recomputed: the same predictions
    assert record["bag of words (tf-idf + logistic regression)"].predictions == bag.predictions
    assert json.loads(polarity_cv_path().read_text())["format"] == 1
