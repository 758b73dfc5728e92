"""Per-paragraph scores and the intervals built from them (lmcourse.paragraphs, metrics.bootstrap_bpc,
metrics.record's paragraph file, train.evaluate's per-token nll)."""

import math

import numpy as np
import pytest
import torch

from tests.lm_fixtures import make
from lmcourse import metrics
from lmcourse.data import token_stream, tokenized_sentences
from lmcourse.ngram import KneserNey
from lmcourse.text import Vocab
from lmcourse.paragraphs import (ngram_paragraph_nll, paragraph_chars, per_paragraph, sentence_paragraphs,
                                 stream_paragraphs)
from lmcourse.train import evaluate

LINES = ["The cat sat on the mat. It purred.", "A dog barked!", "The cat ran. The dog ran. Both slept."]


def test_paragraph_chars_add_up_to_the_joined_text():
    assert paragraph_chars(LINES).sum() == len("\n".join(LINES))
    with pytest.raises(TypeError, match="list of paragraph strings"):
        paragraph_chars("one string")


def test_stream_paragraphs_line_up_with_the_token_stream():
    sentences = tokenized_sentences(LINES)
    vocab = Vocab(["<unk>", "</s>"] + sorted({w for s in sentences for w in s}), default_index=0)
    stream = token_stream(sentences, vocab)
    which = stream_paragraphs(LINES)
    assert which.shape == stream.shape and which[0] == -1
    assert sentence_paragraphs(LINES).tolist() == [0, 0, 1, 2, 2, 2]
    eos = vocab["</s>"]
    # every paragraph's last position is the </s> of its last sentence
    for p in range(len(LINES)):
        assert stream[np.flatnonzero(which == p)[-1]] == eos


def test_per_paragraph_refuses_context_only_positions():
    with pytest.raises(ValueError, match="only context"):
        per_paragraph([1.0, 2.0], [-1, 0], 1)
    with pytest.raises(ValueError, match="one length"):
        per_paragraph([1.0, 2.0], [0], 1)


def test_ngram_paragraph_nll_sums_to_the_models_total():
    model = KneserNey(order=2).fit(tokenized_sentences(LINES[:2]))
    nll = ngram_paragraph_nll(model, LINES)
    assert nll.shape == (3,) and np.all(nll > 0)
    assert math.isclose(nll.sum(), model.evaluate(tokenized_sentences(LINES)).total_nll, rel_tol=1e-12)


@pytest.mark.parametrize("batch_size", [1, 3])
def test_evaluate_keeps_each_tokens_nll_and_position(batch_size):
    torch.manual_seed(0)
    stream = torch.randint(0, 8, (50,))
    model = make("gru")
    ev = evaluate(model, stream, batch_size=batch_size, bptt=4)
    assert ev.token_nll.shape == ev.token_positions.shape == (ev.num_tokens,)
    assert math.isclose(ev.token_nll.sum(), ev.total_nll, rel_tol=1e-12)
    assert len(set(ev.token_positions.tolist())) == ev.num_tokens and ev.token_positions.min() >= 1
    # with one column the positions are 1..N-1 in order, and the first token's nll is -log p(x1 | x0)
    if batch_size == 1:
        assert ev.token_positions.tolist() == list(range(1, 50))
        with torch.no_grad():
            nll, _ = model.nll(stream[:1, None], stream[1:2, None], None)
        assert math.isclose(ev.token_nll[0], float(nll), rel_tol=1e-6)
    # the targets at the recorded positions are the tokens each column predicted
    rows = 50 // batch_size
    assert set(ev.token_positions.tolist()) == {b * rows + t for b in range(batch_size) for t in range(1, rows)}


def test_bootstrap_bpc_interval_holds_the_estimate_and_shrinks_with_agreement():
    rng = np.random.default_rng(1)
    chars = rng.integers(50, 150, size=200)
    noisy = chars * math.log(2) * rng.uniform(1.0, 3.0, size=200)  # 1-3 bits per character
    steady = chars * math.log(2) * 2.0  # exactly 2 bits per character everywhere
    bpc, low, high = metrics.bootstrap_bpc(noisy, chars)
    assert low < bpc < high and 1.8 < bpc < 2.2
    assert metrics.bootstrap_bpc(noisy, chars) == (bpc, low, high)  # seeded
    assert metrics.bootstrap_bpc(steady, chars) == pytest.approx((2.0, 2.0, 2.0))
    with pytest.raises(ValueError, match="inf or nan"):
        metrics.bootstrap_bpc([1.0, math.inf], [1, 1])
    with pytest.raises(ValueError, match="one length"):
        metrics.bootstrap_bpc([1.0, 2.0], [1])


def test_paired_interval_is_narrower_than_the_two_separate_ones():
    rng = np.random.default_rng(2)
    chars = rng.integers(50, 150, size=300)
    hardness = rng.uniform(1.0, 3.0, size=300)  # what the paragraphs share
    a = chars * math.log(2) * hardness
    b = chars * math.log(2) * (hardness - 0.05)  # b is better by 0.05 bits on every paragraph
    _, a_low, a_high = metrics.bootstrap_bpc(a, chars)
    _, b_low, b_high = metrics.bootstrap_bpc(b, chars)
    assert a_low < b_high  # the separate intervals overlap ...
    diff, low, high = metrics.paired_bootstrap(a, b, chars)
    assert diff == pytest.approx(0.05) and 0 < low <= high  # ... but the pairing shows b is better


