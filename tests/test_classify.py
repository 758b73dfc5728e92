"""Tests for lmcourse.classify: the real polarity file (counts, encoding, first line), malformed
files, stratified folds (disjoint, complete, balanced, seeded), the metrics against hand-worked
numbers and scikit-learn, cross-validation bookkeeping with a stub method, the bag-of-words
baseline on held-out folds of a real task, and fine-tuning lmcourse.bert's tiny classifier.
"""

from __future__ import annotations

import random

import pytest
import torch
from sklearn import metrics as skm

from lmcourse.bert import BertConfig, BertForSequenceClassification, BertModel
from lmcourse.classify import (
    BagOfWords,
    CVResult,
    FineTuned,
    FrozenEncoder,
    cross_validate,
    evaluate_predictions,
    fine_tune_classifier,
    finetune_config,
    load_polarity,
    predict,
    stratified_folds,
)
from lmcourse.wordpiece import WordPieceTokenizer

# --- data and folds ------------------------------------------------------------------------------


def test_load_polarity_reads_the_200_sentences_of_gensims_file():
    texts, labels = load_polarity()
    assert len(texts) == len(labels) == 200
    assert labels.count(1) == labels.count(0) == 100
    assert labels == [0] * 100 + [1] * 100  # the file lists the negative sentences first
    assert texts[0] == "simplistic , silly and tedious ."
    assert texts[-1].endswith("surprised at how quickly it faded from my memory .")
    assert "\u2014" in texts[26]  # byte 0x97 in Windows-1252 is an em dash
    assert all(t == t.strip() and t and not t.startswith("__label__") for t in texts)


def test_load_polarity_names_the_malformed_line(tmp_path):
    path = tmp_path / "bad.cor"
    path.write_bytes(b"__label__pos fine\n__label__maybe what ?\n")
    with pytest.raises(ValueError, match=r"line 2: expected '__label__pos <text>'"):
        load_polarity(path)
    path.write_bytes(b"__label__neg\n")
    with pytest.raises(ValueError, match="line 1"):
        load_polarity(path)
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="no labelled lines"):
        load_polarity(path)
    with pytest.raises(FileNotFoundError, match="no polarity file"):
        load_polarity(tmp_path / "missing.cor")
    path.write_bytes(b"__label__pos caf\xe9 \n__label__neg bad\n")
    assert load_polarity(path) == (["caf\u00e9", "bad"], [1, 0])


@pytest.mark.parametrize("k", [2, 5, 10])
def test_stratified_folds_are_disjoint_complete_and_balanced(k):
    _, labels = load_polarity()
    folds = stratified_folds(labels, k=k, seed=0)
    assert len(folds) == k
    tested = sorted(i for _, test in folds for i in test)
    assert tested == list(range(200))  # every index tested exactly once
    for train, test in folds:
        assert not set(train) & set(test)
        assert sorted(train + test) == list(range(200))
        positives = sum(labels[i] for i in test)
        assert positives == len(test) - positives == 100 // k  # the classes are 100/100
    assert folds == stratified_folds(labels, k=k, seed=0)
    assert folds != stratified_folds(labels, k=k, seed=1)


def test_stratified_folds_errors():
    with pytest.raises(ValueError, match="k must be an int >= 2"):
        stratified_folds([0, 1] * 5, k=1)
    with pytest.raises(ValueError, match="at least 5 examples of every label; the rarest has 2"):
        stratified_folds([0] * 10 + [1] * 2, k=5)


# --- metrics and cross-validation ---------------------------------------------------------------


def test_evaluate_predictions_against_hand_worked_numbers_and_sklearn():
    y_true = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    y_pred = [1, 1, 1, 0, 1, 1, 0, 0, 0, 0]  # tp 3, fn 1, fp 2, tn 4
    got = evaluate_predictions(y_true, y_pred)
    assert got == pytest.approx({"accuracy": 7 / 10, "precision": 3 / 5, "recall": 3 / 4,
                                 "f1": 2 * 3 / (2 * 3 + 2 + 1)})
    rng = random.Random(0)
    for _ in range(20):
        t = [rng.randint(0, 1) for _ in range(30)]
        p = [rng.randint(0, 1) for _ in range(30)]
        assert evaluate_predictions(t, p) == pytest.approx({
            "accuracy": skm.accuracy_score(t, p), "precision": skm.precision_score(t, p, zero_division=0),
            "recall": skm.recall_score(t, p, zero_division=0), "f1": skm.f1_score(t, p, zero_division=0)})


