import dataclasses
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lmcourse import metrics
from lmcourse.metrics import Result


def test_entropy_known_values():
    assert metrics.entropy([0.5, 0.5]) == pytest.approx(1.0)
    assert metrics.entropy([1.0, 0.0]) == pytest.approx(0.0)
    assert metrics.entropy([0.25] * 4) == pytest.approx(2.0)
    assert metrics.entropy([0.5, 0.25, 0.25]) == pytest.approx(1.5)
    assert metrics.entropy([0.5, 0.5], base=math.e) == pytest.approx(math.log(2))


def test_cross_entropy_is_at_least_entropy_and_matches_torch():
    rng = np.random.default_rng(0)
    for _ in range(20):
        p, q = rng.dirichlet(np.ones(6)), rng.dirichlet(np.ones(6))
        assert metrics.cross_entropy(p, q) >= metrics.entropy(p) - 1e-12
        # torch's soft-target cross-entropy from log-probabilities, in nats
        expected = F.cross_entropy(torch.log(torch.tensor(q))[None], torch.tensor(p)[None]).item()
        assert metrics.cross_entropy(p, q, base=math.e) == pytest.approx(expected, rel=1e-9)


def test_cross_entropy_infinite_when_model_gives_zero():
    assert metrics.cross_entropy([0.5, 0.5], [1.0, 0.0]) == math.inf
    assert metrics.cross_entropy([1.0, 0.0], [1.0, 0.0]) == 0.0


@pytest.mark.parametrize("bad, match", [
    ([], "non-empty"), ([0.5, 0.6], "sums to"), ([1.5, -0.5], "negative"), ([[0.5, 0.5]], "1-D"),
])
def test_distribution_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        metrics.entropy(bad)


def test_cross_entropy_length_mismatch():
    with pytest.raises(ValueError, match="same length"):
        metrics.cross_entropy([0.5, 0.5], [1 / 3] * 3)


def test_perplexity_matches_torch_loss():
    torch.manual_seed(0)
    logits = torch.randn(64, 10)
    targets = torch.randint(0, 10, (64,))
    loss = F.cross_entropy(logits, targets)
    log_probs = torch.log_softmax(logits, -1)[torch.arange(64), targets]
    assert metrics.perplexity(log_probs) == pytest.approx(math.exp(loss.item()), rel=1e-6)
    assert metrics.bits_per_token(log_probs) == pytest.approx(loss.item() / math.log(2), rel=1e-6)


def test_perplexity_uniform_equals_vocabulary_size():
    assert metrics.perplexity([math.log(1 / 37)] * 11) == pytest.approx(37)
    assert metrics.perplexity(x for x in [math.log(0.5)] * 3) == pytest.approx(2)


def test_perplexity_zero_probability_is_infinite():
    assert metrics.perplexity([math.log(0.5), -math.inf]) == math.inf


@pytest.mark.parametrize("bad, match", [([], "empty"), ([0.3, 0.2], "<= 0")])
def test_perplexity_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        metrics.perplexity(bad)


def test_bits_per_char():
    assert metrics.bits_per_char(8 * math.log(2), 4) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="positive"):
        metrics.bits_per_char(1.0, 0)
    with pytest.raises(ValueError, match=">= 0"):
        metrics.bits_per_char(-1.0, 3)


def test_classification_scores_hand_worked():
    y_true = [1, 1, 1, 0, 0, 0, 0, 1]
    y_pred = [1, 0, 1, 1, 0, 0, 1, 1]
    # tp = 3, fp = 2, fn = 1, tn = 2
    assert metrics.accuracy(y_true, y_pred) == pytest.approx(5 / 8)
    assert metrics.precision(y_true, y_pred) == pytest.approx(3 / 5)
    assert metrics.recall(y_true, y_pred) == pytest.approx(3 / 4)
    assert metrics.f1_score(y_true, y_pred) == pytest.approx(2 * (3 / 5) * (3 / 4) / (3 / 5 + 3 / 4))
    # the other class as positive: tp = 2, fp = 1, fn = 2
    assert metrics.precision(y_true, y_pred, positive=0) == pytest.approx(2 / 3)
    assert metrics.recall(y_true, y_pred, positive=0) == pytest.approx(1 / 2)


def test_classification_scores_degenerate_and_errors():
    assert metrics.precision([0, 0], [0, 0]) == 0.0
    assert metrics.recall([0, 0], [1, 1]) == 0.0
    assert metrics.f1_score([0, 0], [0, 0]) == 0.0
    assert metrics.accuracy(np.array(["a", "b"]), ["a", "a"]) == 0.5
    with pytest.raises(ValueError, match="different lengths"):
        metrics.accuracy([1, 0], [1])
    with pytest.raises(ValueError, match="no labels"):
        metrics.f1_score([], [])


