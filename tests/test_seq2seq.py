"""Tests for lmcourse.seq2seq: the reversal data (against ``s[::-1]``), padding, the model's
shapes, attention weights and padding invariance (a sequence alone against the same sequence in
a batch of longer ones), that the no-attention decoder really sees only one vector, the scoring
(against stub models whose outputs are known), the training loop, a real learning test, and
the error messages.
"""

from __future__ import annotations

import dataclasses
import string

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lmcourse.seq2seq import (
    BOS_ID,
    CHAPTER_LENGTHS,
    EOS_ID,
    PAD_ID,
    CharVocab,
    Seq2Seq,
    Seq2SeqConfig,
    accuracy_by_length,
    chapter_train_config,
    char_accuracy_by_length,
    evaluate_loss,
    make_batch,
    make_pairs,
    plot_accuracy_by_length,
    plot_alignment,
    train_seq2seq,
    translate,
)
from lmcourse.train import bucketed_batches



TINY = Seq2SeqConfig(emb_dim=8, hidden_dim=12, attention_dim=10)
VARIANTS = {  # (attention, bidirectional)
    "attention": (True, True), "bottleneck": (False, True),
    "attention-unidirectional": (True, False), "bottleneck-unidirectional": (False, False),
}


def tiny(attention: bool = True, bidirectional: bool = True, seed: int = 0) -> Seq2Seq:
    torch.manual_seed(seed)
    return Seq2Seq(dataclasses.replace(TINY, attention=attention, bidirectional=bidirectional)).eval()


# --- data ----------------------------------------------------------------------------------------

def test_make_pairs_reverses_and_is_deterministic():
    pairs = make_pairs(500, 3, 9, seed=7)
    assert pairs == make_pairs(500, 3, 9, seed=7)
    assert pairs != make_pairs(500, 3, 9, seed=8)
    assert all(t == "".join(reversed(s)) for s, t in pairs)
    assert {len(s) for s, _ in pairs} == set(range(3, 10))  # every length occurs, none outside
    assert set("".join(s for s, _ in pairs)) == set(string.ascii_lowercase)
    assert len(set(pairs)) > 490  # random strings, not a few repeated


def test_make_pairs_copy_task_and_alphabet():
    pairs = make_pairs(50, 4, 4, seed=0, task="copy", alphabet="xy")
    assert all(s == t and len(s) == 4 and set(s) <= {"x", "y"} for s, t in pairs)


@given(st.text(alphabet=string.ascii_lowercase, max_size=30))
@settings(max_examples=50, deadline=None)
def test_vocab_round_trip(text):
    vocab = CharVocab()
    ids = vocab.encode(text)
    assert all(3 <= i < len(vocab) for i in ids)
    assert vocab.decode(ids + [EOS_ID] + vocab.encode("zzz")) == text  # stops at </s>
    assert vocab.decode(torch.tensor([BOS_ID] + ids + [PAD_ID])) == text  # skips <s> and <pad>


def test_vocab_layout():
    vocab = CharVocab("ab")
    assert vocab.itos == ["<pad>", "<s>", "</s>", "a", "b"]
    assert (PAD_ID, BOS_ID, EOS_ID) == (0, 1, 2) and len(CharVocab()) == Seq2SeqConfig().vocab_size


def test_make_batch_pads_and_shifts():
    pairs = make_pairs(20, 1, 8, seed=3)
    vocab = CharVocab()
    b = make_batch(pairs)
    assert b.src.dtype == b.tgt_in.dtype == b.tgt_out.dtype == b.src_lengths.dtype == torch.long
    assert b.src.shape == (20, max(len(s) for s, _ in pairs))
    assert b.tgt_in.shape == b.tgt_out.shape == (20, max(len(t) for _, t in pairs) + 1)
    for row, (s, t) in enumerate(pairs):
        n, m = len(s), len(t)
        assert b.src_lengths[row] == n
        assert b.src[row, :n].tolist() == vocab.encode(s) and (b.src[row, n:] == PAD_ID).all()
        assert b.tgt_in[row, :m + 1].tolist() == [BOS_ID] + vocab.encode(t)
        assert b.tgt_out[row, :m + 1].tolist() == vocab.encode(t) + [EOS_ID]
        assert (b.tgt_in[row, m + 1:] == PAD_ID).all() and (b.tgt_out[row, m + 1:] == PAD_ID).all()