class Majority:
    """A stub method: always the most frequent training label (ties: 1)."""

    def fit(self, texts, labels):
        self.label = int(sum(labels) * 2 >= len(labels))
        return self

    def predict(self, texts):
        return [self.label] * len(texts)


def test_cross_validate_bookkeeping_with_a_stub_method():
    labels = [0] * 12 + [1] * 8
    texts = [f"text {i}" for i in range(20)]
    folds = stratified_folds(labels, k=4, seed=0)
    result = cross_validate(Majority, texts, labels, folds)
    assert isinstance(result, CVResult) and len(result.folds) == 4
    assert result.predictions == [0] * 20  # every fold's training part is 9 of 15 negative
    assert result.pooled == evaluate_predictions(labels, [0] * 20)
    assert result.pooled["accuracy"] == 0.6 and result.pooled["recall"] == 0.0
    for fold, (_, test) in zip(result.folds, folds):
        expected = evaluate_predictions([labels[i] for i in test], [0] * len(test))
        assert fold["accuracy"] == expected["accuracy"]
        assert fold["seconds"] >= 0
    assert result.mean()["accuracy"] == pytest.approx(0.6)
    assert result.std()["accuracy"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="test every text exactly once"):
        cross_validate(Majority, texts, labels, folds[:3])
    with pytest.raises(ValueError, match="trains on some of its own test texts"):
        cross_validate(Majority, texts, labels, [(list(range(20)), list(range(20)))])
    with pytest.raises(ValueError, match="got 20 texts but 19 labels"):
        cross_validate(Majority, texts, labels[:19], folds)


def test_bag_of_words_beats_chance_on_held_out_folds_of_a_real_task():
    """News (the Lee corpus) against encyclopedia (the Wikipedia excerpt): a task that word
    counts can do. (On the 200 polarity sentences the baseline is near chance: the chapter's
    finding, not a test.)"""
    from lmcourse.data import load_corpus, sentences

    rng = random.Random(0)
    news = rng.sample([s for s in sentences(load_corpus("lee").train) if len(s) > 60], 150)
    wiki = rng.sample([s for s in sentences(load_corpus("wiki").train) if len(s) > 60], 150)
    texts, labels = news + wiki, [0] * 150 + [1] * 150
    result = cross_validate(BagOfWords, texts, labels, stratified_folds(labels, k=5, seed=0))
    assert result.pooled["accuracy"] > 0.75  # measured 0.83; chance + 5 sigma of a coin on 300 is 0.64
    assert min(f["accuracy"] for f in result.folds) > 0.65
    polarity = cross_validate(BagOfWords, *load_polarity(), stratified_folds(load_polarity()[1]))
    assert 0.4 < polarity.pooled["accuracy"] < 0.7


# --- fine-tuning lmcourse.bert's tiny classifier --------------------------------------------------

