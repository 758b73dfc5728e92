"""Tests for lmcourse.mlm: BERT's masking rule checked statistically on a large batch (binomial
5-sigma bands), packing and padding, the fixed validation mask (against the unigram baseline
scored on the same positions), a real short pre-training run of lmcourse.bert's tiny model with
lmcourse.wordpiece's tokenizer, fill_mask against a stub model's known softmax, and the errors.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from lmcourse.bert import BertConfig, BertForMaskedLM
from lmcourse.data import load_corpus, sentences
from lmcourse.mlm import (
    IGNORE_INDEX,
    MaskIds,
    _masked_logits,
    collate,
    evaluate_mlm,
    fill_mask,
    mask_tokens,
    masked_accuracy,
    mlm_examples,
    pretrain_config,
    pretrain_mlm,
    unigram_baseline,
)
from lmcourse.train import lr_multiplier
from lmcourse.wordpiece import WordPieceTokenizer, train_wordpiece_vocab

# --- mask_tokens ---------------------------------------------------------------------------------

V, PAD, UNK, CLS, SEP, MASK = 20, 0, 1, 2, 3, 4
SPECIAL = [PAD, UNK, CLS, SEP]
ORDINARY = list(range(5, V))  # what a random replacement may be: K = 15 ids


def _batch(B: int = 500, T: int = 600, seed: int = 0) -> torch.Tensor:
    """Rows ``[CLS] ordinary ids (a few [UNK] and [MASK]) [SEP] [PAD]...`` of random lengths."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(ORDINARY[0], V, (B, T), generator=g)  # (B, T)
    ids[torch.rand(B, T, generator=g) < 0.01] = UNK
    ids[torch.rand(B, T, generator=g) < 0.01] = MASK  # already a [MASK]: never chosen again
    lengths = torch.randint(T // 2, T + 1, (B,), generator=g)
    for row, n in enumerate(lengths.tolist()):
        ids[row, 0], ids[row, n - 1], ids[row, n:] = CLS, SEP, PAD
    return ids


def _band(p: float, n: int) -> float:
    return 5 * math.sqrt(p * (1 - p) / n)  # 5 binomial standard deviations


@pytest.mark.parametrize("mask_prob", [0.15, 0.4])
def test_mask_tokens_follows_berts_rule_statistically(mask_prob):
    ids = _batch()
    before = ids.clone()
    inputs, labels = mask_tokens(ids, mask_id=MASK, vocab_size=V, special_ids=SPECIAL, mask_prob=mask_prob,
                                 generator=torch.Generator().manual_seed(1))
    assert torch.equal(ids, before)  # the input is not modified
    eligible = ~torch.isin(ids, torch.tensor(SPECIAL + [MASK]))
    n = int(eligible.sum())
    assert n > 200_000
    chosen = labels != IGNORE_INDEX
    # never a special position; labels are the originals where chosen; nothing else changes
    assert not bool((chosen & ~eligible).any())
    assert torch.equal(labels[chosen], ids[chosen])
    assert torch.equal(inputs[~chosen], ids[~chosen])
    assert abs(int(chosen.sum()) / n - mask_prob) < _band(mask_prob, n)
    # among the chosen: 80% [MASK], 10% random, 10% unchanged. A random draw hits the original
    # with probability 1/K, so "equal to the original" is 0.1 + 0.1 / K and "another ordinary id"
    # 0.1 (K - 1) / K; a random draw is never special nor [MASK].
    m, K = int(chosen.sum()), len(ORDINARY)
    got, orig = inputs[chosen], ids[chosen]
    masked = got == MASK
    same = got == orig
    other = ~masked & ~same
    assert abs(float(masked.float().mean()) - 0.8) < _band(0.8, m)
    assert abs(float(same.float().mean()) - (0.1 + 0.1 / K)) < _band(0.1 + 0.1 / K, m)
    assert abs(float(other.float().mean()) - 0.1 * (K - 1) / K) < _band(0.1 * (K - 1) / K, m)
    assert set(got[other].tolist()) == set(ORDINARY)  # every ordinary id can be drawn, nothing else
    # ... uniformly: each of the K ids, among the replacements that differ from the original,
    counts = torch.bincount(got[other], minlength=V)[ORDINARY].float()
    expected = counts.sum() / K
    assert float((counts - expected).abs().max()) < 5 * math.sqrt(float(expected))


def test_mask_tokens_is_reproducible_with_a_seeded_generator():
    ids = _batch(B=20, T=50)
    run = lambda seed: mask_tokens(ids, mask_id=MASK, vocab_size=V, special_ids=SPECIAL,  # noqa: E731
                                   generator=torch.Generator().manual_seed(seed))
    a, b, c = run(3), run(3), run(4)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])
    torch.manual_seed(5)  # without a generator: torch's global one
    d = mask_tokens(ids, mask_id=MASK, vocab_size=V, special_ids=SPECIAL)
    torch.manual_seed(5)
    assert torch.equal(d[0], mask_tokens(ids, mask_id=MASK, vocab_size=V, special_ids=SPECIAL)[0])


