"""Tests for lmcourse.embeddings: skip-gram with negative sampling and the probes on word vectors.

Hand-computed losses, the sampling pieces against their formulas (and gensim's subsampling table),
pair generation against a brute-force loop, a learning test on a corpus with planted groups, the
probes on a hand-made matrix, and gensim's most_similar / evaluate_word_analogies as oracles.
"""

from __future__ import annotations

import logging
import math

import matplotlib
import numpy as np
import pytest
import torch

from lmcourse.embeddings import (SkipGram, SkipGramConfig, UnknownWordError, WordVectors,
                                 analogy_accuracy, build_vocab, draw_windows, from_gensim,
                                 keep_probabilities, neighbour_agreement, noise_distribution,
                                 sample_negatives, skipgram_pairs, subsample,
                                 train_skipgram)

matplotlib.use("Agg")
logging.getLogger("gensim").setLevel(logging.WARNING)


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


# --- fixtures -------------------------------------------------------------------------------------

GROUPS = [[f"a{i}" for i in range(6)], [f"b{i}" for i in range(6)]]


def planted_corpus(n_sentences: int = 400, seed: int = 0) -> list[list[str]]:
    """Sentences drawn from one of two word groups; words never meet the other group."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_sentences):
        group = GROUPS[rng.integers(2)]
        out.append([group[i] for i in rng.integers(0, len(group), size=rng.integers(4, 10))])
    return out


@pytest.fixture(scope="module")
def planted_vectors() -> WordVectors:
    cfg = SkipGramConfig(dim=16, window=3, negatives=5, min_count=1, sample=0, epochs=3,
                         batch_size=128, progress=False, seed=0)
    return train_skipgram(planted_corpus(), cfg)


@pytest.fixture(scope="module")
def gensim_model():
    gensim = pytest.importorskip("gensim")
    return gensim.models.Word2Vec(planted_corpus(), sg=1, negative=5, vector_size=16, window=3,
                                  min_count=1, epochs=5, workers=1, seed=0)


def hand_matrix() -> WordVectors:
    words = ["man", "woman", "king", "queen", "apple", "pear"]
    m = np.array([[1.0, 0.0, 0.0, 0.0],    # man
                  [0.0, 1.0, 0.0, 0.0],    # woman
                  [1.0, 0.0, 1.0, 0.0],    # king   = man + royal
                  [0.0, 1.0, 1.0, 0.0],    # queen  = woman + royal
                  [0.0, 0.0, 0.0, 1.0],    # apple
                  [0.0, 0.1, 0.0, 1.0]])   # pear
    return WordVectors(words, m)


# --- the loss and its gradient --------------------------------------------------------------------

def test_loss_matches_hand_computation():
    model = SkipGram(vocab_size=4, dim=2)
    with torch.no_grad():
        model.in_embed.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.5, 0.5], [1.0, 1.0]]))
        model.out_embed.weight.copy_(torch.tensor([[0.0, 1.0], [1.0, -1.0], [2.0, 0.0], [-1.0, 0.5]]))
    centres, contexts = torch.tensor([0, 1]), torch.tensor([2, 3])
    negatives = torch.tensor([[1, 3], [0, 2]])
    # pair 1: v=(1,0), u_o=(2,0): u_o.v=2; noise u=(1,-1): 1, u=(-1,.5): -1
    # pair 2: v=(0,2), u_o=(-1,.5): 1; noise u=(0,1): 2, u=(2,0): 0
    pair1 = -math.log(sigmoid(2)) - math.log(sigmoid(-1)) - math.log(sigmoid(1))
    pair2 = -math.log(sigmoid(1)) - math.log(sigmoid(-2)) - math.log(sigmoid(0))
    loss = model.loss(centres, contexts, negatives)
    assert loss.item() == pytest.approx((pair1 + pair2) / 2, rel=1e-6)


def test_initialisation_as_word2vec():
    model = SkipGram(vocab_size=50, dim=10)
    assert model.in_embed.weight.abs().max() <= 0.5 / 10
    assert model.in_embed.weight.std() > 0
    assert torch.count_nonzero(model.out_embed.weight) == 0
    assert model.in_embed.sparse and model.out_embed.sparse


def test_one_sgd_step_raises_the_positive_probability():
    torch.manual_seed(0)
    model = SkipGram(vocab_size=20, dim=8)
    with torch.no_grad():
        model.out_embed.weight.normal_(0, 0.3)
    c, o, neg = torch.tensor([3]), torch.tensor([7]), torch.tensor([[1, 2, 5]])

    def scores():
        v, u = model.in_embed.weight[3], model.out_embed.weight
        return torch.sigmoid(u[7] @ v).item(), torch.sigmoid(u[[1, 2, 5]] @ v).tolist()

    pos_before, neg_before = scores()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    model.loss(c, o, neg).backward()
    opt.step()
    pos_after, neg_after = scores()
    assert pos_after > pos_before
    assert all(a < b for a, b in zip(neg_after, neg_before))


# --- vocabulary, subsampling, noise and pairs ----------------------------------------------------

def test_build_vocab_orders_by_count_then_alphabet():
    vocab, counts = build_vocab([["b", "c", "a", "b"], ["c", "d"]], min_count=2)
    assert vocab.get_itos() == ["b", "c"] and counts.tolist() == [2, 2]


def test_keep_probabilities_formula_and_gensim():
    counts = np.array([5000, 800, 120, 30, 5])
    t = 1e-2
    f = counts / counts.sum()
    expected = np.minimum(1, (np.sqrt(f / t) + 1) * t / f)
    np.testing.assert_allclose(keep_probabilities(counts, t), expected)
    assert keep_probabilities(counts, 0).tolist() == [1.0] * 5
    # gensim stores the same probabilities as uint32 thresholds ("sample_int")
    gensim = pytest.importorskip("gensim")
    corpus = [[f"w{i}"] * int(c) for i, c in enumerate(counts)]
    model = gensim.models.Word2Vec(vector_size=4, min_count=1, sample=t, workers=1)
    model.build_vocab(corpus)
    ours = keep_probabilities(counts, t)
    theirs = [model.wv.get_vecattr(f"w{i}", "sample_int") / (2**32 - 1) for i in range(len(counts))]
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_noise_sampler_follows_unigram_to_the_075():
    counts = np.array([1000, 300, 100, 10, 1])
    probs = noise_distribution(counts, 0.75)
    np.testing.assert_allclose(probs, counts**0.75 / (counts**0.75).sum())
    cum = torch.from_numpy(np.cumsum(probs))
    draws = sample_negatives(cum, (200_000,), torch.Generator().manual_seed(0))
    freq = np.bincount(draws.numpy(), minlength=len(counts)) / len(draws)
    sd = np.sqrt(probs * (1 - probs) / len(draws))
    assert np.all(np.abs(freq - probs) < 5 * sd + 1e-4)
    # the same generator seed gives the same draws
    again = sample_negatives(cum, (200_000,), torch.Generator().manual_seed(0))
    assert torch.equal(draws, again)


def brute_force_pairs(ids, sentence_ids, windows):
    pairs = []
    for i in range(len(ids)):
        for j in range(len(ids)):
            if i != j and sentence_ids[i] == sentence_ids[j] and abs(i - j) <= windows[i]:
                pairs.append((int(ids[i]), int(ids[j])))
    return sorted(pairs)


@pytest.mark.parametrize("seed", range(5))
def test_pairs_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 9, size=6)
    sentence_ids = np.repeat(np.arange(len(lengths)), lengths)
    ids = rng.integers(0, 10, size=len(sentence_ids))
    windows = draw_windows(len(ids), 4, rng)
    c, o = skipgram_pairs(ids, sentence_ids, windows)
    assert sorted(zip(c.tolist(), o.tolist())) == brute_force_pairs(ids, sentence_ids, windows)


def test_dynamic_window_is_uniform_and_pair_count_matches_expectation():
    rng = np.random.default_rng(0)
    windows = draw_windows(100_000, 5, rng)
    assert set(np.unique(windows).tolist()) == {1, 2, 3, 4, 5}
    np.testing.assert_allclose(np.bincount(windows)[1:] / len(windows), 0.2, atol=0.01)
    # a long sentence: away from its ends, each centre has 2 * E[b] = 6 contexts on average
    n = 20_000
    c, _ = skipgram_pairs(np.zeros(n, np.int64), np.zeros(n, np.int64), draw_windows(n, 5, rng))
    assert len(c) / n == pytest.approx(6.0, rel=0.02)


def test_subsample_keeps_each_word_at_its_rate():
    counts = np.array([20_000, 5_000, 500, 50])
    keep = keep_probabilities(counts, 1e-2)
    ids = np.repeat(np.arange(4), counts)
    mask = subsample(ids, keep, np.random.default_rng(1))
    kept_share = np.bincount(ids[mask], minlength=4) / counts
    sd = np.sqrt(keep * (1 - keep) / counts)
    assert np.all(np.abs(kept_share - keep) <= 5 * sd + 1e-9)
    assert keep[-1] == 1.0 and kept_share[-1] == 1.0


# --- learning -------------------------------------------------------------------------------------

def group_purity(wv: WordVectors, k: int = 5) -> float:
    """Share of each word's k nearest neighbours that are in the word's own group."""
    hits = [sum(n[0] == w[0] for n, _ in wv.most_similar(w, k)) / k for g in GROUPS for w in g]
    return float(np.mean(hits))


def test_training_recovers_planted_groups(planted_vectors):
    assert planted_vectors.loss_history[-1] < planted_vectors.loss_history[0]
    assert group_purity(planted_vectors) == 1.0
    rng = np.random.default_rng(0)
    random_wv = WordVectors(planted_vectors.words, rng.normal(size=(12, 16)))
    assert group_purity(random_wv) < 0.8  # random vectors fail this test


def test_training_with_sparse_adam_and_subsampling_also_learns():
    cfg = SkipGramConfig(dim=16, window=3, min_count=1, sample=1e-2, epochs=5, batch_size=128,
                         optimizer="sparse_adam", lr=0.02, progress=False)
    assert group_purity(train_skipgram(planted_corpus(), cfg)) >= 0.9


def test_training_is_reproducible_and_restores_threads():
    cfg = SkipGramConfig(dim=8, min_count=1, epochs=1, batch_size=64, progress=False, seed=3)
    threads = torch.get_num_threads()
    a = train_skipgram(planted_corpus(60), cfg)
    b = train_skipgram(planted_corpus(60), cfg)
    np.testing.assert_array_equal(a.matrix, b.matrix)
    assert torch.get_num_threads() == threads


# --- probes on a hand-made matrix ------------------------------------------------------------------

def test_most_similar_similarity_analogy_known_answers():
    wv = hand_matrix()
    assert wv.most_similar("apple", k=1)[0][0] == "pear"
    assert [w for w, _ in wv.most_similar("king", k=2)] == ["man", "queen"]
    assert wv.most_similar("king", k=2)[0][1] == pytest.approx(1 / math.sqrt(2))
    assert "king" not in [w for w, _ in wv.most_similar("king", k=5)]
    assert len(wv.most_similar("king", k=100)) == 5
    assert wv.similarity("king", "queen") == pytest.approx(0.5)
    assert wv.similarity("man", "apple") == pytest.approx(0.0)
    assert wv.analogy("man", "king", "woman")[0][0] == "queen"
    assert wv.analogy("king", "man", "queen")[0][0] == "woman"
    assert np.linalg.norm(wv.vector("king")) == pytest.approx(1.0)
    assert "king" in wv and "prince" not in wv and 3 not in wv


def test_unknown_word_error_names_the_word_and_min_count(planted_vectors):
    with pytest.raises(KeyError, match=r"'prince'.*min_count"):
        hand_matrix().most_similar("prince")
    with pytest.raises(UnknownWordError, match=r"'zzz'.*min_count=1"):
        planted_vectors.vector("zzz")


def test_neighbour_agreement():
    wv = hand_matrix()
    assert neighbour_agreement(wv, wv, wv.words, k=2) == 1.0
    other = WordVectors(wv.words, np.eye(6))  # all neighbours tied at 0: sorted by index
    value = neighbour_agreement(wv, other, ["apple"], k=1)
    assert value == 0.0  # pear vs man
    with pytest.raises(ValueError, match="none of the words"):
        neighbour_agreement(wv, wv, ["zzz"])


def test_project_2d_is_pca():
    wv = hand_matrix()
    xy = wv.project_2d(wv.words)
    assert xy.shape == (6, 2)
    np.testing.assert_allclose(xy.mean(axis=0), 0, atol=1e-6)
    # variances are the top two eigenvalues of the covariance of the centred vectors
    x = wv.matrix - wv.matrix.mean(axis=0)
    eig = np.sort(np.linalg.eigvalsh(x.T @ x))[::-1]
    np.testing.assert_allclose((xy**2).sum(axis=0), eig[:2], rtol=1e-5)
    ax = wv.plot_2d(["king", "queen", "man"])
    assert [t.get_text() for t in ax.texts] == ["king", "queen", "man"]


def test_place_labels_do_not_overlap_even_for_coincident_points():
    import matplotlib.pyplot as plt

    from lmcourse.embeddings.labels import place_labels

    fig, ax = plt.subplots(figsize=(4, 3))
    xy = np.array([[0.0, 0.0]] * 6 + [[1.0, 1.0], [1.001, 1.0]])  # a tight cluster and a close pair
    ax.scatter(xy[:, 0], xy[:, 1])
    labels = ["january", "march", "april", "june", "september", "december", "two", "four"]
    annotations = place_labels(ax, xy, labels)
    renderer = fig.canvas.get_renderer()
    boxes = [a.get_window_extent(renderer) for a in annotations]
    assert [a.get_text() for a in annotations] == labels
    assert not any(boxes[i].overlaps(boxes[j]) for i in range(len(boxes)) for j in range(i))
    plt.close(fig)


# --- gensim as oracle -------------------------------------------------------------------------------

def test_from_gensim_gives_gensims_most_similar(gensim_model):
    wv = from_gensim(gensim_model.wv)
    assert wv.words == gensim_model.wv.index_to_key
    for word in ["a0", "b3"]:
        ours = wv.most_similar(word, k=5)
        theirs = gensim_model.wv.most_similar(word, topn=5)
        assert [w for w, _ in ours] == [w for w, _ in theirs]
        np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], atol=1e-5)
    assert wv.similarity("a0", "a1") == pytest.approx(float(gensim_model.wv.similarity("a0", "a1")), abs=1e-5)
    assert WordVectors.from_gensim(gensim_model).words == wv.words  # a Word2Vec model works too


def planted_analogies(tmp_path):
    """Vectors with a 'capital' offset, and an analogy file about them (mixed case, some OOV)."""
    rng = np.random.default_rng(0)
    countries = [f"country{i}" for i in range(8)]
    capitals = [f"capital{i}" for i in range(8)]
    offset = rng.normal(size=10)
    base = rng.normal(size=(8, 10))
    vectors = np.vstack([base, base + offset + rng.normal(scale=1.0, size=(8, 10)),
                         rng.normal(size=(10, 10))])
    words = countries + capitals + [f"noise{i}" for i in range(10)]
    lines = [": capital-world"]
    for i in range(8):
        for j in range(8):
            if i != j:
                q = [countries[i], capitals[i], countries[j], capitals[j]]
                lines.append(" ".join(w.upper() if (i + j) % 3 == 0 else w for w in q))
    lines += [": other", "noise0 noise1 noise2 noise3", "noise0 noise1 Unknown noise3",
              "country0 noise4 country1 noise5"]
    path = tmp_path / "questions.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return words, vectors, path


@pytest.mark.parametrize("restrict_vocab", [300_000, 20])
def test_analogy_accuracy_agrees_with_gensim(tmp_path, restrict_vocab):
    gensim = pytest.importorskip("gensim")
    words, vectors, path = planted_analogies(tmp_path)
    kv = gensim.models.KeyedVectors(vector_size=10)
    kv.add_vectors(words, vectors.astype(np.float32))
    ours = analogy_accuracy(from_gensim(kv), path, restrict_vocab=restrict_vocab)
    score, sections = kv.evaluate_word_analogies(str(path), restrict_vocab=restrict_vocab)
    total = sections[-1]
    n_correct, n_wrong = len(total["correct"]), len(total["incorrect"])
    assert (ours.correct, ours.answered) == (n_correct, n_correct + n_wrong)
    assert ours.total == 59  # 56 + 3 questions, the OOV one included
    assert ours.accuracy == pytest.approx(score)
    assert 0 < ours.accuracy < 1  # a test that can tell right from wrong
    gensim_right = {tuple(w.lower() for w in q) for q in total["correct"]}
    ours_right = {q for q, guess in ours.predictions if guess == q[3]}
    assert ours_right == gensim_right
    for s in sections[:-1]:
        assert ours.sections[s["section"]] == (len(s["correct"]), len(s["correct"]) + len(s["incorrect"]))


def test_analogy_accuracy_from_lines_and_file_errors(tmp_path):
    wv = hand_matrix()
    r = analogy_accuracy(wv, [": gender", "man king woman queen", "Man Woman King Queen",
                              "man king woman prince", ""])
    assert (r.correct, r.answered, r.total) == (2, 2, 3)
    assert r.coverage == pytest.approx(2 / 3) and r.accuracy == 1.0
    with pytest.raises(ValueError, match="before any"):
        analogy_accuracy(wv, ["man king woman queen"])
    with pytest.raises(ValueError, match="4 words"):
        analogy_accuracy(wv, [": s", "man king woman"])
    with pytest.raises(FileNotFoundError, match="questions-words"):
        analogy_accuracy(wv, tmp_path / "missing.txt")


# --- bad input ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["dim", "window", "negatives", "min_count", "epochs", "batch_size"])
@pytest.mark.parametrize("value", [0, -1, 2.5])
def test_config_rejects_bad_sizes(field, value):
    with pytest.raises(ValueError, match=field):
        SkipGramConfig(**{field: value})


def test_config_rejects_bad_sample_optimizer_lr():
    with pytest.raises(ValueError, match="sample"):
        SkipGramConfig(sample=1.5)
    with pytest.raises(ValueError, match="optimizer"):
        SkipGramConfig(optimizer="adam")
    with pytest.raises(ValueError, match="lr"):
        SkipGramConfig(lr=0)


def test_bad_corpora():
    cfg = SkipGramConfig(min_count=1, progress=False)
    with pytest.raises(ValueError, match="empty"):
        train_skipgram([], cfg)
    with pytest.raises(ValueError, match="empty"):
        train_skipgram([[], []], cfg)
    with pytest.raises(TypeError, match="one str"):
        train_skipgram("the cat sat", cfg)
    with pytest.raises(TypeError, match="not a list of tokens"):
        train_skipgram(["the cat sat"], cfg)
    with pytest.raises(TypeError, match="type int"):
        train_skipgram([["the", 3]], cfg)
    with pytest.raises(ValueError, match="no sentence has 2 words"):
        train_skipgram([["a"], ["a"], ["b", "c"]], SkipGramConfig(min_count=2, progress=False))
    with pytest.raises(ValueError, match=r"3 distinct words.*'a'.*2 times.*lower min_count"):
        train_skipgram([["a", "b", "a", "c"]], SkipGramConfig(min_count=5, progress=False))


def test_word_vectors_rejects_bad_shapes():
    with pytest.raises(ValueError, match="V = 2"):
        WordVectors(["a", "b"], np.zeros((3, 4)))
    with pytest.raises(ValueError, match="duplicate"):
        WordVectors(["a", "a"], np.zeros((2, 4)))
    with pytest.raises(ValueError, match="at least 2"):
        hand_matrix().project_2d(["man"])
