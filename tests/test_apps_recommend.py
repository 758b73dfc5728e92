"""lmcourse.apps.recommend: hit rate and both recommenders by hand, the simulation follows its rule and
its seed, read and held-out articles stay where they belong, and bad input gets clear errors."""

import numpy as np
import pytest

from lmcourse.apps.recommend import (PopularityRecommender, SimilarityRecommender, article_embeddings, hit_rate,
                                     hits_at_k, hold_out_last, simulate_histories, tfidf_vectors)
from lmcourse.data import load_documents
from lmcourse.intervals import rate_interval


@pytest.fixture(scope="module")
def corpus():
    documents = load_documents("wiki")
    return [t for t, _ in documents], tfidf_vectors([" ".join(p) for _, p in documents])


def test_hit_rate_by_hand():
    recommendations = [["a", "b", "c"], ["c", "a", "b"], ["b", "c", "a"], ["c", "b", "a"]]
    targets = ["a", "a", "a", "d"]  # found at ranks 1, 2, 3 and never
    assert hits_at_k(recommendations, targets, k=1).tolist() == [1, 0, 0, 0]
    assert [hit_rate(recommendations, targets, k)[0] for k in (1, 2, 3, 10)] == [0.25, 0.5, 0.75, 0.75]
    rate, low, high = hit_rate(recommendations, targets, k=2)
    assert (rate, low, high) == rate_interval([True, True, False, False]) and low < rate < high
    rate, low, high = hit_rate(recommendations[:3], targets[:3], k=3)  # 3 hits of 3
    assert rate == high == 1.0 and low < 0.5  # Wilson stays honest at the end; a bootstrap would say 1 to 1
    with pytest.raises(ValueError, match="one list of recommendations per target"):
        hits_at_k(recommendations, ["a"], k=1)
    with pytest.raises(ValueError, match="k must be a positive int"):
        hits_at_k(recommendations, targets, k=0)


def test_popularity_by_hand():
    titles = ["a", "b", "c", "d", "e"]
    pop = PopularityRecommender(titles, [["b", "c"], ["c", "d", "b"], ["c"], ["e"]])  # c 3, b 2, d 1, e 1, a 0
    assert pop.counts.tolist() == [0, 2, 3, 1, 1]
    assert pop.recommend([], k=3) == ["c", "b", "d"]  # a new reader gets the most read; d before e: catalogue order
    assert pop.recommend(["c", "d"], k=2) == ["b", "e"]  # read articles are never recommended
    assert pop.recommend(["a", "b", "c", "d"], k=3) == ["e"]  # only one unread article is left
    with pytest.raises(ValueError, match=r"unknown article\(s\) \['z'\]"):
        pop.recommend(["a", "z"])
    with pytest.raises(ValueError, match="unknown article"):
        PopularityRecommender(titles, [["a", "zz"]])
    with pytest.raises(ValueError, match="non-empty list of training histories"):
        PopularityRecommender(titles, [])
    with pytest.raises(TypeError, match="list of article titles"):
        pop.recommend("a")


def test_similarity_equals_cosine_to_the_mean_by_hand():
    titles = ["x", "y", "z", "xy"]
    vectors = np.array([[3.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 2.0], [1.0, 1.0, 0.0]])
    sim = SimilarityRecommender(titles, vectors)
    # history x, y: unit vectors (1,0,0) and (0,1,0), mean (.5,.5,0); xy's cosine is 1, z's is 0
    assert sim.recommend(["x", "y"], k=5) == ["xy", "z"]
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    profile = unit[[0, 3]].mean(axis=0)
    expected = [titles[i] for i in np.argsort(-(unit @ profile), kind="stable") if titles[i] not in ("x", "xy")]
    assert sim.recommend(["x", "xy"], k=2) == expected == ["y", "z"]
    with pytest.raises(ValueError, match="history is empty"):
        sim.recommend([])
    with pytest.raises(ValueError, match="unknown article"):
        sim.recommend(["w"])
    with pytest.raises(ValueError, match="one row per title"):
        SimilarityRecommender(titles, vectors[:3])
    with pytest.raises(ValueError, match="non-zero"):
        SimilarityRecommender(["a", "b"], np.array([[1.0, 0.0], [0.0, 0.0]]))


def test_simulation_is_seeded_and_follows_its_rule(corpus):
    titles, tfidf = corpus
    histories = simulate_histories(titles, tfidf, n_readers=200, min_length=3, max_length=6, seed=1)
    assert histories == simulate_histories(titles, tfidf, n_readers=200, min_length=3, max_length=6, seed=1)
    assert histories != simulate_histories(titles, tfidf, n_readers=200, min_length=3, max_length=6, seed=2)
    assert {len(h) for h in histories} == {3, 4, 5, 6}
    assert all(len(set(h)) == len(h) for h in histories)  # nobody reads an article twice
    seen, targets = hold_out_last(histories)
    assert all(target not in history for history, target in zip(seen, targets))
    # with no jumps, each next article is among the 5 unread articles most similar to the current one
    index = {t: i for i, t in enumerate(titles)}
    similarity = tfidf @ tfidf.T
    for history in simulate_histories(titles, tfidf, n_readers=50, neighbours=5, jump=0.0, seed=0):
        for step in range(1, len(history)):
            unread = [i for i in range(len(titles)) if titles[i] not in history[:step]]
            closest = sorted(unread, key=lambda i: -similarity[index[history[step - 1]], i])[:5]
            assert index[history[step]] in closest


def test_recommenders_never_return_read_articles(corpus):
    titles, tfidf = corpus
    seen, targets = hold_out_last(simulate_histories(titles, tfidf, n_readers=100, seed=0))
    for recommender in (PopularityRecommender(titles, seen), SimilarityRecommender(titles, tfidf)):
        recommendations = [recommender.recommend(history, k=10) for history in seen]
        assert all(len(r) == 10 and not set(r) & set(h) for r, h in zip(recommendations, seen))
        assert 0 < hit_rate(recommendations, targets, k=10)[0] < 1


@pytest.mark.parametrize("kwargs, message", [
    ({"min_length": 5, "max_length": 4}, "min_length <= max_length"),
    ({"jump": 1.5}, "jump must be a probability"),
    ({"n_readers": 0}, "n_readers must be a positive int"),
])
def test_simulation_refuses_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        simulate_histories(list("abcdefghij"), np.eye(10), **kwargs)


def test_hold_out_last_refuses_short_histories():
    with pytest.raises(ValueError, match="fewer than two articles"):
        hold_out_last([["a", "b"], ["c"]])
    with pytest.raises(ValueError, match="non-empty list of histories"):
        hold_out_last([])


def test_article_embeddings_average_the_paragraph_vectors():
    from lmcourse.bert import load_minilm, sentence_embeddings

    model, tokenizer = load_minilm()
    articles = [["Cats purr.", "Cats sleep a lot.", "Not read: past max_paragraphs."], ["Stocks fell today."]]
    vectors = article_embeddings(articles, model, tokenizer, max_paragraphs=2)
    read = ["Cats purr.", "Cats sleep a lot.", "Stocks fell today."]
    paragraphs = sentence_embeddings(model, tokenizer, read).numpy()  # (3, C)
    first = paragraphs[:2].mean(axis=0)
    np.testing.assert_allclose(vectors, [first / np.linalg.norm(first), paragraphs[2]], atol=1e-5)
    with pytest.raises(ValueError, match="each a non-empty list of paragraphs"):
        article_embeddings([["x"], []], model, tokenizer)