def test_mask_tokens_errors():
    ids = torch.tensor([[CLS, 7, 8, SEP]])
    kw = dict(mask_id=MASK, vocab_size=V, special_ids=SPECIAL)
    with pytest.raises(TypeError, match="LongTensor"):
        mask_tokens(ids.float(), **kw)
    with pytest.raises(TypeError, match="LongTensor"):
        mask_tokens([[2, 7, 3]], **kw)
    for p in (0, 0.0, 1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match=r"mask_prob must be a number in \(0, 1\)"):
            mask_tokens(ids, mask_prob=p, **kw)
    with pytest.raises(ValueError, match=r"mask_id must be an id in \[0, vocab_size=20\)"):
        mask_tokens(ids, mask_id=20, vocab_size=V, special_ids=SPECIAL)
    with pytest.raises(ValueError, match="input_ids has ids outside"):
        mask_tokens(torch.tensor([[CLS, 25, SEP]]), **kw)
    with pytest.raises(ValueError, match="special_ids has ids outside"):
        mask_tokens(ids, mask_id=MASK, vocab_size=V, special_ids=[0, 99])
    with pytest.raises(ValueError, match="every id in"):
        mask_tokens(torch.tensor([[0, 1]]), mask_id=1, vocab_size=2, special_ids=[0])


# --- evaluation and fill_mask on models whose answers are known ------------------------------

IDS = SimpleNamespace(pad_id=PAD, unk_id=UNK, cls_id=CLS, sep_id=SEP, mask_id=MASK, vocab_size=V)
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(5, V)]  # same ids as above


def _constant_model(logits: torch.Tensor) -> BertForMaskedLM:
    """A real BertForMaskedLM that predicts `logits` (V,) everywhere: its decoder matrix (tied to
    the token embeddings) is zero, so the head's output is its bias."""
    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig.tiny(len(logits), context_length=64))
    with torch.no_grad():
        model.head.decoder.weight.zero_()
        model.head.decoder.bias.copy_(logits)
    return model.eval()


def _examples(n: int = 60, seed: int = 0) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        length = int(torch.randint(3, 30, (1,), generator=g))
        body = (ORDINARY[0] + torch.randint(0, 4, (length,), generator=g) ** 2 % len(ORDINARY)).tolist()
        out.append([CLS, *body, SEP])  # a skewed unigram distribution
    return out


def test_evaluate_mlm_scores_the_same_fixed_mask_as_the_unigram_baseline():
    train, valid = _examples(seed=0), _examples(seed=1)
    base = unigram_baseline(train, valid, tokenizer=IDS)
    # the baseline's own distribution as a model: the same loss, accuracy and positions
    counts = torch.ones(V, dtype=torch.float64)
    for example in train:
        for t in example:
            counts[t] += 1
    counts[SPECIAL + [MASK]] = 0
    model = _constant_model((counts / counts.sum()).log().clamp(min=-100).float())
    result = evaluate_mlm(model, valid, tokenizer=IDS)
    assert result.num_masked == base.num_masked > 50
    assert result.loss == pytest.approx(base.loss, rel=1e-5)
    assert result.accuracy == base.accuracy
    assert 0 < base.accuracy < 1
    # the same constant guess at [MASK] positions only, and the copy baseline of the same mask
    assert result.mask_accuracy == base.mask_accuracy and 0 < base.mask_accuracy < 1
    assert result.copy_accuracy == base.copy_accuracy and 0 < base.copy_accuracy < 0.3
    # the mask does not depend on batching, and is the same on every call
    assert tuple(evaluate_mlm(model, valid, tokenizer=IDS, batch_size=7)) == pytest.approx(tuple(result))
    assert masked_accuracy(model, valid, tokenizer=IDS) == result.accuracy
    assert evaluate_mlm(model, valid, tokenizer=IDS, seed=1).num_masked != result.num_masked