def _result(name, bpc, low=math.nan, high=math.nan):
    return metrics.Result(name, "n-gram", "words", 10, 100.0, bpc, 1.0, "2", low, high)


def test_record_keeps_the_interval_and_the_paragraph_nll(tmp_path):
    path = tmp_path / "results.csv"
    metrics.record(_result("a", 2.0, 1.9, 2.1), path, paragraph_nll=[1.0, 2.0, 3.0])
    metrics.record(_result("b", 1.5), path, paragraph_nll=[0.5, 1.0, 1.5])
    metrics.record(_result("a", 1.8, 1.7, 1.9), path, paragraph_nll=[1.5, 2.0, 3.0])  # replaces a
    rows = metrics.load_results(path)
    assert [(r.model, r.bpc_ci_low) for r in rows][0] == ("a", 1.7) and math.isnan(rows[1].bpc_ci_low)
    stored = metrics.load_paragraph_nll(path)
    assert list(stored) == ["a", "b"] and stored["a"].tolist() == [1.5, 2.0, 3.0]
    assert metrics.paragraph_nll_path(path).name == "results_paragraph_nll.csv"
    with pytest.raises(ValueError, match="score the whole test split"):
        metrics.record(_result("c", 1.0), path, paragraph_nll=[1.0, 2.0])
    assert [r.model for r in metrics.load_results(path)] == ["a", "b"]  # nothing written on refusal


def test_result_interval_must_hold_the_estimate():
    with pytest.raises(ValueError, match="must hold bits_per_char"):
        _result("a", 2.0, 2.1, 2.2)
    with pytest.raises(ValueError, match="both ends"):
        _result("a", 2.0, 1.9)


def test_a_table_written_before_the_intervals_still_loads(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text("model,family,tokenization,parameters,test_perplexity,bits_per_char,train_seconds,chapter\n"
                    "old,n-gram,words,10,100,2,1.00,2\n")
    (row,) = metrics.load_results(path)
    assert row.bits_per_char == 2.0 and math.isnan(row.bpc_ci_high)


class _Bytes:
    """A byte-level tokenizer: one token per byte (id = byte), as causal_lm_paragraph_nll needs."""

    class bpe:
        @staticmethod
        def token_bytes(i: int) -> bytes:
            return bytes([i])

    @staticmethod
    def encode(text: str) -> list[int]:
        return list(text.encode("utf-8"))

    @staticmethod
    def decode(ids: list[int]) -> str:
        return bytes(ids).decode("utf-8")


def test_causal_lm_paragraph_nll_sums_the_text_nll_into_paragraphs():
    import torch
    import torch.nn.functional as F

    from lmcourse.paragraphs import causal_lm_paragraph_nll
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(257, 8), torch.nn.Linear(8, 257))  # (1, T) -> (1, T, V)
    lines = ["ab c", "é", "xyz"]
    nll, n = causal_lm_paragraph_nll(model, _Bytes(), lines, start_id=256, window=3)
    ids = _Bytes.encode("\n".join(lines))
    stream = torch.tensor([256] + ids)
    with torch.no_grad():  # this model has no context, so windows do not matter: one pass gives the same nats
        token_nll = F.cross_entropy(model(stream[None, :-1])[0], stream[1:], reduction="none").double()
    assert n == len(ids) == 11  # "é" is two bytes
    expected = [token_nll[:5].sum(), token_nll[5:8].sum(), token_nll[8:].sum()]  # "ab c\n", "é\n", "xyz"
    assert np.allclose(nll, [float(e) for e in expected])
    batched, _ = causal_lm_paragraph_nll(model, _Bytes(), lines, start_id=256, window=3, batch_size=2)
    assert np.allclose(batched, nll)


def test_causal_lm_paragraph_nll_of_a_gpt_in_batched_windows():
    """With context, windows matter: batching windows of a real GPT with a ByteBPE tokenizer (its
    own token_bytes) gives the nats of reading the windows one by one."""
    import torch

    from lmcourse.bpe import ByteBPE
    from lmcourse.gpt import GPT, GPTConfig
    from lmcourse.paragraphs import causal_lm_paragraph_nll
    lines = ["The cat sat on the mat.", "A dog barked twice at the cat.", "Then it was quiet."]
    tokenizer = ByteBPE().train("\n".join(lines * 3), 280, progress=False)
    torch.manual_seed(0)
    model = GPT(GPTConfig.tiny(tokenizer.vocab_size, context_length=8)).eval()
    eot = tokenizer.special_tokens["<|endoftext|>"]
    one, n = causal_lm_paragraph_nll(model, tokenizer, lines, eot, window=8)
    four, m = causal_lm_paragraph_nll(model, tokenizer, lines, eot, window=8, batch_size=4)
    assert n == m == len(tokenizer.encode("\n".join(lines))) and n % 8  # a last, shorter window too
    assert np.allclose(one, four, rtol=1e-5)
