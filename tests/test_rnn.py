"""Tests for lmcourse.rnn: the from-scratch cells against torch's nn.RNN / nn.LSTM / nn.GRU
(outputs, final states and gradients, float32 and float64), and RNNModel's protocol (nll,
log_probs, carried state, adaptive softmax, weight tying, generation, errors) with a real
learning test.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lmcourse.decoding import DecodingSettings, next_token
from lmcourse.data import batchify, get_batch
from lmcourse.rnn import (CELLS, GRUCell, LSTMCell, RNNCell, RNNConfig, RNNModel, copy_weights_from,
                          unroll)


# --- the cells against torch ---------------------------------------------------------------------

# name -> (our cell class, torch layer class, constructor kwargs)
CELL_KINDS = {
    "rnn_tanh": (RNNCell, nn.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (RNNCell, nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (LSTMCell, nn.LSTM, {}),
    "gru": (GRUCell, nn.GRU, {}),
}
TOL = {torch.float32: 1e-6, torch.float64: 1e-12}


def run_both(kind, T, B, C, H, dtype, seed=0):
    """Run a random torch layer and our cell with its weights from a non-zero initial state;
    backpropagate the same random weighting of the outputs through both. Returns pairs
    (ours, torch's) of everything that must agree."""
    torch.manual_seed(seed)
    cell_cls, layer_cls, kwargs = CELL_KINDS[kind]
    layer = layer_cls(C, H, **kwargs).to(dtype)
    cell = cell_cls.from_torch(layer)
    assert cell.weight_ih.dtype == dtype
    x = torch.randn(T, B, C, dtype=dtype)
    h0 = torch.randn(B, H, dtype=dtype)
    c0 = torch.randn(B, H, dtype=dtype)
    weights = torch.randn(T, B, H, dtype=dtype)
    lstm = kind == "lstm"

    x_t, h_t, c_t = (t.clone().requires_grad_() for t in (x, h0, c0))
    state_t = (h_t[None], c_t[None]) if lstm else h_t[None]  # (B, H) -> (1, B, H)
    out_t, final_t = layer(x_t, state_t)
    final_t = (final_t[0][0], final_t[1][0]) if lstm else final_t[0]  # (1, B, H) -> (B, H)

    x_o, h_o, c_o = (t.clone().requires_grad_() for t in (x, h0, c0))
    out_o, final_o = unroll(cell, x_o, (h_o, c_o) if lstm else h_o)

    loss_t = (out_t * weights).sum() + (final_t[1].sum() if lstm else 0)
    loss_o = (out_o * weights).sum() + (final_o[1].sum() if lstm else 0)
    loss_t.backward()
    loss_o.backward()
    pairs = [(out_o, out_t), (x_o.grad, x_t.grad), (h_o.grad, h_t.grad)]
    pairs += list(zip(final_o, final_t)) if lstm else [(final_o, final_t)]
    if lstm:
        pairs.append((c_o.grad, c_t.grad))
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        pairs.append((getattr(cell, name).grad, getattr(layer, name + "_l0").grad))
    return pairs


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", list(CELL_KINDS))
def test_cell_matches_torch_outputs_state_and_gradients(kind, dtype):
    for ours, theirs in run_both(kind, T=6, B=3, C=5, H=7, dtype=dtype):
        assert ours.dtype == dtype
        torch.testing.assert_close(ours, theirs, atol=TOL[dtype] * 10, rtol=TOL[dtype])


@settings(max_examples=15, deadline=None)
@given(kind=st.sampled_from(list(CELL_KINDS)), T=st.integers(1, 5), B=st.integers(1, 4),
       C=st.integers(1, 6), H=st.integers(1, 6), seed=st.integers(0, 1000))
def test_cell_matches_torch_for_any_size(kind, T, B, C, H, seed):
    for ours, theirs in run_both(kind, T, B, C, H, torch.float64, seed):
        torch.testing.assert_close(ours, theirs, atol=1e-11, rtol=1e-11)


@pytest.mark.parametrize("kind", list(CELL_KINDS))
def test_stacked_cells_match_a_two_layer_torch_module(kind):
    torch.manual_seed(1)
    cell_cls, layer_cls, kwargs = CELL_KINDS[kind]
    layer = layer_cls(4, 6, num_layers=2, **kwargs).double()
    cells = [cell_cls.from_torch(layer, layer=i) for i in range(2)]
    x = torch.randn(5, 3, 4, dtype=torch.float64)
    expected, _ = layer(x)
    out, _ = unroll(cells[1], unroll(cells[0], x)[0])  # zero initial states, as torch's default
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=1e-12)