def test_fill_mask_returns_the_top_k_of_the_softmax_without_special_tokens():
    logits = torch.linspace(0, 3, V)
    logits[MASK] = 10.0  # a special id with the largest logit is never proposed
    model = _constant_model(logits)
    tokenizer = WordPieceTokenizer({w: i for i, w in enumerate(WORDS)})
    out = fill_mask(model, tokenizer, "w5 [MASK] w7 [MASK]", top_k=4)
    assert len(out) == 2
    probs = logits.softmax(-1)
    expected = [(WORDS[i], float(probs[i])) for i in (19, 18, 17, 16)]
    for predictions in out:
        assert [t for t, _ in predictions] == [t for t, _ in expected]
        assert [p for _, p in predictions] == pytest.approx([p for _, p in expected])
        assert sum(p for _, p in predictions) <= 1
    with pytest.raises(ValueError, match=r"no \[MASK\] to fill"):
        fill_mask(model, tokenizer, "w5 w6")
    with pytest.raises(ValueError, match="top_k must be a positive int"):
        fill_mask(model, tokenizer, "w5 [MASK]", top_k=0)
    with pytest.raises(ValueError, match="reads at most context_length=64"):
        fill_mask(model, tokenizer, "w5 " * 70 + "[MASK]")
    with pytest.raises(TypeError, match="BertForMaskedLM"):
        fill_mask(model.bert, tokenizer, "w5 [MASK]")


# --- real data, real model ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def wiki(tmp_path_factory):
    """A WordPiece vocabulary of 1000 learned from 1500 training sentences, and packed examples."""
    corpus = load_corpus("wiki")
    train_sentences = sentences(corpus.train)[:1500]
    tokenizer = train_wordpiece_vocab(train_sentences, 1000, tmp_path_factory.mktemp("wp") / "vocab.txt")
    train = mlm_examples(tokenizer, train_sentences, max_length=32)
    valid = mlm_examples(tokenizer, sentences(corpus.valid)[:150], max_length=32)
    return SimpleNamespace(tokenizer=tokenizer, sentences=train_sentences, train=train, valid=valid)


@pytest.mark.parametrize("max_length", [8, 32])
def test_mlm_examples_pack_every_token_in_order(wiki, max_length):
    tok = wiki.tokenizer
    sents = wiki.sentences[:200]
    examples = mlm_examples(tok, sents, max_length=max_length)
    assert all(e[0] == tok.cls_id and e[-1] == tok.sep_id and 3 <= len(e) <= max_length for e in examples)
    packed = [t for e in examples for t in e[1:-1]]
    assert packed == [t for s in sents for t in tok.encode(s, max_length=1000)[1:-1]]  # nothing lost
    # an example is closed only when the next sentence (or its first piece) does not fit
    bodies = [len(tok.tokenize(s)) for s in sents]
    assert len(examples) < sum(bodies) / (max_length - 2) + len(sents) / 2


def _tiny(tok, seed: int = 0) -> BertForMaskedLM:
    torch.manual_seed(seed)
    return BertForMaskedLM(BertConfig.tiny(tok.vocab_size, context_length=32))