NEUTRAL = ["the", "film", "is", "was", "very", "plot", "acting", "and", "a", "story"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad"] + NEUTRAL


def _toy_task(n: int, seed: int) -> tuple[list[str], list[int]]:
    """Label 1 if the sentence says "good", 0 if it says "bad", among 3-7 neutral words."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        words = rng.choices(NEUTRAL, k=rng.randint(3, 7))
        words.insert(rng.randint(0, len(words)), "good" if i % 2 else "bad")
        texts.append(" ".join(words))
        labels.append(i % 2)
    return texts, labels


def _tiny_classifier(seed: int = 0) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    return BertForSequenceClassification(BertConfig.tiny(len(VOCAB), context_length=16), num_labels=2)


TOKENIZER = WordPieceTokenizer({t: i for i, t in enumerate(VOCAB)})
TOY_CONFIG = finetune_config(lr=3e-3, epochs=15, batch_size=16, warmup_steps=2, progress=False)


def test_fine_tuning_a_tiny_model_lowers_the_loss_and_learns_the_task():
    texts, labels = _toy_task(64, seed=0)
    model = _tiny_classifier()
    history = fine_tune_classifier(model, TOKENIZER, texts, labels, TOY_CONFIG, max_length=16)
    assert history.steps == 15 * 4 and history.epochs_completed == 15
    first, last = history.train_loss[:4], history.train_loss[-4:]
    assert sum(last) / 4 < sum(first) / 4 - 0.3  # measured: 0.70 -> 0.07
    assert history.tokens_seen == 15 * sum(len(TOKENIZER.encode(t)) for t in texts)
    test_texts, test_labels = _toy_task(40, seed=1)
    assert evaluate_predictions(test_labels, predict(model, TOKENIZER, test_texts))["accuracy"] >= 0.9
    again = _tiny_classifier()
    assert fine_tune_classifier(again, TOKENIZER, texts, labels, TOY_CONFIG, max_length=16).train_loss == \
        history.train_loss


def test_predict_is_the_argmax_of_the_models_logits_whatever_the_batch_size():
    texts, _ = _toy_task(23, seed=2)
    model = _tiny_classifier(seed=3).train()
    with torch.no_grad():
        for p in model.parameters():  # large random weights, so that the answers vary with the text
            p.normal_(0, 0.5)
    got = predict(model, TOKENIZER, texts, batch_size=5)
    assert model.training  # the mode is restored
    model.eval()
    with torch.no_grad():
        expected = model(**TOKENIZER(texts, padding=True)).logits.argmax(-1).tolist()
    assert got == expected == predict(model, TOKENIZER, texts, batch_size=64)
    assert all(isinstance(y, int) for y in got) and len(set(got)) == 2  # an untrained model, not constant
    with pytest.raises(TypeError, match="wrap one string"):
        predict(model, TOKENIZER, "the film was good")
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        predict(model, TOKENIZER, texts, batch_size=0)


def test_fine_tuned_method_in_cross_validation_restarts_from_the_same_model_each_fold():
    texts, labels = _toy_task(96, seed=4)
    method = lambda: FineTuned(_tiny_classifier, TOKENIZER, TOY_CONFIG, max_length=16)  # noqa: E731
    result = cross_validate(method, texts, labels, stratified_folds(labels, k=3, seed=0))
    assert result.pooled["accuracy"] >= 0.85
    a, b = method().fit(texts[:32], labels[:32]), method().fit(texts[:32], labels[:32])
    assert a.history.train_loss == b.history.train_loss


def test_fine_tune_classifier_errors():
    texts, labels = _toy_task(8, seed=0)
    model = _tiny_classifier()
    with pytest.raises(ValueError, match="got 8 texts but 7 labels"):
        fine_tune_classifier(model, TOKENIZER, texts, labels[:7], TOY_CONFIG)
    with pytest.raises(ValueError, match=r"labels\[0\] must be an int class id >= 0 < num_labels=2"):
        fine_tune_classifier(model, TOKENIZER, texts, [2] + labels[1:], TOY_CONFIG)
    with pytest.raises(ValueError, match="does not support checkpoint"):
        fine_tune_classifier(model, TOKENIZER, texts, labels, finetune_config(checkpoint="x.safetensors"))
    with pytest.raises(TypeError, match="texts\\[1\\] must be a str"):
        fine_tune_classifier(model, TOKENIZER, [texts[0], 5] + texts[2:], labels, TOY_CONFIG)


def test_frozen_encoder_separates_a_toy_task_with_a_random_encoder():
    """Mean-pooled vectors of a random encoder still carry which words occur: logistic regression
    on them learns "good" against "bad"; the encoder's weights are not changed."""
    torch.manual_seed(0)
    encoder = BertModel(BertConfig.tiny(len(VOCAB), context_length=16))
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    texts, labels = _toy_task(64, seed=0)
    method = FrozenEncoder(encoder, TOKENIZER, C=100.0, max_length=16).fit(texts, labels)
    test_texts, test_labels = _toy_task(40, seed=1)
    got = method.predict(test_texts)
    assert all(isinstance(y, int) for y in got)
    assert evaluate_predictions(test_labels, got)["accuracy"] >= 0.9
    assert all(torch.equal(v, before[k]) for k, v in encoder.state_dict().items())
