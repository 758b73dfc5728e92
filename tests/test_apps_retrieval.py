"""lmcourse.apps.retrieval: BM25 by hand, exact cosine search against scikit-learn, the ranking measures,
and clear errors."""

import math

import numpy as np
import pytest

from lmcourse.apps.retrieval import BM25Index, EmbeddingIndex, recall_at_k, reciprocal_rank, reciprocal_rank_fusion

TEXTS = ["a cat is a feline and likes to purr", "a dog is the human's best friend and loves to play",
         "a bird is a beautiful animal that can fly"]


def test_bm25_equals_the_formula_worked_by_hand():
    index = BM25Index(TEXTS, ["cat", "dog", "bird"])
    # words of 2+ characters: 7, 10 ("human's" -> human) and 7 of them, so avgdl = 8; N = 3
    idf_once = math.log(1 + (3 - 1 + 0.5) / (1 + 0.5))  # a word in one passage
    idf_all = math.log(1 + (3 - 3 + 0.5) / (3 + 0.5))  # "is" is in every passage

    def term(tf, length):
        return tf / (tf + 1.5 * (1 - 0.75 + 0.75 * length / 8))

    scores = index.scores("Does the cat purr? Is it")
    expected_cat = 2 * idf_once * term(1, 7) + idf_all * term(1, 7)  # cat, purr, is ("it" is in no passage)
    expected_dog = idf_once * term(1, 10) + idf_all * term(1, 10)  # the, is
    assert scores == pytest.approx([expected_cat, expected_dog, idf_all * term(1, 7)], rel=1e-5)
    assert [i for i, _ in index.search("Does the cat purr?", k=3)] == ["cat", "dog", "bird"]
    assert index.scores("zebra")[0] == 0.0 and len(index.search("zebra", k=5)) == 3


def test_embedding_search_equals_brute_force_cosine():
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(0)
    vectors, queries = rng.normal(size=(200, 16)), rng.normal(size=(7, 16))
    ids = [f"p{i}" for i in range(200)]
    index = EmbeddingIndex(vectors * rng.uniform(0.5, 3, size=(200, 1)), ids)  # lengths do not matter
    reference = NearestNeighbors(n_neighbors=5, metric="cosine", algorithm="brute").fit(vectors)
    distances, neighbours = reference.kneighbors(queries)
    for hits, dist, near in zip(index.search_many(queries, k=5), distances, neighbours):
        assert [i for i, _ in hits] == [ids[j] for j in near]
        assert [s for _, s in hits] == pytest.approx(1 - dist, abs=1e-5)
    assert index.search(queries[0], k=5) == index.search_many(queries[:1], k=5)[0]


def test_ranking_measures_by_hand():
    ranking = [("a", 3.0), ("b", 2.0), ("c", 1.0)]
    assert recall_at_k(ranking, {"b", "z"}, k=1) == 0.0
    assert recall_at_k(ranking, {"b", "z"}, k=2) == 0.5
    assert recall_at_k(["a", "b"], {"a"}, k=10) == 1.0
    assert reciprocal_rank(ranking, {"c"}) == pytest.approx(1 / 3)
    assert reciprocal_rank(ranking, {"z"}) == 0.0
    with pytest.raises(ValueError, match="at least one passage"):
        recall_at_k(ranking, set(), k=1)


@pytest.mark.parametrize("make, message", [
    (lambda: EmbeddingIndex(np.zeros((0, 4)), []), "at least one passage"),
    (lambda: EmbeddingIndex(np.ones((2, 4)), ["a"]), "one id per passage"),
    (lambda: EmbeddingIndex(np.ones((2, 4)), ["a", "a"]), "unique"),
    (lambda: EmbeddingIndex(np.array([[1.0, 0.0], [0.0, 0.0]]), ["a", "b"]), "non-zero"),
    (lambda: BM25Index([], []), "at least one passage"),
    (lambda: BM25Index("one text", ["a"]), "list of strings"),
])
def test_bad_collections_are_refused_clearly(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_bad_queries_are_refused_clearly():
    index = EmbeddingIndex(np.eye(3), ["a", "b", "c"])
    with pytest.raises(ValueError, match="embed them with the same model"):
        index.search(np.ones(4))
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        index.search(np.ones(3), k=0)
    with pytest.raises(TypeError, match="query must be a string"):
        BM25Index(TEXTS, ["a", "b", "c"]).search(["cat"])


def test_reciprocal_rank_fusion_by_hand():
    bm25 = [("a", 12.0), ("b", 7.5), ("c", 0.3)]  # scores on any scale: only ranks count
    dense = ["c", "a", "d"]
    fused = reciprocal_rank_fusion([bm25, dense], k=4, constant=60)
    expected = {"a": 1 / 61 + 1 / 62, "b": 1 / 62, "c": 1 / 63 + 1 / 61, "d": 1 / 63}
    assert [i for i, _ in fused] == ["a", "c", "b", "d"]
    assert dict(fused) == pytest.approx(expected)
    assert reciprocal_rank_fusion([dense], k=2) == [("c", 1 / 61), ("a", 1 / 62)]  # one ranking: itself
    # with constant 0, second place in both lists (1/2 + 1/2) ties first place in one (1): ties keep first-met order
    assert [i for i, _ in reciprocal_rank_fusion([["x", "y"], ["z", "y"]], k=3, constant=0)] == ["x", "y", "z"]
    with pytest.raises(ValueError, match="at least one ranking"):
        reciprocal_rank_fusion([])
    with pytest.raises(ValueError, match="constant must be >= 0"):
        reciprocal_rank_fusion([dense], constant=-1)
