"""lmcourse.apps.spam: the stored SMS Spam Collection (counts, duplicates, a clean split), the cost
of errors and the cheapest threshold against hand-worked cases and brute force, naive Bayes
against its formula, and the baselines on the real held-out messages."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lmcourse.apps.spam import cheapest_threshold, error_cost, load_sms_spam, spam_split
from lmcourse.classify import BagOfWords, NaiveBayes, evaluate_predictions


def test_the_stored_collection_and_its_deduplication():
    texts, labels = load_sms_spam(deduplicate=False)
    assert (len(texts), sum(labels)) == (4837, 638)
    assert texts[0].startswith("Go until jurong point") and labels[0] == 0
    unique, unique_labels = load_sms_spam()
    assert (len(unique), sum(unique_labels)) == (4522, 567)
    assert len(set(unique)) == len(unique) and set(unique) == set(texts)


def test_the_split_is_stratified_disjoint_and_fixed():
    texts, labels = load_sms_spam()
    train, test = spam_split(labels)
    assert (len(train), len(test)) == (3617, 905)
    assert not set(train) & set(test) and sorted(train + test) == list(range(len(labels)))
    assert sum(labels[i] for i in test) == 113  # 12.5% spam, as in the whole collection
    assert spam_split(labels) == (train, test) and spam_split(labels, seed=1) != (train, test)
    assert not {texts[i] for i in train} & {texts[i] for i in test}  # no message is in both
    with pytest.raises(ValueError, match="test_share"):
        spam_split(labels, test_share=1.0)


def test_bad_files_are_refused_clearly(tmp_path):
    path = tmp_path / "spam.csv"
    path.write_text("label,text\nham,hello\nmaybe,win a prize\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 3: expected a label in"):
        load_sms_spam(path=path)
    path.write_text("label,text\n", encoding="utf-8")
    with pytest.raises(ValueError, match="holds no messages"):
        load_sms_spam(path=path)
    with pytest.raises(FileNotFoundError, match="no spam file"):
        load_sms_spam(path=tmp_path / "missing.csv")
    path.write_text("label,text\nspam,Win!\nham,ok\nspam,Win!\n", encoding="utf-8")
    assert load_sms_spam(path=path) == (["Win!", "ok"], [1, 0])


def test_error_cost_and_cheapest_threshold_by_hand_and_by_brute_force():
    labels, predictions = [0, 0, 1, 1, 1], [1, 0, 0, 0, 1]
    assert error_cost(labels, predictions, false_positive=10, false_negative=1) == 12.0
    assert error_cost(labels, predictions, false_positive=1, false_negative=1) == 3.0
    with pytest.raises(ValueError, match="of one length"):
        error_cost([0, 1], [1], 1, 1)
    # flagging nothing costs 2 (two spams let through); flagging the 0.9 one costs 1
    assert cheapest_threshold([0.1, 0.4, 0.6, 0.9], [0, 1, 0, 1], 10, 1) == (0.9, 1.0)
    assert cheapest_threshold([0.1, 0.4, 0.6, 0.9], [0, 1, 0, 1], 1, 10) == (0.4, 1.0)
    assert cheapest_threshold([0.2, 0.3], [0, 0], 1, 1) == (math.inf, 0.0)  # no spam: flag nothing
    rng = np.random.default_rng(0)
    scores, truth = rng.random(60).round(2), rng.integers(0, 2, 60)
    threshold, cost = cheapest_threshold(scores, truth, 3, 1)
    grid = [error_cost(truth, (scores >= t).astype(int), 3, 1) for t in np.linspace(0, 1.01, 1000)]
    assert cost == min(grid) == error_cost(truth, (scores >= threshold).astype(int), 3, 1)
    with pytest.raises(ValueError, match="non-empty"):
        cheapest_threshold([], [], 1, 1)


def test_naive_bayes_equals_its_formula():
    """log P(label) + sum over the message's words of count * log((count in label + 1) / (words in label + V))."""
    texts = ["win cash now", "free cash cash", "see you now", "see you soon"]
    labels = [1, 1, 0, 0]
    vocabulary = sorted({w for t in texts for w in t.split()})
    counts = {y: {w: sum(t.split().count(w) for t, l in zip(texts, labels) if l == y) for w in vocabulary} for y in (0, 1)}

    def log_joint(text: str, y: int) -> float:
        total = sum(counts[y].values())
        return math.log(0.5) + sum(math.log((counts[y][w] + 1) / (total + len(vocabulary))) for w in text.split())

    message = "cash now you"
    spam, ham = log_joint(message, 1), log_joint(message, 0)
    model = NaiveBayes().fit(texts, labels)
    assert model.scores([message])[0] == pytest.approx(1 / (1 + math.exp(ham - spam)), rel=1e-9)
    assert model.predict([message]) == [int(spam > ham)]


def test_baselines_filter_the_real_held_out_messages():
    texts, labels = load_sms_spam()
    train, test = spam_split(labels)
    fit_texts, fit_labels = [texts[i] for i in train], [labels[i] for i in train]
    test_texts, test_labels = [texts[i] for i in test], [labels[i] for i in test]
    for method, least_f1 in [(NaiveBayes(), 0.88), (BagOfWords(), 0.75)]:  # measured 0.925 and 0.85
        method.fit(fit_texts, fit_labels)
        scores = method.scores(test_texts)
        assert method.predict(test_texts) == [int(s > 0.5) for s in scores]
        assert evaluate_predictions(test_labels, method.predict(test_texts))["f1"] > least_f1