def test_pretraining_lowers_the_loss_and_is_reproducible(wiki):
    tok = wiki.tokenizer
    config = pretrain_config(max_steps=40, warmup_steps=5, eval_every=20, batch_size=16, lr=3e-3,
                             progress=False)
    model = _tiny(tok)
    before = evaluate_mlm(model, wiki.valid, tokenizer=tok)
    history = pretrain_mlm(model, wiki.train, wiki.valid, config, tokenizer=tok)
    after = evaluate_mlm(model, wiki.valid, tokenizer=tok)
    assert before.loss > math.log(tok.vocab_size) - 0.5  # untrained: about uniform
    assert after.loss < before.loss - 0.4  # measured: 6.92 -> 6.30 nats
    assert history.steps == 40 and history.eval_steps == [20, 40]
    assert history.valid_loss[-1] == pytest.approx(after.loss)
    assert history.valid_accuracy[-1] == after.accuracy
    assert 0 <= after.accuracy <= 1 and history.tokens_seen > 40 * 16 * 10
    assert history.lr == pytest.approx([3e-3 * lr_multiplier(s, config, 40) for s in range(40)])
    again = _tiny(tok)
    assert pretrain_mlm(again, wiki.train, wiki.valid, config, tokenizer=tok).train_loss == history.train_loss
    assert masked_accuracy(again, wiki.valid, tokenizer=tok) == after.accuracy
    assert masked_accuracy(model, wiki.valid, tokenizer=tok, batch_size=5) == pytest.approx(after.accuracy)


def test_the_head_at_masked_positions_gives_the_models_own_loss(wiki):
    """pretrain_mlm runs the head only where a token is masked: the same loss as model(labels=...)."""
    tok = wiki.tokenizer
    model = _tiny(tok).eval()
    batch = collate(wiki.train[:8], tok.pad_id)
    ids = MaskIds.from_tokenizer(tok)
    inputs, labels = mask_tokens(batch.input_ids, mask_id=ids.mask_id, vocab_size=ids.vocab_size,
                                 special_ids=ids.special_ids, generator=torch.Generator().manual_seed(0))
    where = labels != IGNORE_INDEX
    with torch.no_grad():
        expected = model(inputs, batch.attention_mask, labels=labels).loss
        logits = _masked_logits(model, batch._replace(input_ids=inputs), where)  # (M, V)
        got = torch.nn.functional.cross_entropy(logits, labels[where])
    assert float(got) == pytest.approx(float(expected), rel=1e-5)


def test_fill_mask_on_a_trained_model(wiki):
    tok = wiki.tokenizer
    model = _tiny(tok)
    pretrain_mlm(model, wiki.train, None, pretrain_config(max_steps=30, warmup_steps=5, batch_size=16,
                                                          progress=False), tokenizer=tok)
    out = fill_mask(model, tok, "The [MASK] of the city is old.", top_k=5)
    assert len(out) == 1 and len(out[0]) == 5
    probs = [p for _, p in out[0]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1
    specials = ("[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]")
    assert all(isinstance(t, str) and t not in specials for t, _ in out[0])
    assert model.training  # the mode is restored


def test_pretrain_mlm_errors(wiki):
    tok = wiki.tokenizer
    model = _tiny(tok)
    config = pretrain_config(max_steps=2, progress=False)
    with pytest.raises(ValueError, match="does not support patience"):
        pretrain_mlm(model, wiki.train, None, pretrain_config(patience=2), tokenizer=tok)
    with pytest.raises(TypeError, match="BertForMaskedLM"):
        pretrain_mlm(model.bert, wiki.train, None, config, tokenizer=tok)
    with pytest.raises(ValueError, match="reads at most context_length=32"):
        pretrain_mlm(model, [[tok.cls_id] + [7] * 40 + [tok.sep_id]], None, config, tokenizer=tok)
    with pytest.raises(ValueError, match="no ordinary token to mask"):
        pretrain_mlm(model, [[tok.cls_id, tok.sep_id]], None, config, tokenizer=tok)
    with pytest.raises(ValueError, match="non-empty list of id lists"):
        pretrain_mlm(model, [], None, config, tokenizer=tok)
    with pytest.raises(TypeError, match="lacks mask_id"):
        pretrain_mlm(model, wiki.train, None, config, tokenizer=SimpleNamespace(pad_id=0))
    small = BertForMaskedLM(BertConfig.tiny(100, context_length=32))
    with pytest.raises(ValueError, match="the tokenizer has 1000 ids but the model only vocab_size=100"):
        pretrain_mlm(small, wiki.train, None, config, tokenizer=tok)
    with pytest.raises(ValueError, match="max_length must be an int >= 3"):
        mlm_examples(tok, ["a b"], max_length=2)
    with pytest.raises(TypeError, match="list of str"):
        mlm_examples(tok, "one string", max_length=8)