def test_torch_cells_can_be_copied_too():
    torch.manual_seed(2)
    torch_cell = nn.GRUCell(3, 4)
    ours = copy_weights_from(torch_cell, GRUCell(3, 4))
    x, h = torch.randn(2, 3), torch.randn(2, 4)
    torch.testing.assert_close(ours(x, h), torch_cell(x, h), atol=1e-6, rtol=1e-6)


def test_cells_have_torchs_parameter_names_and_shapes():
    for cell, gates in ((RNNCell(3, 5), 1), (LSTMCell(3, 5), 4), (GRUCell(3, 5), 3)):
        shapes = {n: tuple(p.shape) for n, p in cell.named_parameters()}
        assert shapes == {"weight_ih": (gates * 5, 3), "weight_hh": (gates * 5, 5),
                          "bias_ih": (gates * 5,), "bias_hh": (gates * 5,)}


def test_cell_errors_name_the_expected_shape():
    cell = LSTMCell(3, 5)
    with pytest.raises(ValueError, match=r"\(B, 3\)"):
        cell(torch.randn(2, 4))
    with pytest.raises(ValueError, match=r"\(B, 3\)"):
        cell(torch.randn(3))
    with pytest.raises(TypeError, match="float tensor"):
        cell(torch.ones(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(2, 5\)"):
        cell(torch.randn(2, 3), (torch.zeros(2, 4), torch.zeros(2, 5)))
    with pytest.raises(TypeError, match=r"pair \(h, c\)"):
        cell(torch.randn(2, 3), torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"\(B, 5\)|\(2, 5\)"):
        RNNCell(3, 5)(torch.randn(2, 3), torch.zeros(5))
    with pytest.raises(ValueError, match=r"\(T, B, 3\)"):
        unroll(cell, torch.randn(2, 3))
    with pytest.raises(ValueError, match="nonlinearity"):
        RNNCell(3, 5, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="hidden_size"):
        GRUCell(3, 0)


def test_copy_weights_errors():
    with pytest.raises(TypeError, match="nn.LSTM"):
        copy_weights_from(nn.GRU(3, 5), LSTMCell(3, 5))
    with pytest.raises(ValueError, match="input_size=4"):
        copy_weights_from(nn.GRU(4, 5), GRUCell(3, 5))
    with pytest.raises(ValueError, match="nonlinearity"):
        copy_weights_from(nn.RNN(3, 5, nonlinearity="relu"), RNNCell(3, 5))
    with pytest.raises(ValueError, match="layer=2 out of range"):
        copy_weights_from(nn.LSTM(3, 5, num_layers=2), LSTMCell(5, 5), layer=2)
    with pytest.raises(ValueError, match="bias=False"):
        copy_weights_from(nn.RNN(3, 5, bias=False), RNNCell(3, 5))
    assert RNNCell.from_torch(nn.RNN(3, 5, nonlinearity="relu")).nonlinearity == "relu"


# --- the language model --------------------------------------------------------------------------

V = 23


def make_model(cell="lstm", adaptive=False, **overrides):
    torch.manual_seed(0)
    cfg = RNNConfig(vocab_size=V, cell=cell, emb_dim=8, hidden_dim=16, num_layers=2, dropout=0.0,
                    adaptive_cutoffs=(5, 12) if adaptive else None)
    return RNNModel(dataclasses.replace(cfg, **overrides)).eval()


def random_ids(T, B, seed=0):
    return torch.randint(0, V, (T, B), generator=torch.Generator().manual_seed(seed))


BOTH = pytest.mark.parametrize("adaptive", [False, True], ids=["full", "adaptive"])
ALL_CELLS = pytest.mark.parametrize("cell", list(CELLS))


@BOTH
@ALL_CELLS
def test_model_shapes_and_nll_equals_gathered_log_probs(cell, adaptive):
    model = make_model(cell, adaptive)
    x, y = random_ids(7, 3), random_ids(7, 3, seed=1)
    nll, state = model.nll(x, y, None)
    logp, state2 = model.log_probs(x, None)
    assert nll.shape == (7, 3) and logp.shape == (7, 3, V)
    for s in (state if cell == "lstm" else (state,)):
        assert s.shape == (2, 3, 16)
    # the manual cross-entropy from the full distributions
    torch.testing.assert_close(nll, -logp.gather(-1, y[..., None])[..., 0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(nll, F.nll_loss(logp.view(-1, V), y.view(-1), reduction="none").view(7, 3))
    # every row is a distribution over the whole vocabulary
    torch.testing.assert_close(logp.logsumexp(-1), torch.zeros(7, 3), atol=1e-5, rtol=0)


@BOTH
@ALL_CELLS
def test_carried_state_equals_one_long_chunk(cell, adaptive):
    model = make_model(cell, adaptive)
    x, y = random_ids(11, 2), random_ids(11, 2, seed=1)
    with torch.no_grad():
        whole, _ = model.nll(x, y, None)
        first, state = model.nll(x[:4], y[:4], None)
        second, _ = model.nll(x[4:], y[4:], state)
    torch.testing.assert_close(torch.cat([first, second]), whole, atol=1e-6, rtol=1e-6)


def test_flat_targets_from_get_batch_are_accepted():
    model = make_model("gru")
    source = batchify(torch.arange(60) % V, 4)
    inputs, targets = get_batch(source, 0, bptt=5)
    flat, _ = model.nll(inputs, targets, None)
    shaped, _ = model.nll(inputs, targets.view(5, 4), None)
    assert torch.equal(flat, shaped)


def test_model_matches_the_from_scratch_cells():
    """The model's nn.LSTM layers are the cells of the first half: rebuild the forward pass."""
    model = make_model("lstm")
    x = random_ids(6, 2)
    cells = [LSTMCell.from_torch(model.rnn, layer=i) for i in range(2)]
    h = model.embedding(x)
    for cell in cells:
        h, _ = unroll(cell, h)
    expected = F.log_softmax(model.decoder(h), dim=-1)
    torch.testing.assert_close(model.log_probs(x)[0], expected, atol=1e-5, rtol=1e-5)


def test_weight_tying_shares_one_parameter():
    tied = make_model("gru", emb_dim=16, tie_weights=True)
    untied = make_model("gru", emb_dim=16)
    assert tied.decoder.weight is tied.embedding.weight
    assert tied.num_parameters == untied.num_parameters - V * 16
    params = [n for n, _ in tied.named_parameters()]
    assert "embedding.weight" in params and "decoder.weight" not in params  # listed once


def test_classic_init():
    model = make_model("lstm")
    assert model.embedding.weight.abs().max() <= 0.1 and model.decoder.weight.abs().max() <= 0.1
    assert torch.equal(model.decoder.bias, torch.zeros(V))


def test_config_round_trips_through_json():
    cfg = RNNConfig(vocab_size=100, cell="gru", adaptive_cutoffs=(10, 50))
    back = RNNConfig(**json.loads(json.dumps(dataclasses.asdict(cfg))))
    assert back == cfg and back.adaptive_cutoffs == (10, 50)
    assert RNNModel(RNNConfig.tiny(50)).config.num_layers == 1


@pytest.mark.parametrize("overrides, error, message", [
    (dict(cell="transformer"), ValueError, "'rnn_tanh', 'rnn_relu', 'lstm', 'gru'"),
    (dict(tie_weights=True, emb_dim=8, hidden_dim=16), ValueError, "emb_dim == hidden_dim"),
    (dict(tie_weights=True, adaptive_cutoffs=(5,)), ValueError, "adaptive_cutoffs=None or tie_weights=False"),
    (dict(adaptive_cutoffs=(12, 5)), ValueError, "strictly increasing"),
    (dict(adaptive_cutoffs=(5, V)), ValueError, f"below vocab_size={V}"),
    (dict(adaptive_cutoffs=(0, 5)), ValueError, "strictly increasing positive"),
    (dict(adaptive_cutoffs=()), ValueError, "None for the full softmax"),
    (dict(adaptive_cutoffs=5), TypeError, "adaptive_cutoffs"),
    (dict(dropout=1.0), ValueError, "dropout"),
    (dict(num_layers=0), ValueError, "num_layers"),
])
def test_bad_configs_say_what_to_change(overrides, error, message):
    base = dict(vocab_size=V, emb_dim=8, hidden_dim=8)
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        RNNConfig(**{**base, **overrides})


def test_bad_inputs_give_clear_errors():
    model = make_model("lstm")
    x = random_ids(4, 2)
    with pytest.raises(TypeError, match="LongTensor"):
        model.nll(x.float(), x, None)
    with pytest.raises(ValueError, match=r"\(T, B\)"):
        model.log_probs(x[0], None)
    with pytest.raises(ValueError, match=rf"outside \[0, {V}\)"):
        model.log_probs(x + V, None)
    with pytest.raises(ValueError, match=r"targets must have shape \(4, 2\)"):
        model.nll(x, x[:3], None)
    with pytest.raises(ValueError, match=r"\(2, 2, 16\)"):
        model.nll(x, x, (torch.zeros(2, 3, 16), torch.zeros(2, 3, 16)))  # state of another batch size
    with pytest.raises(ValueError, match=r"pair \(h, c\)"):
        model.nll(x, x, torch.zeros(2, 2, 16))
    with pytest.raises(TypeError, match="RNNConfig"):
        RNNModel({"vocab_size": V})


def test_adaptive_softmax_too_narrow_for_its_clusters():
    with pytest.raises(ValueError, match="too few for 2 adaptive-softmax tail cluster"):
        make_model("gru", adaptive=True, hidden_dim=12)


# --- generation ----------------------------------------------------------------------------------

def test_generate_is_reproducible_and_respects_stop_ids_and_mode():
    model = make_model("gru").train()
    a = model.generate([1, 2, 3], 30, seed=7)
    assert model.training  # mode restored
    assert a == model.generate([1, 2, 3], 30, seed=7)
    assert a != model.generate([1, 2, 3], 30, seed=8)
    assert len(a) == 30 and all(0 <= i < V for i in a)
    stop = a[5]
    first = a.index(stop)
    assert model.generate([1, 2, 3], 30, seed=7, stop_ids=stop) == a[:first + 1]
    end = min(a.index(t) for t in (stop, a[2]))  # the first of several stop ids ends the sequence
    assert model.generate([1, 2, 3], 30, seed=7, stop_ids=[stop, a[2]]) == a[:end + 1]
    assert model.generate([1, 2, 3], 0) == []


def test_greedy_and_top_k_one_agree_with_argmax():
    model = make_model("lstm", adaptive=True)
    greedy = model.generate([4], 8, temperature=0)
    assert greedy == model.generate([4], 8, top_k=1, seed=3)
    ids = [4]
    for _ in range(8):  # the argmax chain, recomputed from the whole prefix each time
        ids.append(int(model.log_probs(torch.tensor(ids)[:, None])[0][-1, 0].argmax()))
    assert greedy == ids[1:]


def test_generate_uses_the_decoding_rules_top_p_and_repetition_penalty():
    model = make_model("gru")
    greedy = model.generate([4], 12, temperature=0)
    assert model.generate([4], 12, top_p=1e-9, seed=5) == greedy  # a tiny nucleus keeps only the top id
    fresh = model.generate([4], 12, temperature=0, repetition_penalty=1e6)  # log-probs < 0: repeats fall away
    assert len(set(fresh)) == 12 and 4 not in fresh
    ids, expected = torch.tensor([[4]]), []  # the same rule, step by step, with lmcourse.decoding
    for _ in range(12):
        logp = model.log_probs(ids.T)[0][-1]  # (1, V)
        nxt = next_token(logp, ids, DecodingSettings(temperature=0, repetition_penalty=1e6))
        expected.append(int(nxt))
        ids = torch.cat([ids, nxt[:, None]], dim=1)
    assert fresh == expected


@pytest.mark.parametrize("kwargs, message", [
    (dict(ids=[]), "ids is empty"), (dict(ids=[V]), "ids holds ids outside"), (dict(stop_ids=[V]), "stop_ids"),
    (dict(max_new_tokens=-1), "max_new_tokens"), (dict(temperature=-1.0), "temperature"),
    (dict(top_k=0), "top_k"), (dict(top_p=1.5), "top_p"), (dict(repetition_penalty=0), "repetition_penalty"),
])
def test_generate_errors(kwargs, message):
    args = {"ids": [1], "max_new_tokens": 3, **kwargs}
    with pytest.raises(ValueError, match=message):
        make_model("gru").generate(**args)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_generate_with_or_without_the_carried_state_and_as_a_batch_gives_the_same_ids(cell):
    model = make_model(cell)
    a = model.generate([1, 2, 3], 20, seed=2)
    assert model.generate([1, 2, 3], 20, seed=2, use_cache=False) == a  # re-reads the sequence each step
    assert model.generate(torch.tensor([1, 2, 3]), 20, seed=2) == a  # (T,)
    greedy = [model.generate(p, 20, temperature=0) for p in ([1, 2, 3], [4, 5, 6])]
    stop = greedy[0][3]
    batch = model.generate(torch.tensor([[1, 2, 3], [4, 5, 6]]), 20, temperature=0, stop_ids=stop)  # (B, T)
    assert batch == [g[:g.index(stop) + 1] if stop in g else g for g in greedy]
    with pytest.raises(TypeError, match="list of ints"):
        model.generate("abc", 3)
    with pytest.raises(TypeError):
        model.generate([1], 3, 1.0)  # every option is keyword-only, as in GPT.generate


# --- learning ------------------------------------------------------------------------------------

@pytest.mark.parametrize("cell", list(CELLS))
def test_learns_a_pattern_that_needs_memory(cell):
    """"a b a c" repeated: after "a" the next word depends on the word before it, so the model
    must carry information in its state. Truncated BPTT with the state carried across chunks."""
    torch.manual_seed(0)
    model = RNNModel(RNNConfig(vocab_size=4, cell=cell, emb_dim=16, hidden_dim=32, num_layers=1,
                               dropout=0.0))
    source = batchify(torch.tensor([0, 1, 0, 2] * 100), 4)  # (100, 4)
    opt = torch.optim.AdamW(model.parameters(), lr=0.02)
    losses = []
    for _epoch in range(12):
        state, epoch_losses = None, []
        for i in range(0, len(source) - 1, 10):
            x, y = get_batch(source, i, 10)
            nll, state = model.nll(x, y, state)
            state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
            opt.zero_grad()
            nll.mean().backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # relu RNNs can explode without it
            opt.step()
            epoch_losses.append(nll.mean().item())
        losses.append(sum(epoch_losses) / len(epoch_losses))
    model.eval()
    nll, _ = model.nll(source[:-1], source[1:], None)
    assert losses[-1] < losses[0]
    assert nll[4:].mean() < 0.1  # after the first few tokens, almost certain of every next word


def test_lstm_step_is_the_lstm_cell_without_its_checks():
    from lmcourse.rnn import lstm_step
    torch.manual_seed(0)
    ref = nn.LSTMCell(5, 7)
    cell = LSTMCell.from_torch(ref)
    x, h, c = torch.randn(3, 5), torch.randn(3, 7), torch.randn(3, 7)
    step = lstm_step(x, h, c, ref.weight_ih, ref.weight_hh, ref.bias_ih, ref.bias_hh)
    for mine, theirs in zip(step, cell(x, (h, c))):
        torch.testing.assert_close(mine, theirs, atol=1e-6, rtol=0)
    for mine, theirs in zip(step, ref(x, (h, c))):
        torch.testing.assert_close(mine, theirs, atol=1e-6, rtol=0)