def test_bucketed_batches_cover_every_pair_once_with_similar_lengths():
    import random

    lengths = [len(s) for s, _ in make_pairs(1000, 3, 20, seed=0)]
    batches = bucketed_batches(lengths, 16, random.Random(0))
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(1000))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 3  # random batches of 16 from 3..20 would spread about 14


# --- the model ----------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", VARIANTS)
def test_shapes(variant):
    attention, bidirectional = VARIANTS[variant]
    model = tiny(attention, bidirectional)
    b = make_batch([("abcde", "edcba"), ("xy", "yx"), ("q", "q")])
    K = 2 * TINY.hidden_dim if bidirectional else TINY.hidden_dim
    states, summary = model.encode(b.src, b.src_lengths)
    assert states.shape == (3, 5, K) and summary.shape == (3, K)
    assert (states[1, 2:] == 0).all() and (states[2, 1:] == 0).all()  # padding positions are zeros
    assert model(b.src, b.src_lengths, b.tgt_in).shape == (3, 6, TINY.vocab_size)
    tokens, weights = model.greedy_decode(b.src, b.src_lengths, max_len=7)
    assert tokens.dtype == torch.long and tokens.shape[0] == 3 and 1 <= tokens.shape[1] <= 7
    assert not ((tokens == PAD_ID) | (tokens == BOS_ID))[:, 0].any()  # never predicted
    if attention:
        assert weights.shape == (3, tokens.shape[1], 5)
    else:
        assert weights is None


@pytest.mark.parametrize("bidirectional", [True, False])
def test_summary_is_the_final_state_of_each_direction(bidirectional):
    """c = [->h at the last real character; <-h at the first], read off the encoder states."""
    model = tiny(bidirectional=bidirectional)
    H = TINY.hidden_dim
    b = make_batch([("abcdefg", ""), ("xyz", ""), ("q", "")])
    states, summary = model.encode(b.src, b.src_lengths)
    for row, n in enumerate(b.src_lengths.tolist()):
        expected = states[row, n - 1, :H]
        if bidirectional:
            expected = torch.cat([expected, states[row, 0, H:]])
        torch.testing.assert_close(summary[row], expected, atol=1e-6, rtol=0)


def test_greedy_decode_stops_rows_at_eos(monkeypatch):
    """Scripted steps: row 0 writes </s> at step 2, row 1 at step 4; after </s> a row gets <pad>
    and zero weights, and decoding stops once every row is done."""
    model = tiny()
    b = make_batch([("abc", ""), ("de", "")])
    step, calls = model._step, []

    def scripted(y_prev, s, states, mask, summary):
        logits, s, weights = step(y_prev, s, states, mask, summary)
        t = len(calls)
        calls.append(t)
        logits = torch.zeros_like(logits)
        logits[:, 3 + t] = 1.0  # letters a, b, c, ... in turn
        logits[0, BOS_ID] = logits[0, PAD_ID] = 5.0  # never chosen
        if t == 1:
            logits[0, EOS_ID] = 2.0
        if t == 3:
            logits[1, EOS_ID] = 2.0
        return logits, s, weights

    monkeypatch.setattr(model, "_step", scripted)
    tokens, weights = model.greedy_decode(b.src, b.src_lengths, max_len=10)
    assert len(calls) == 4
    assert tokens.tolist() == [[3, EOS_ID, PAD_ID, PAD_ID], [3, 4, 5, EOS_ID]]
    torch.testing.assert_close(weights.sum(-1), torch.tensor([[1.0, 1, 0, 0], [1, 1, 1, 1]]))


def test_attention_weights_are_distributions_that_skip_padding():
    model = tiny()
    pairs = [("abcdefgh", ""), ("abc", ""), ("hello", "")]
    b = make_batch(pairs)
    tokens, weights = model.greedy_decode(b.src, b.src_lengths, max_len=6)
    for row, (s, _) in enumerate(pairs):
        for t in range(tokens.shape[1]):
            finished_before = t > 0 and (tokens[row, :t] == EOS_ID).any()
            total = float(weights[row, t].sum())
            assert total == pytest.approx(0.0 if finished_before else 1.0, abs=1e-6)
        assert (weights[row, :, len(s):] == 0).all()  # nothing on padding
        assert (weights[row, 0, :len(s)] > 0).all()  # softmax: something on every real position


