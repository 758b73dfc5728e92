"""Tests for lmcourse.markov: a Markov source with a known entropy rate."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lmcourse import data
from lmcourse.markov import MarkovSource


def entropy_bits(p):
    p = np.asarray(p, dtype=float)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def test_reexported_from_data():
    assert data.MarkovSource is MarkovSource


@pytest.mark.parametrize("V", [1, 2, 5, 26])
def test_uniform_chain_has_entropy_rate_log2_V(V):
    src = MarkovSource(np.full((V, V), 1.0 / V))
    assert src.entropy_rate() == pytest.approx(math.log2(V), abs=1e-12)
    assert np.allclose(src.stationary, 1.0 / V)


def test_iid_chain_has_the_entropy_of_its_row():
    p = np.array([0.5, 0.25, 0.125, 0.125])
    src = MarkovSource(np.tile(p, (4, 1)))
    assert np.allclose(src.stationary, p)
    assert src.entropy_rate() == pytest.approx(1.75, abs=1e-12)  # worked by hand
    assert src.entropy_rate() == pytest.approx(entropy_bits(p), abs=1e-12)


def test_two_state_chain_known_answer():
    a, b = 0.1, 0.5  # P(a->b), P(b->a): stationary (b, a) / (a + b)
    src = MarkovSource(np.array([[1 - a, a], [b, 1 - b]]))
    assert np.allclose(src.stationary, [b / (a + b), a / (a + b)])
    expected = (b * entropy_bits([a, 1 - a]) + a * entropy_bits([b, 1 - b])) / (a + b)
    assert src.entropy_rate() == pytest.approx(expected, abs=1e-12)


def test_entropy_rate_base():
    src = MarkovSource.random(6, seed=3)
    assert src.entropy_rate(math.e) == pytest.approx(src.entropy_rate() * math.log(2))
    assert src.entropy_rate(base=4) == pytest.approx(src.entropy_rate() / 2)
    for base in (1, 0, -2):
        with pytest.raises(ValueError, match="base"):
            src.entropy_rate(base)


def test_stationary_matches_an_eigenvector_oracle():
    src = MarkovSource.random(10, concentration=0.3, seed=7)
    P, pi = src.transition, src.stationary
    assert np.allclose(pi @ P, pi, atol=1e-12)
    assert pi.sum() == pytest.approx(1.0) and (pi >= 0).all()
    values, vectors = np.linalg.eig(P.T)
    v = np.real(vectors[:, np.argmin(np.abs(values - 1))])
    assert np.allclose(pi, v / v.sum(), atol=1e-10)


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(2, 7)).map(lambda t: (t[0], t[0])),
              elements=st.floats(0.01, 1.0)))
def test_stationary_and_entropy_bounds_for_random_matrices(weights):
    P = weights / weights.sum(axis=1, keepdims=True)
    src = MarkovSource(P)
    assert np.allclose(src.stationary @ src.transition, src.stationary, atol=1e-10)
    assert 0 <= src.entropy_rate() <= math.log2(len(P)) + 1e-12


def test_periodic_chain():
    src = MarkovSource(np.array([[0.0, 1.0], [1.0, 0.0]]))
    assert np.allclose(src.stationary, [0.5, 0.5])
    assert src.entropy_rate() == 0.0
    x = src.sample(20, seed=1)
    assert (np.diff(x) != 0).all()


def test_random_is_deterministic_and_concentration_controls_entropy():
    a, b = MarkovSource.random(8, 0.5, seed=0), MarkovSource.random(8, 0.5, seed=0)
    assert np.array_equal(a.transition, b.transition)
    assert not np.array_equal(a.transition, MarkovSource.random(8, 0.5, seed=1).transition)
    assert np.allclose(a.transition.sum(axis=1), 1.0)
    rates = [np.mean([MarkovSource.random(8, c, seed=s).entropy_rate() for s in range(5)])
             for c in (0.05, 0.5, 5.0, 500.0)]
    assert rates == sorted(rates)
    assert rates[-1] == pytest.approx(3.0, abs=0.01)  # nearly uniform over 8 symbols


def test_random_with_tiny_concentration_is_still_irreducible():
    src = MarkovSource.random(12, concentration=0.01, seed=0)
    assert src.entropy_rate() < 1.0


def test_sample_basic_properties():
    src = MarkovSource.random(5, seed=2)
    x = src.sample(1000, seed=4)
    assert x.dtype == np.int64 and x.shape == (1000,)
    assert x.min() >= 0 and x.max() < 5
    assert np.array_equal(x, src.sample(1000, seed=4))
    assert not np.array_equal(x, src.sample(1000, seed=5))
    assert np.array_equal(src.sample(50, seed=np.random.default_rng(9)), src.sample(50, seed=9))
    assert src.sample(0).shape == (0,)
    assert src.sample(np.int64(3), seed=0).shape == (3,)


@pytest.mark.parametrize("n", [-1, 2.5, "10", True])
def test_sample_rejects_bad_n(n):
    with pytest.raises(ValueError, match="n must be a non-negative int"):
        MarkovSource.random(3).sample(n)


def test_sample_never_takes_an_impossible_transition():
    P = np.array([[0.0, 0.7, 0.3, 0.0], [0.5, 0.0, 0.0, 0.5], [0.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0]])
    x = MarkovSource(P).sample(20_000, seed=0)
    assert (P[x[:-1], x[1:]] > 0).all()


@pytest.fixture(scope="module")
def long_sample():
    src = MarkovSource.random(6, concentration=0.5, seed=11)
    return src, src.sample(200_000, seed=0)


def test_empirical_frequencies_approach_the_source(long_sample):
    src, x = long_sample
    V = src.num_symbols
    counts = np.zeros((V, V))
    np.add.at(counts, (x[:-1], x[1:]), 1)  # (V, V) bigram counts
    P_hat = counts / counts.sum(axis=1, keepdims=True)
    assert np.abs(P_hat - src.transition).max() < 0.02
    assert np.abs(np.bincount(x, minlength=V) / len(x) - src.stationary).max() < 0.01


def test_bigram_cross_entropy_approaches_the_entropy_rate(long_sample):
    src, x = long_sample
    V = src.num_symbols
    train, test = x[:100_000], x[100_000:]
    counts = np.full((V, V), 0.01)  # add-0.01 smoothing
    np.add.at(counts, (train[:-1], train[1:]), 1)
    P_hat = counts / counts.sum(axis=1, keepdims=True)
    cross_entropy = -np.log2(P_hat[test[:-1], test[1:]]).mean()  # bits per symbol
    assert cross_entropy == pytest.approx(src.entropy_rate(), abs=0.02)
    assert cross_entropy > src.entropy_rate() - 0.02  # no model beats the source (up to noise)


def test_decode_and_encode():
    src = MarkovSource.random(4, seed=0)
    assert src.symbols == "abcd"
    assert src.decode([0, 1, 3, 2]) == "abdc"
    assert src.encode("abdc").tolist() == [0, 1, 3, 2]
    x = src.sample(100, seed=0)
    assert np.array_equal(src.encode(src.decode(x)), x)
    with pytest.raises(ValueError, match="'z' is not a symbol"):
        src.encode("abz")
    custom = MarkovSource(np.full((3, 3), 1 / 3), symbols="xyz")
    assert custom.decode([2, 1, 0]) == "zyx"


def test_transition_is_a_read_only_copy():
    P = np.full((3, 3), 1 / 3)
    src = MarkovSource(P)
    P[0] = [1.0, 0.0, 0.0]
    assert np.allclose(src.transition, 1 / 3)
    with pytest.raises(ValueError):
        src.transition[0, 0] = 0.5
    with pytest.raises(ValueError):
        src.stationary[0] = 0.5


def test_repr():
    assert repr(MarkovSource(np.full((2, 2), 0.5))) == (
        "MarkovSource(num_symbols=2, symbols='ab', entropy_rate=1.0000 bits/symbol)")


@pytest.mark.parametrize("P, message", [
    (np.ones((2, 3)) / 3, "square"),
    (np.ones(4) / 4, "square"),
    (np.zeros((0, 0)), "non-empty"),
    (np.array([[0.5, 0.6], [0.5, 0.5]]), "row 0 sums to 1.1"),
    (np.array([[1.5, -0.5], [0.5, 0.5]]), "non-negative"),
    (np.array([[np.nan, 1.0], [0.5, 0.5]]), "finite"),
    (np.array([[1.0, 0.0], [0.0, 1.0]]), "reducible"),  # two absorbing states
    (np.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.3, 0.3, 0.4]]), "reducible"),  # transient state
    (np.kron(np.eye(2), np.full((2, 2), 0.5)), "reducible"),  # two separate blocks
])
def test_rejects_bad_transition_matrices(P, message):
    with pytest.raises(ValueError, match=message):
        MarkovSource(P)


def test_rejects_bad_symbols():
    P = np.full((3, 3), 1 / 3)
    with pytest.raises(ValueError, match="3 distinct characters"):
        MarkovSource(P, symbols="ab")
    with pytest.raises(ValueError, match="3 distinct characters"):
        MarkovSource(P, symbols="aab")
    big = np.full((70, 70), 1 / 70)  # more states than default letters and digits
    with pytest.raises(ValueError, match="70 distinct characters"):
        MarkovSource(big)
    assert MarkovSource(big, symbols="".join(chr(0x4E00 + i) for i in range(70))).num_symbols == 70


@pytest.mark.parametrize("kwargs, message", [
    ({"num_symbols": 1}, "num_symbols"),
    ({"num_symbols": 4.0}, "num_symbols"),
    ({"concentration": 0}, "concentration"),
    ({"concentration": -1.0}, "concentration"),
    ({"concentration": float("nan")}, "concentration"),
    ({"concentration": float("inf")}, "concentration"),
])
def test_random_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MarkovSource.random(**kwargs)


# --- estimation and scoring --------------------------------------------------------------------

def test_fit_bigram_counts_pairs_with_add_alpha():
    fitted = MarkovSource.fit([0, 1, 1, 2, 0, 1], num_symbols=3, order=1, alpha=0.5)
    # pairs: (0,1) x2, (1,1), (1,2), (2,0)
    counts = np.array([[0, 2, 0], [0, 1, 1], [1, 0, 0]]) + 0.5
    np.testing.assert_allclose(fitted.transition, counts / counts.sum(1, keepdims=True))


def test_fit_unigram_uses_one_row_for_every_context():
    fitted = MarkovSource.fit([0, 0, 0, 1], num_symbols=3, order=0, alpha=1.0)
    np.testing.assert_allclose(fitted.transition, np.tile([4 / 7, 2 / 7, 1 / 7], (3, 1)))
    np.testing.assert_allclose(fitted.stationary, [4 / 7, 2 / 7, 1 / 7])


def test_fit_recovers_the_source_from_a_long_sample():
    source = MarkovSource.random(num_symbols=5, concentration=1.0, seed=4)
    fitted = MarkovSource.fit(source.sample(200_000, seed=1), num_symbols=5, alpha=1.0)
    np.testing.assert_allclose(fitted.transition, source.transition, atol=0.02)


def test_cross_entropy_hand_worked_and_bounds():
    chain = MarkovSource(np.array([[0.5, 0.5], [0.25, 0.75]]))
    # transitions 0->1 (1 bit), 1->1 (log2 4/3), 1->0 (2 bits)
    expected = (1 + np.log2(4 / 3) + 2) / 3
    assert chain.cross_entropy([0, 1, 1, 0]) == pytest.approx(expected)
    assert chain.cross_entropy([0, 1, 1, 0], base=np.e) == pytest.approx(expected * np.log(2))
    source = MarkovSource.random(num_symbols=6, concentration=0.5, seed=2)
    sample = source.sample(300_000, seed=5)
    # scoring a sample with the true chain estimates the entropy rate; a unigram model is worse
    assert source.cross_entropy(sample) == pytest.approx(source.entropy_rate(), abs=0.02)
    unigram = MarkovSource.fit(sample, num_symbols=6, order=0)
    assert unigram.cross_entropy(sample) > source.entropy_rate() + 0.1


def test_cross_entropy_of_an_impossible_transition_is_infinite():
    chain = MarkovSource(np.array([[0.0, 1.0], [1.0, 0.0]]))
    assert chain.cross_entropy([0, 0]) == np.inf


@pytest.mark.parametrize("sample, kwargs, error, match", [
    ([], {}, ValueError, "non-empty"),
    ([[0, 1]], {}, ValueError, "1-D"),
    ([0.5, 1.0], {}, TypeError, "integer symbol ids"),
    ([0, 3], {}, ValueError, r"in \[0, 3\)"),
    ([0, 1], {"order": 2}, ValueError, "order"),
    ([0, 1], {"alpha": 0}, ValueError, "alpha"),
])
def test_fit_rejects_bad_input(sample, kwargs, error, match):
    with pytest.raises(error, match=match):
        MarkovSource.fit(sample, num_symbols=3, **kwargs)


def test_cross_entropy_needs_two_symbols():
    with pytest.raises(ValueError, match="at least 2"):
        MarkovSource.random(num_symbols=3).cross_entropy([1])
