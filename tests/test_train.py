"""Tests for lmcourse.train: the training loop, evaluation, schedules, early stopping and resume.

The tiny models and data come from tests/lm_fixtures.py. Oracles: the Markov source's own
cross-entropy, ``F.cross_entropy`` on the bigram table, one uninterrupted run against a resumed
one, the schedule formula written out again. Files are written only under tmp_path. The
checkpoint file format and its refusals are tested in tests/test_checkpoint.py.
"""

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

from lmcourse.data import batchify, get_batch
from lmcourse.train import (
    Evaluation,
    TrainConfig,
    detach_state,
    evaluate,
    load_checkpoint,
    lr_multiplier,
    make_optimizer,
    plot_history,
    train,
    train_minimal,
    train_on_examples,
)
from tests.lm_fixtures import (
    FAST,
    SOURCE,
    TRAIN,
    VALID,
    Bigram,
    RNNConfig,
    TinyRNN,
    V,
    assert_same_weights,
    make,
)


# ---------------------------------------------------------------------------------------------
# Learning, determinism, clipping, schedules

def test_bigram_learns_the_markov_source_down_to_its_cross_entropy():
    model = make("bigram")
    history = train(model, TRAIN, VALID, dataclasses.replace(FAST, lr=0.1, epochs=4))
    assert history.train_loss[-1] < history.train_loss[0] - 0.5
    assert history.valid_loss[-1] < history.valid_loss[0]
    # oracle: the true chain's own cross-entropy on the scored part of the validation stream
    data = batchify(VALID, 4)  # (rows, 4); column b is a contiguous slice
    true_ce = np.mean([SOURCE.cross_entropy(data[:, b].numpy(), base=math.e) for b in range(4)])
    assert history.valid_loss[-1] == pytest.approx(true_ce, abs=0.05)
    assert history.epochs_completed == 4
    assert history.tokens_seen == 4 * (len(TRAIN) // 8 - 1) * 8
    assert history.tokens_per_second > 0 and history.total_seconds >= history.train_seconds


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_recurrent_model_loss_goes_down(kind):
    history = train(make(kind), TRAIN, VALID, dataclasses.replace(FAST, epochs=2))
    assert np.mean(history.train_loss[-5:]) < np.mean(history.train_loss[:5]) - 0.3
    assert history.valid_loss[-1] <= history.valid_loss[0]


def test_same_seed_same_run_other_seed_other_run():
    cfg = dataclasses.replace(FAST, max_steps=15, eval_every=5)
    runs = []
    for seed in (0, 0, 1):
        model = make("gru", dropout=0.3)  # dropout: the config seed matters, not only the init
        runs.append((train(model, TRAIN, VALID, dataclasses.replace(cfg, seed=seed)), model))
    (h0, m0), (h1, m1), (h2, _) = runs
    assert h0.train_loss == h1.train_loss and h0.valid_loss == h1.valid_loss
    assert_same_weights(m0, m1)
    assert h0.train_loss != h2.train_loss


@pytest.fixture
def optimizer_steps():
    """Record, at every optimizer step, the total grad norm and the lr it will use."""
    seen = []

    def hook(optimizer, args, kwargs):
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        seen.append((float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))),
                     optimizer.param_groups[0]["lr"]))

    handle = register_optimizer_step_pre_hook(hook)
    yield seen
    handle.remove()


def test_clipping_bounds_the_gradient_norm(optimizer_steps):
    cfg = dataclasses.replace(FAST, lr=0.05, clip_grad_norm=0.05, max_steps=20)
    history = train(make("gru"), TRAIN, VALID, cfg)
    post = [norm for norm, _ in optimizer_steps]
    assert len(post) == 20
    assert max(history.grad_norm) > 0.05  # clipping had something to do ...
    assert all(n <= 0.05 * (1 + 1e-5) for n in post)  # ... and did it
    for pre, after in zip(history.grad_norm, post):
        assert after == pytest.approx(min(pre, 0.05), rel=1e-4)


def test_without_clipping_grad_norm_is_recorded_unchanged(optimizer_steps):
    history = train(make("gru"), TRAIN, VALID, dataclasses.replace(FAST, clip_grad_norm=None, max_steps=5))
    assert [n for n, _ in optimizer_steps] == pytest.approx(history.grad_norm, rel=1e-5)