@pytest.mark.parametrize("variant", VARIANTS)
def test_padding_invariance(variant):
    """A string decodes the same alone as in a batch with longer strings (within 1e-5)."""
    model = tiny(*VARIANTS[variant])
    short = ("hello", "olleh")
    others = make_pairs(5, 9, 14, seed=1)
    alone, batched = make_batch([short]), make_batch([short] + others)
    assert batched.src.shape[1] > alone.src.shape[1]
    s1, c1 = model.encode(alone.src, alone.src_lengths)
    s2, c2 = model.encode(batched.src, batched.src_lengths)
    torch.testing.assert_close(s2[0, :5], s1[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(c2[0], c1[0], atol=1e-5, rtol=0)
    long_tgt = torch.cat([batched.tgt_in[:1, :6], torch.full((1, 4), 5)], dim=1)  # extra steps after
    tgt = torch.cat([long_tgt, batched.tgt_in[1:, :10]], dim=0)
    logits_alone = model(alone.src, alone.src_lengths, alone.tgt_in)
    logits_batched = model(batched.src, batched.src_lengths, tgt)
    torch.testing.assert_close(logits_batched[0, :6], logits_alone[0], atol=1e-5, rtol=0)
    t1, w1 = model.greedy_decode(alone.src, alone.src_lengths, max_len=12)
    t2, w2 = model.greedy_decode(batched.src, batched.src_lengths, max_len=12)
    n = t1.shape[1]
    assert t2[0, :n].tolist() == t1[0].tolist() and (t2[0, n:] == PAD_ID).all()
    if w1 is not None:
        torch.testing.assert_close(w2[0, :n, :5], w1[0], atol=1e-5, rtol=0)
        assert (w2[0, :, 5:] == 0).all()


def test_without_attention_the_decoder_sees_only_the_summary(monkeypatch):
    """Replace the encoder states by noise but keep the summary: the bottleneck model's outputs
    do not change, the attention model's do."""
    b = make_batch([("abcdef", "fedcba"), ("xyz", "zyx")])
    for attention in (False, True):
        model = tiny(attention)
        before = model(b.src, b.src_lengths, b.tgt_in)
        encode = model.encode

        def noisy_states(src, lengths):
            states, summary = encode(src, lengths)
            return torch.randn_like(states), summary

        monkeypatch.setattr(model, "encode", noisy_states)
        after = model(b.src, b.src_lengths, b.tgt_in)
        if attention:
            assert (after - before).abs().max() > 1e-3
        else:
            torch.testing.assert_close(after, before, atol=0, rtol=0)


def test_parameter_counts_differ_only_by_the_attention_module():
    with_att, without = Seq2Seq(Seq2SeqConfig(attention=True)), Seq2Seq(Seq2SeqConfig(attention=False))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(with_att) - count(without) == sum(p.numel() for p in with_att.attention.parameters())
    H, K, A = 64, 128, 32
    assert count(with_att) - count(without) == H * A + K * A + A + A  # W, U and its bias, v


# --- scoring, against stub models whose outputs are known --------------------------------------

class Stub(Seq2Seq):
    """Reverses its source perfectly, except: `wrong_first` changes the first output character of
    sources of length >= 4; `no_eos` writes an extra 'a' instead of </s>."""

    def __init__(self, wrong_first: bool = False, no_eos: bool = False) -> None:
        super().__init__(TINY)
        self.wrong_first, self.no_eos = wrong_first, no_eos

    def greedy_decode(self, src, src_lengths, max_len):
        rows = []
        for ids, n in zip(src.tolist(), src_lengths.tolist()):
            out = ids[:n][::-1] + [3 if self.no_eos else EOS_ID]
            if self.wrong_first and n >= 4:
                out[0] = 3 if out[0] != 3 else 4
            rows.append((out + [PAD_ID] * max_len)[:max_len])
        return torch.tensor(rows), None


def test_accuracy_by_length_against_stubs():
    pairs = make_pairs(300, 2, 6, seed=0)
    assert accuracy_by_length(Stub(), pairs) == {n: 1.0 for n in range(2, 7)}
    assert accuracy_by_length(Stub(wrong_first=True), pairs) == {2: 1.0, 3: 1.0, 4: 0.0, 5: 0.0, 6: 0.0}
    chars = char_accuracy_by_length(Stub(wrong_first=True), pairs)
    assert chars == pytest.approx({2: 1.0, 3: 1.0, 4: 3 / 4, 5: 4 / 5, 6: 5 / 6})
    assert accuracy_by_length(Stub(no_eos=True), pairs) == {n: 0.0 for n in range(2, 7)}  # needs </s>
    assert translate(Stub(), ["abc", "hello"]) == ["cba", "olleh"]


def test_evaluate_loss_matches_cross_entropy_by_hand():
    model = tiny()
    pairs = [("abc", "cba"), ("de", "ed")]
    b = make_batch(pairs)
    logp = model(b.src, b.src_lengths, b.tgt_in).detach().log_softmax(-1)
    picked = [-logp[r, t, b.tgt_out[r, t]] for r in range(2) for t in range(b.tgt_out.shape[1])
              if b.tgt_out[r, t] != PAD_ID]
    assert len(picked) == 7  # 3 + 1 and 2 + 1 characters with </s>
    assert evaluate_loss(model, pairs, batch_size=1) == pytest.approx(float(sum(picked) / 7), rel=1e-5)


# --- training ------------------------------------------------------------------------------------

def test_training_reduces_the_loss_records_history_and_repeats_exactly():
    pairs = make_pairs(64, 3, 6, seed=0)
    config = chapter_train_config(max_steps=40, batch_size=16, lr=1e-2, warmup_steps=5, progress=False,
                                  eval_every=20)
    runs = []
    for _ in range(2):
        model = tiny()
        history = train_seq2seq(model, pairs, config, valid_pairs=pairs[:16])
        runs.append(history)
    history = runs[0]
    assert runs[1].train_loss == history.train_loss  # fixed seeds: the same numbers every run
    assert history.steps == 40 and history.epochs_completed == 10
    first, last = sum(history.train_loss[:5]) / 5, sum(history.train_loss[-5:]) / 5
    assert last < 0.8 * first
    assert history.eval_steps == [20, 40] and history.valid_loss[-1] < history.valid_loss[0]
    assert history.tokens_seen == 10 * sum(len(t) + 1 for _, t in pairs)
    assert history.lr[0] == pytest.approx(1e-2 / 5)  # warmup from the TrainConfig schedule
    assert max(history.grad_norm) > 0 and history.train_seconds > 0


def test_attention_learns_to_reverse_length_5_strings():
    """A few seconds of training: attention gets > 90% of unseen length-5 strings right; the same
    budget without attention stays far behind (the bottleneck in miniature)."""
    pairs, test = make_pairs(2000, 5, 5, seed=0), make_pairs(300, 5, 5, seed=1)
    config = chapter_train_config(max_steps=150, lr=1e-2, batch_size=32, warmup_steps=10, progress=False)
    accuracy = {}
    for attention in (True, False):
        torch.manual_seed(0)
        model = Seq2Seq(Seq2SeqConfig(emb_dim=16, hidden_dim=24, attention_dim=16, attention=attention))
        train_seq2seq(model, pairs, config)
        accuracy[attention] = accuracy_by_length(model, test)[5]
    assert accuracy[True] > 0.9
    assert accuracy[False] < accuracy[True] - 0.5


def test_chapter_defaults():
    config, train = Seq2SeqConfig(), chapter_train_config()
    assert (config.hidden_dim, config.attention_dim, config.bidirectional) == (64, 32, True)
    assert (train.max_steps, train.batch_size, train.seed) == (1000, 64, 0)
    assert CHAPTER_LENGTHS == (3, 20)


def test_plots_draw(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    ax = plot_accuracy_by_length({"a": {3: 1.0, 4: 0.5}, "b": {3: 0.2, 4: 0.0}})
    assert len(ax.lines) == 2
    ax = plot_alignment(torch.eye(4)[:, :3], "abc", "cba")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["c", "b", "a", "</s>"]
    assert len(ax.figure.axes) == 2 and ax.images[0].get_clim() == (0.0, 1.0)  # a colourbar; weights on [0, 1]
    ax.figure.savefig(tmp_path / "alignment.png")


# --- errors --------------------------------------------------------------------------------------

def test_data_errors():
    with pytest.raises(ValueError, match="non-empty list"):
        make_batch([])
    with pytest.raises(ValueError, match=r"character 'A' .* not in the vocabulary"):
        make_batch([("abA", "Aba")])
    with pytest.raises(TypeError, match=r"pairs\[1\] must be a \(source, target\) pair"):
        make_batch([("ab", "ba"), "cd"])
    with pytest.raises(ValueError, match="empty source"):
        make_batch([("", "")])
    with pytest.raises(ValueError, match="min_len=5 is larger than max_len=3"):
        make_pairs(10, 5, 3)
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        make_pairs(0)
    with pytest.raises(ValueError, match="unknown task 'sort'; choose one of reverse, copy"):
        make_pairs(3, task="sort")
    with pytest.raises(ValueError, match="repeats characters"):
        CharVocab("abca")


def test_model_input_errors():
    model = tiny()
    b = make_batch([("abc", "cba"), ("de", "ed")])
    with pytest.raises(TypeError, match=r"src must be a LongTensor .* use \.long\(\)"):
        model(b.src.float(), b.src_lengths, b.tgt_in)
    with pytest.raises(ValueError, match=r"src must have shape \(B, length\)"):
        model(b.src[0], b.src_lengths, b.tgt_in)
    with pytest.raises(ValueError, match=r"src_lengths must have shape \(B,\) = \(2,\)"):
        model(b.src, b.src_lengths[:1], b.tgt_in)
    with pytest.raises(ValueError, match=r"src_lengths must lie in \[1, S=3\]"):
        model(b.src, torch.tensor([4, 2]), b.tgt_in)
    with pytest.raises(TypeError, match="src_lengths must be a LongTensor"):
        model(b.src, [3, 2], b.tgt_in)
    with pytest.raises(ValueError, match=r"ids outside \[0, 29\)"):
        model(b.src + 30, b.src_lengths, b.tgt_in)
    with pytest.raises(ValueError, match="same batch size"):
        model(b.src, b.src_lengths, b.tgt_in[:1])
    with pytest.raises(ValueError, match="max_len must be a positive int"):
        model.greedy_decode(b.src, b.src_lengths, 0)
    with pytest.raises(TypeError, match="wrap one string"):
        translate(model, "abc")


def test_config_and_training_errors():
    with pytest.raises(ValueError, match="hidden_dim must be a positive int"):
        Seq2SeqConfig(hidden_dim=0)
    with pytest.raises(ValueError, match="attention must be True or False"):
        Seq2SeqConfig(attention=1)
    with pytest.raises(TypeError, match="config must be a Seq2SeqConfig"):
        Seq2Seq({"hidden_dim": 8})
    model, quiet = tiny(), chapter_train_config(max_steps=1, progress=False)
    with pytest.raises(ValueError, match="train_pairs must be a non-empty list"):
        train_seq2seq(model, [], quiet)
    with pytest.raises(ValueError, match=r"train_pairs\[1\]: character '7'"):
        train_seq2seq(model, [("ab", "ba"), ("a7", "7a")], quiet)
    with pytest.raises(ValueError, match=r"valid_pairs\[0\]: character 'B'"):
        train_seq2seq(model, [("ab", "ba")], quiet, valid_pairs=[("B", "B")])
    with pytest.raises(ValueError, match="does not support patience"):
        train_seq2seq(model, [("ab", "ba")], chapter_train_config(patience=2))
    with pytest.raises(TypeError, match="model must be a Seq2Seq"):
        train_seq2seq(torch.nn.Linear(2, 2), [("ab", "ba")], quiet)
    with pytest.raises(ValueError, match=r"vocab_size=29; build it with Seq2SeqConfig\(vocab_size=39\)"):
        train_seq2seq(model, [("ab", "ba")], quiet, vocab=CharVocab(string.ascii_lowercase + string.digits))