def _result(name="unigram", ppl=100.0, **kw):
    fields = dict(model=name, family="n-gram", tokenization="words", parameters=10, test_perplexity=ppl,
                  bits_per_char=2.5, train_seconds=1.25, chapter="2")
    fields.update(kw)
    return Result(**fields)


def test_record_appends_and_replaces(tmp_path):
    path = tmp_path / "results.csv"
    metrics.record(_result("a", 10.0), path)
    metrics.record(_result("b", 20.0), path)
    rows = metrics.record(_result("a", 5.0), path)
    assert [(r.model, r.test_perplexity) for r in rows] == [("a", 5.0), ("b", 20.0)]
    assert metrics.load_results(path) == rows
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv", "results.csv.lock"]  # no temporary file


def test_record_uses_environment_path(tmp_path, monkeypatch):
    monkeypatch.setenv("LMCOURSE_RESULTS", str(tmp_path / "r.csv"))
    metrics.record(_result())
    assert metrics.results_path() == tmp_path / "r.csv"
    assert len(metrics.load_results()) == 1


def test_load_results_missing_file_is_empty(tmp_path):
    assert metrics.load_results(tmp_path / "none.csv") == []


def test_load_results_rejects_foreign_csv(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text("name,score\nx,1\n")
    with pytest.raises(ValueError, match="columns"):
        metrics.load_results(path)


@pytest.mark.parametrize("kw, match", [
    (dict(model=" "), "model"), (dict(parameters=-1), "parameters"),
    (dict(test_perplexity=float("nan")), "test_perplexity"), (dict(bits_per_char=-0.1), "bits_per_char"),
])
def test_result_validation(kw, match):
    with pytest.raises(ValueError, match=match):
        _result(**kw)


def test_infinite_perplexity_is_recorded(tmp_path):
    path = tmp_path / "results.csv"
    metrics.record(_result("mle", math.inf), path)
    assert metrics.load_results(path)[0].test_perplexity == math.inf


def test_results_table_sorted_with_short_headers(tmp_path):
    path = tmp_path / "results.csv"
    assert metrics.results_table(path).empty
    metrics.record(_result("a", 10.0, bits_per_char=1.0), path)
    metrics.record(_result("b", 20.0, bits_per_char=3.0), path)
    table = metrics.results_table(path)
    assert list(table.columns) == list(metrics.RESULT_HEADERS.values())
    assert table["model"].tolist() == ["b", "a"] and table["bpc"].tolist() == [3.0, 1.0]


def test_results_table_up_to_a_chapter_keeps_earlier_rows_only(tmp_path):
    path = tmp_path / "results.csv"
    for name, chapter in (("ngram", "2"), ("ff", "3a"), ("lstm", "3b"), ("gpt", "10")):
        metrics.record(dataclasses.replace(_result(name, 10.0), chapter=chapter), path)
    assert sorted(metrics.results_table(path, up_to="3a")["model"]) == ["ff", "ngram"]
    assert sorted(metrics.results_table(path, up_to="9")["model"]) == ["ff", "lstm", "ngram"]
    assert len(metrics.results_table(path)) == 4
    with pytest.raises(ValueError, match="chapter label"):
        metrics.results_table(path, up_to="three")


def test_style_results_escapes_text_and_formats_numbers(tmp_path):
    path = tmp_path / "results.csv"
    metrics.record(dataclasses.replace(_result("lstm", 159.87), tokenization="words (min count 2, <unk>)",
                                       parameters=5293888), path)
    html = metrics.style_results(metrics.results_table(path))._repr_html_()
    assert "&lt;unk&gt;" in html and "<unk>" not in html
    assert ">159.9<" in html and ">5,293,888<" in html



def test_record_from_several_writers_at_once_keeps_every_row(tmp_path):
    path = tmp_path / "results.csv"

    def record_many(start: int) -> None:
        for i in range(start, start + 25):
            metrics.record(_result(f"model {i}", 10.0 + i), path)

    with ThreadPoolExecutor(max_workers=4) as pool:  # each record() opens its own lock file: flock excludes
        list(pool.map(record_many, [0, 100, 200, 300]))
    assert len(metrics.load_results(path)) == 100


def test_paired_bootstrap_difference_and_interval():
    rng = np.random.default_rng(1)
    chars = rng.integers(50, 500, size=200)
    hard = rng.gamma(2.0, 1.0, size=200) * chars  # units differ a lot in difficulty ...
    better = hard * 0.97  # ... and one model is 3% better on every one of them
    diff, low, high = metrics.paired_bootstrap(hard, better, chars)
    assert diff == pytest.approx((hard - better).sum() / chars.sum() / math.log(2))
    assert 0 < low < diff < high
    # pairing cancels the units' difficulty: the interval is far narrower than the spread of either model
    unpaired = [metrics.bits_per_char(hard[i].sum(), chars[i].sum())
                for i in rng.integers(0, 200, size=(500, 200))]
    assert high - low < 0.2 * (np.percentile(unpaired, 97.5) - np.percentile(unpaired, 2.5))


def test_paired_bootstrap_identical_models_and_seed():
    nll, chars = [3.0, 1.0, 2.0], [10, 5, 7]
    assert metrics.paired_bootstrap(nll, nll, chars) == (0.0, 0.0, 0.0)
    a, b = [3.0, 1.0, 2.5, 4.0], [2.0, 1.5, 2.0, 3.0]
    assert metrics.paired_bootstrap(a, b, [4] * 4, seed=3) == metrics.paired_bootstrap(a, b, [4] * 4, seed=3)
    diff, low, high = metrics.paired_bootstrap(a, b, [4] * 4, confidence=0.5)
    assert low <= diff <= high


@pytest.mark.parametrize("kw, match", [
    (dict(nll_a=[1.0, 2.0], nll_b=[1.0], num_chars=[1, 1]), "of one length"),
    (dict(nll_a=[], nll_b=[], num_chars=[]), "non-empty"),
    (dict(nll_a=[1.0], nll_b=[1.0], num_chars=[0]), "add up to more than 0"),
    (dict(nll_a=[1.0], nll_b=[1.0], num_chars=[1], resamples=0), "resamples must be a positive int"),
    (dict(nll_a=[1.0], nll_b=[1.0], num_chars=[1], confidence=95), "confidence must be in"),
])
def test_paired_bootstrap_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        metrics.paired_bootstrap(**kw)


def test_rate_interval_and_paired_rate_difference():
    from lmcourse.metrics import paired_rate_difference, rate_interval
    hits = [True] * 60 + [False] * 40
    rate, low, high = rate_interval(hits)
    assert rate == 0.6 and low == pytest.approx(0.5020, abs=1e-4) and high == pytest.approx(0.6906, abs=1e-4)  # Wilson
    rate, low, high = rate_interval([True] * 10)
    assert rate == high == 1.0 and low == pytest.approx(0.7225, abs=1e-4)  # not the bootstrap's (1, 1)
    assert rate_interval([False] * 120)[2] == pytest.approx(0.0310, abs=1e-4)
    # paired: b is right on a subset of a's examples, so every resample has a >= b
    a, b = [1] * 50 + [0] * 50, [1] * 30 + [0] * 70
    diff, low, high = paired_rate_difference(a, b)
    assert diff == pytest.approx(0.2) and 0 < low < 0.2 < high
    for bad in ([], [[1, 0]], [0.5, 1]):
        with pytest.raises(ValueError, match="booleans"):
            rate_interval(bad)
    with pytest.raises(ValueError, match="same examples"):
        paired_rate_difference([1, 0], [1])


def test_mean_interval_and_paired_mean_difference():
    from lmcourse.metrics import mean_interval, paired_mean_difference, paired_rate_difference
    values = [1.0, 0.5, 1 / 3, 0.0] * 25
    mean, low, high = mean_interval(values)
    sd = np.std(values) / np.sqrt(len(values))
    assert mean == pytest.approx(np.mean(values)) and low < mean < high
    assert (high - low) == pytest.approx(2 * 1.96 * sd, rel=0.2)  # the bootstrap agrees with the normal approximation
    a, b = [1, 0, 1, 1, 0] * 20, [0, 0, 1, 0, 0] * 20
    assert paired_mean_difference(a, b) == paired_rate_difference(a, b)  # 0/1 scores: the same resamples
    with pytest.raises(ValueError, match="finite numbers"):
        mean_interval([1.0, float("nan")])
    with pytest.raises(ValueError, match="same examples"):
        paired_mean_difference([1.0, 0.5], [1.0])


def test_statistic_interval_bootstraps_a_score_that_is_not_a_mean():
    from lmcourse.metrics import f1_score, mean_interval, statistic_interval

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    predicted = np.where(rng.random(200) < 0.8, y, 1 - y)  # 80% right
    value, low, high = statistic_interval(f1_score, y, predicted)
    assert value == f1_score(y, predicted) and low < value < high and 0.05 < high - low < 0.25
    assert statistic_interval(f1_score, y, predicted) == (value, low, high)  # the same seed, the same interval
    _, low4, high4 = statistic_interval(f1_score, np.tile(y, 4), np.tile(predicted, 4))
    assert high4 - low4 < 0.7 * (high - low)  # four times the examples: about half the width
    perfect = statistic_interval(f1_score, y, y)
    assert perfect == (1.0, 1.0, 1.0)
    # for a plain mean it agrees with mean_interval's bootstrap to within resampling noise
    scores = rng.random(300)
    _, low_m, high_m = statistic_interval(np.mean, scores)
    _, low_b, high_b = mean_interval(scores)
    assert abs(low_m - low_b) < 0.01 and abs(high_m - high_b) < 0.01
    with pytest.raises(ValueError, match="same length"):
        statistic_interval(f1_score, y, predicted[:-1])
    with pytest.raises(ValueError, match="same length"):
        statistic_interval(f1_score)