def expected_multiplier(s: int, schedule: str, warmup: int, total: int, floor: float) -> float:
    if s < warmup:
        return (s + 1) / warmup
    p = min(1.0, (s - warmup) / (total - warmup))
    if schedule == "cosine":
        return floor + (1 - floor) * (1 + math.cos(math.pi * p)) / 2
    if schedule == "linear":
        return floor + (1 - floor) * (1 - p)
    return 1.0


@pytest.mark.parametrize("schedule", ["constant", "cosine", "linear"])
def test_schedule_follows_the_formula_and_is_what_the_optimizer_uses(schedule, optimizer_steps):
    cfg = dataclasses.replace(FAST, lr=0.02, schedule=schedule, warmup_steps=4, min_lr_ratio=0.1,
                              max_steps=16)
    history = train(make("bigram"), TRAIN, VALID, cfg)
    expected = [0.02 * expected_multiplier(s, schedule, 4, 16, 0.1) for s in range(16)]
    assert history.lr == pytest.approx(expected, rel=1e-12)
    assert [lr for _, lr in optimizer_steps] == history.lr
    assert history.lr[3] == pytest.approx(0.02)  # warmup reaches the peak at its last step


def test_schedule_without_max_steps_spans_the_epochs():
    cfg = dataclasses.replace(FAST, schedule="linear", epochs=2)
    history = train(make("bigram"), TRAIN, VALID, cfg)
    steps = 2 * math.ceil((len(TRAIN) // 8 - 1) / 10)
    assert len(history.lr) == steps
    assert history.lr[-1] == pytest.approx(0.03 * lr_multiplier(steps - 1, cfg, steps))
    assert history.lr[-1] == pytest.approx(0.03 / steps)


def test_stop_after_takes_the_first_steps_of_the_full_schedule_and_resumes_into_the_rest(tmp_path):
    cfg = dataclasses.replace(FAST, lr=0.02, schedule="cosine", warmup_steps=4, max_steps=30, eval_every=10)
    full = train(make("gru"), TRAIN, VALID, cfg)
    first = make("gru")
    part = train(first, TRAIN, VALID, dataclasses.replace(cfg, stop_after=10, checkpoint=tmp_path / "part.safetensors"))
    assert part.steps == 10 and part.train_loss == full.train_loss[:10] and part.lr == full.lr[:10]
    assert part.valid_loss == full.valid_loss[:1] and part.eval_steps == [10]
    assert part.lr[-1] > full.lr[-1] * 10  # mid-schedule, not the end of a 10-step one
    resumed = train(make("gru", seed=5), TRAIN, VALID, cfg, resume_from=tmp_path / "part.safetensors")
    assert resumed.train_loss == full.train_loss and resumed.valid_loss == full.valid_loss
    with pytest.raises(ValueError, match="stop_after"):
        dataclasses.replace(cfg, stop_after=0)
    with pytest.raises(ValueError, match="multiple of eval_every"):
        dataclasses.replace(cfg, stop_after=15)  # an extra evaluation at step 15 would change the resumed history


def test_sgd_with_momentum_and_weight_decay_groups():
    model = make("bigram")
    cfg = TrainConfig(optimizer="sgd", lr=0.5, momentum=0.9, weight_decay=0.1)
    optimizer = make_optimizer(model, cfg)
    assert isinstance(optimizer, torch.optim.SGD)
    decay = {id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    assert decay[id(model.logits.weight)] == 0.1 and decay[id(model.bias)] == 0.0
    history = train(model, TRAIN, VALID, dataclasses.replace(FAST, optimizer="sgd", lr=0.5, momentum=0.9, epochs=2))
    assert np.mean(history.train_loss[-5:]) < np.mean(history.train_loss[:5]) - 0.3
    assert history.valid_loss[-1] < math.log(V) - 0.3  # well below the uniform model


# ---------------------------------------------------------------------------------------------
# Truncated BPTT: the state is carried and detached

class Recording(TinyRNN):
    """Remembers the state each training call received and the one it returned."""

    def __init__(self):
        torch.manual_seed(0)
        super().__init__(RNNConfig())
        self.received, self.returned = [], []

    def nll(self, inputs, targets, state):
        nll, new = super().nll(inputs, targets, state)
        if self.training:
            self.received.append(state)
            self.returned.append(new)
        return nll, new


def test_state_is_carried_across_chunks_and_detached():
    model = Recording()
    rows = len(TRAIN) // 8
    chunks = math.ceil((rows - 1) / 10)
    train(model, TRAIN, VALID, dataclasses.replace(FAST, epochs=2))  # a second backward through
    assert len(model.received) == 2 * chunks  # an old graph would have raised a RuntimeError
    for k, state in enumerate(model.received):
        if k % chunks == 0:
            assert state is None  # each epoch starts fresh
        else:
            assert state.grad_fn is None and not state.requires_grad  # the graph is cut
            assert model.returned[k - 1].grad_fn is not None  # it was there before detaching
            assert torch.equal(state, model.returned[k - 1])  # but the values are carried


def test_detach_state_nested_and_bad_types():
    from collections import namedtuple

    Pair = namedtuple("Pair", "h c")
    x = torch.ones(3, requires_grad=True) * 2
    out = detach_state(Pair(x, [x, (None, x)]))
    assert isinstance(out, Pair) and isinstance(out.c, list)
    assert not out.h.requires_grad and not out.c[1][1].requires_grad and out.c[1][0] is None
    with pytest.raises(TypeError, match="None, a Tensor or a"):
        detach_state({"h": x})


# ---------------------------------------------------------------------------------------------
# The teaching loop computes what train() computes


@pytest.mark.parametrize("kind, weight_decay", [("gru", 0.01), ("lstm", 0.1), ("bigram", 0.0)])
def test_train_minimal_gives_the_weights_and_losses_of_train_bit_for_bit(kind, weight_decay):
    steps, bptt = 25, 10  # less than one epoch: train_minimal reads one pass of a stream
    config = dataclasses.replace(FAST, max_steps=steps, lr=0.02, weight_decay=weight_decay, seed=5,
                                 clip_grad_norm=0.2)  # small enough to clip
    dropout = {} if kind == "bigram" else {"dropout": 0.2}  # dropout draws from the same RNG too
    production = make(kind, **dropout)
    history = train(production, TRAIN, VALID, config)
    data = batchify(TRAIN, config.batch_size)  # (rows, B)
    chunks = [get_batch(data, i, bptt) for i in range(0, steps * bptt, bptt)]  # (T, B), (T*B,)
    teaching = make(kind, **dropout)
    torch.manual_seed(config.seed)  # as train() seeds
    losses = train_minimal(teaching, [(x, y.view(x.shape)) for x, y in chunks], lr=config.lr,
                           weight_decay=weight_decay, clip_grad_norm=config.clip_grad_norm)
    assert losses == history.train_loss
    assert_same_weights(teaching, production)
    assert max(history.grad_norm) > config.clip_grad_norm  # clipping was exercised


# ---------------------------------------------------------------------------------------------
# Evaluation

def test_evaluate_bigram_matches_cross_entropy_on_the_table():
    model = make("bigram")
    result = evaluate(model, VALID, batch_size=4, bptt=7)
    data = batchify(VALID, 4)  # (rows, 4)
    logits = model.logits.weight[data[:-1]] + model.bias  # (rows-1, 4, V)
    total = F.cross_entropy(logits.reshape(-1, V), data[1:].reshape(-1), reduction="sum").item()
    n = (data.size(0) - 1) * 4
    assert isinstance(result, Evaluation)
    assert result.num_tokens == n
    assert result.total_nll == pytest.approx(total, rel=1e-6)
    assert result.perplexity == pytest.approx(math.exp(total / n), rel=1e-6)
    assert result.bits_per_token == pytest.approx(total / n / math.log(2), rel=1e-6)
    assert result.loss == pytest.approx(total / n)
    assert [f.name for f in dataclasses.fields(Evaluation)][:4] == [
        "total_nll", "num_tokens", "perplexity", "bits_per_token"]  # as lmcourse.ngram.Evaluation
    # and per token, column by column: the nll of the token at each stream position
    per_token = F.cross_entropy(logits.reshape(-1, V), data[1:].reshape(-1), reduction="none").view(-1, 4)
    assert np.allclose(result.token_nll, per_token.t().reshape(-1).detach().numpy(), rtol=1e-5)
    assert (VALID[result.token_positions] == data[1:].t().reshape(-1)).all()


def test_evaluate_in_chunks_equals_one_pass_and_restores_train_mode():
    model = make("gru", dropout=0.5)
    model.train()
    chunked = evaluate(model, VALID, batch_size=4, bptt=5)
    assert model.training
    model.eval()
    data = batchify(VALID, 4)
    with torch.no_grad():
        nll, _ = model.nll(data[:-1], data[1:], None)  # the whole stream at once
    assert chunked.total_nll == pytest.approx(nll.double().sum().item(), rel=1e-5)
    assert chunked.perplexity == pytest.approx(math.exp(nll.double().mean().item()), rel=1e-5)
    assert not model.training  # evaluate leaves the mode as it found it
    evaluate(model, VALID, batch_size=4, bptt=5)
    assert not model.training


# ---------------------------------------------------------------------------------------------
# Early stopping

def test_early_stopping_on_rising_validation_loss_restores_the_best_weights():
    up = torch.arange(V).repeat(200)  # 0 1 2 ... 7 0 1 ...: train on "next = this + 1"
    down = torch.arange(V - 1, -1, -1).repeat(40)  # validate on "next = this - 1"
    model = make("bigram")
    cfg = dataclasses.replace(FAST, lr=0.05, eval_every=2, patience=3, epochs=5)
    history = train(model, up, down, cfg)
    assert history.stopped_early
    best = int(np.argmin(history.valid_loss))
    assert len(history.valid_loss) == best + 1 + 3  # three evaluations without a new best
    assert history.best_step == history.eval_steps[best]
    assert history.valid_loss[-1] > history.valid_loss[best]
    assert len(history.train_loss) == history.eval_steps[-1] < 5 * math.ceil((len(up) // 8 - 1) / 10)
    # the model holds the best weights again: it scores exactly the best validation loss
    assert evaluate(model, down, 4, 10).loss == history.best_valid_loss


def test_without_patience_the_final_weights_stay():
    up, down = torch.arange(V).repeat(200), torch.arange(V - 1, -1, -1).repeat(40)
    model = make("bigram")
    history = train(model, up, down, dataclasses.replace(FAST, lr=0.05, eval_every=2, epochs=1))
    assert not history.stopped_early
    assert evaluate(model, down, 4, 10).loss == history.valid_loss[-1] > history.best_valid_loss


# ---------------------------------------------------------------------------------------------
# Resume: the same run as never stopping

@pytest.mark.parametrize("kind, k, patience", [("gru", 7, None), ("lstm", 38, 100), ("bigram", 20, None)])
def test_resume_gives_the_same_result_as_one_run(tmp_path, kind, k, patience):
    """Straight run to N steps vs run -> checkpoint after step k -> fresh objects -> resume to N.

    Step 38 is the end of the first epoch (38 chunks per epoch), 7 and 20 are inside one, so the
    carried recurrent state, dropout's RNG, AdamW's moments and the schedule all matter.
    """
    extra = {} if kind == "bigram" else {"dropout": 0.2}
    cfg = dataclasses.replace(FAST, max_steps=50, eval_every=10, patience=patience, schedule="cosine",
                              warmup_steps=5)
    straight = make(kind, **extra)
    h_straight = train(straight, TRAIN, VALID, cfg)

    saving = make(kind, **extra)
    path = tmp_path / "run-{step}.safetensors"
    h_saving = train(saving, TRAIN, VALID, dataclasses.replace(cfg, checkpoint=path, checkpoint_every=k))
    assert h_saving.train_loss == h_straight.train_loss  # saving changes nothing
    assert_same_weights(saving, straight)
    ckpt = tmp_path / f"run-{k}.safetensors"
    assert ckpt.is_file() and (tmp_path / "run-50.safetensors").is_file()

    torch.manual_seed(123)  # a fresh "process": other RNG state, other initial weights
    resumed = make(kind, seed=99, **extra)
    h_resumed = train(resumed, TRAIN, VALID, cfg, resume_from=ckpt)
    assert h_resumed.train_loss == h_straight.train_loss
    assert h_resumed.lr == h_straight.lr
    assert h_resumed.valid_loss == h_straight.valid_loss
    assert h_resumed.best_step == h_straight.best_step
    assert h_resumed.tokens_seen == h_straight.tokens_seen
    assert_same_weights(resumed, straight)


def test_resume_via_config_after_an_interrupted_run(tmp_path):
    """A run killed mid-epoch continues from its last checkpoint, through config.resume."""
    cfg = dataclasses.replace(FAST, max_steps=30, checkpoint=tmp_path / "ckpt.safetensors", checkpoint_every=8)

    class Crash(TinyRNN):
        calls = 0

        def nll(self, inputs, targets, state):
            if self.training:
                Crash.calls += 1
                if Crash.calls == 21:
                    raise KeyboardInterrupt
            return super().nll(inputs, targets, state)

    straight = make("gru")
    h_straight = train(straight, TRAIN, VALID, dataclasses.replace(cfg, checkpoint=None))
    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        train(Crash(RNNConfig()), TRAIN, VALID, cfg)
    info = load_checkpoint(cfg.checkpoint, make("gru"))
    assert info.step == 16 and info.loop.offset == 160 and info.loop.state.shape == (1, 8, 12)
    resumed = make("gru", seed=5)
    h = train(resumed, TRAIN, VALID, dataclasses.replace(cfg, resume=cfg.checkpoint))
    assert h.train_loss == h_straight.train_loss
    assert_same_weights(resumed, straight)
    # resuming a finished run trains no further
    again = make("gru", seed=6)
    h_again = train(again, TRAIN, VALID, dataclasses.replace(cfg, resume=cfg.checkpoint))
    assert h_again.train_loss == h_straight.train_loss
    assert_same_weights(again, straight)


# ---------------------------------------------------------------------------------------------
# Bad input

@pytest.mark.parametrize("stream, error, match", [
    (torch.tensor([], dtype=torch.long), ValueError, "0 tokens: too few.*needs at least 88"),
    (torch.arange(50), ValueError, "50 tokens: too few.*batch_size=8 and bptt=10.*at least 88"),
    (torch.arange(200).float(), TypeError, "dtype torch.float32.*torch.long"),
    (torch.arange(200).view(2, 100), ValueError, "1-D"),
    ([1, 2, 3], TypeError, "LongTensor"),
    (torch.arange(200) - 5, ValueError, "negative token ids"),
])
def test_bad_training_streams(stream, error, match):
    with pytest.raises(error, match=match):
        train(make("bigram"), stream, VALID, FAST)


def test_too_short_validation_stream():
    with pytest.raises(ValueError, match="valid_stream has 5 tokens.*eval_batch_size=4 needs at least 8"):
        train(make("bigram"), TRAIN, VALID[:5], FAST)
    with pytest.raises(ValueError, match="stream has 3 tokens.*at least 20"):
        evaluate(make("bigram"), VALID[:3])


def test_models_outside_the_protocol():
    with pytest.raises(TypeError, match="has no nll method"):
        train(nn.Linear(2, 2), TRAIN, VALID, FAST)
    with pytest.raises(TypeError, match="nn.Module"):
        evaluate(object(), VALID)

    class WrongShape(Bigram):
        def nll(self, inputs, targets, state):
            return super().nll(inputs, targets, state)[0].flatten(), None

    with pytest.raises(ValueError, match=r"shape \(T, B\) = \(10, 8\), got \(80,\)"):
        train(WrongShape(), TRAIN, VALID, FAST)

    class NoPair(Bigram):
        def nll(self, inputs, targets, state):
            return super().nll(inputs, targets, state)[0]

    with pytest.raises(TypeError, match="pair"):
        train(NoPair(), TRAIN, VALID, FAST)


@pytest.mark.parametrize("kwargs, match", [
    ({"lr": -0.1}, "lr must be"),
    ({"lr": float("nan")}, "lr must be"),
    ({"optimizer": "adam"}, "unknown optimizer 'adam'; choose one of adamw, sgd"),
    ({"schedule": "step"}, "unknown schedule 'step'; choose one of constant, cosine, linear"),
    ({"batch_size": 0}, "batch_size must be an int >= 1"),
    ({"bptt": 2.5}, "bptt must be an int"),
    ({"clip_grad_norm": 0}, "clip_grad_norm"),
    ({"patience": 0}, "patience must be an int >= 1 or None"),
    ({"betas": (0.9, 1.0)}, r"betas\[1\]"),
    ({"momentum": -0.5}, "momentum"),
    ({"warmup_steps": -1}, "warmup_steps"),
    ({"weight_decay": -1e-3}, "weight_decay"),
])
def test_invalid_config_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(FAST, **kwargs)


def test_nan_loss_stops_with_advice():
    class Explodes(Bigram):
        calls = 0

        def nll(self, inputs, targets, state):
            nll, _ = super().nll(inputs, targets, state)
            if self.training:
                Explodes.calls += 1
                if Explodes.calls == 3:
                    nll = nll * float("nan")
            return nll, None

    model = Explodes()
    with pytest.raises(FloatingPointError) as err:
        train(model, TRAIN, VALID, dataclasses.replace(FAST, clip_grad_norm=None))
    message = str(err.value)
    assert "step 3" in message and "Lower the learning rate" in message
    assert "clip_grad_norm=1.0" in message
    assert all(torch.isfinite(p).all() for p in model.parameters())


# ---------------------------------------------------------------------------------------------
# Display

def test_progress_bar_and_plot(capsys):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = train(make("bigram"), TRAIN, VALID, dataclasses.replace(FAST, max_steps=12, eval_every=4,
                                                                          progress=True))
    assert "tok/s" in capsys.readouterr().err
    assert history.eval_steps == [4, 8, 12]
    ax = history.plot()
    assert len(ax.lines) == 3  # train, validation, best step
    assert list(ax.lines[1].get_xdata()) == [4, 8, 12]
    fig, ax2 = plt.subplots()
    assert plot_history(history, ax2) is ax2
    plt.close("all")


# --- train_on_examples: the loop over separate examples ------------------------------------------


class _Mean(nn.Module):
    """One weight fitted to a set of targets: its best value is their mean."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))


def _mean_loss(model: _Mean, targets: torch.Tensor):
    return lambda idx: (((model.weight - targets[idx]) ** 2).mean(), len(idx))


def test_train_on_examples_reads_every_example_once_per_epoch_and_validates_on_schedule():
    model, targets, seen, validated = _Mean(), torch.linspace(-1, 5, 10), [], []

    def batch_loss(idx):
        seen.extend(idx)
        return _mean_loss(model, targets)(idx)

    config = TrainConfig(lr=0.1, batch_size=4, epochs=3, eval_every=4, progress=False)
    history = train_on_examples(model, 10, config, batch_loss,
                                validate=lambda step: validated.append(step) or {})
    assert history.steps == 9 and history.epochs_completed == 3  # ceil(10 / 4) = 3 batches an epoch
    assert [sorted(seen[i * 10:(i + 1) * 10]) for i in range(3)] == [list(range(10))] * 3
    assert validated == [4, 8, 9]  # every eval_every steps and at the end
    assert history.tokens_seen == 30 and len(history.lr) == len(history.grad_norm) == 9


def test_train_on_examples_is_reproducible_and_batches_by_length():
    targets, lengths = torch.arange(40.0), [i % 7 for i in range(40)]
    runs = []
    for _ in range(2):
        model, batches = _Mean(), []
        loss = _mean_loss(model, targets)
        train_on_examples(model, 40, TrainConfig(lr=0.05, batch_size=8, epochs=2, progress=False, seed=3),
                          lambda idx: batches.append(list(idx)) or loss(idx), lengths=lengths)
        runs.append((batches, float(model.weight.detach())))
    assert runs[0] == runs[1]
    assert all(max(lengths[i] for i in b) - min(lengths[i] for i in b) <= 2 for b in runs[0][0])


def test_train_on_examples_stops_with_a_clear_error_before_a_bad_update():
    model = _Mean()
    with pytest.raises(FloatingPointError, match="the loss is nan at step 1; lower the learning rate"):
        train_on_examples(model, 4, TrainConfig(batch_size=2, progress=False),
                          lambda idx: (model.weight.sum() * float("nan"), 1))
    assert float(model.weight.detach()) == 0.0  # nothing was changed
    with pytest.raises(ValueError, match="my loop does not support patience"):
        train_on_examples(model, 4, TrainConfig(patience=2, progress=False), _mean_loss(model, torch.ones(4)),
                          desc="my loop")


def test_train_on_examples_stop_after_takes_the_full_runs_first_steps():
    targets = torch.linspace(-1, 5, 10)
    config = TrainConfig(lr=0.1, batch_size=3, max_steps=12, schedule="cosine", warmup_steps=2, eval_every=4,
                         progress=False)
    full_model, part_model, validated = _Mean(), _Mean(), []
    full = train_on_examples(full_model, 10, config, _mean_loss(full_model, targets))
    part = train_on_examples(part_model, 10, dataclasses.replace(config, stop_after=8),
                             _mean_loss(part_model, targets), validate=lambda step: validated.append(step) or {})
    assert part.steps == 8 and validated == [4, 8]  # validated on schedule and where it stopped
    assert part.train_loss == full.train_loss[:8] and part.lr == full.lr[:8]  # the same schedule: the same steps
    assert part.lr[-1] > full.lr[-1] > 0  # it stopped before the schedule's end
    assert part.epochs_completed == 2  # 4 batches of 10 examples per epoch: two epochs done at step 8
