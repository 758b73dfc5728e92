"""lmcourse.scaling.distill: Hinton et al.'s loss against cross-entropy (alpha = 0), torch's kl_div
(the oracle for the KL term), a hand-worked 3-token case and the T^2 gradient scale; the
Distillation wrapper trained by the book's unchanged lmcourse.train.train with a tiny GPT teacher
and student, the teacher untouched to the bit."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from lmcourse.gpt import GPT, GPTConfig
from lmcourse.rnn import RNNConfig, RNNModel
from lmcourse.scaling.distill import Distillation, distillation_loss
from lmcourse.train import TrainConfig, evaluate, train

V = 12


def _logits(*shape: int, seed: int = 0) -> torch.Tensor:
    return 2 * torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def _targets(*shape: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, V, shape, generator=torch.Generator().manual_seed(seed))


def _gpt(seed: int, **overrides) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig.tiny(vocab_size=V, **overrides))


# ---------------------------------------------------------------------------------------------
# The loss

@pytest.mark.parametrize("shape", [(5, V), (4, 3, V), (2, 2, 2, V)])
def test_alpha_zero_is_cross_entropy(shape):
    s, t, y = _logits(*shape), _logits(*shape, seed=2), _targets(*shape[:-1])
    loss = distillation_loss(s, t, y, temperature=3.0, alpha=0.0)
    assert loss.shape == shape[:-1]
    expected = F.cross_entropy(s.reshape(-1, V), y.reshape(-1), reduction="none").view(shape[:-1])
    torch.testing.assert_close(loss, expected)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0, 8.0])
def test_kl_term_equals_torch_kl_div_times_t_squared(temperature):
    s, t, y = _logits(6, 3, V), _logits(6, 3, V, seed=2), _targets(6, 3)
    loss = distillation_loss(s, t, y, temperature, alpha=1.0)
    T = temperature
    kl = F.kl_div(F.log_softmax(s / T, -1), F.log_softmax(t / T, -1), reduction="none", log_target=True)
    torch.testing.assert_close(loss, T**2 * kl.sum(-1))
    mixed = distillation_loss(s, t, y, temperature, alpha=0.3)
    torch.testing.assert_close(mixed, 0.3 * loss + 0.7 * distillation_loss(s, t, y, temperature, alpha=0.0))


def test_kl_term_vanishes_when_student_equals_teacher():
    s = _logits(7, 2, V)
    assert distillation_loss(s, s.clone(), _targets(7, 2), 2.0, alpha=1.0).abs().max() < 1e-6


def test_hand_worked_three_token_vocabulary():
    # teacher (0.5, 0.25, 0.25), student (0.25, 0.5, 0.25), as logits ln p; target token 0.
    t, s = torch.tensor([0.5, 0.25, 0.25]).log(), torch.tensor([0.25, 0.5, 0.25]).log()
    y = torch.tensor([0])
    # T = 1: KL = 0.5 ln 2 + 0.25 ln 0.5 + 0 = 0.25 ln 2; CE = -ln 0.25 = 2 ln 2.
    loss = distillation_loss(s[None], t[None], y, temperature=1.0, alpha=0.5)
    torch.testing.assert_close(loss, torch.tensor([0.5 * 0.25 * math.log(2) + 0.5 * 2 * math.log(2)]))
    # Logits doubled and T = 2: the softened distributions, hence the KL, are the same, times T^2 = 4;
    # CE reads the raw logits 2 ln p: softmax is p^2 normalised = (1/6, 2/3, 1/6), so CE = ln 6.
    loss = distillation_loss(2 * s[None], 2 * t[None], y, temperature=2.0, alpha=0.5)
    torch.testing.assert_close(loss, torch.tensor([0.5 * 4 * 0.25 * math.log(2) + 0.5 * math.log(6)]))


def test_t_squared_keeps_the_gradient_scale_across_temperatures():
    s, t = _logits(5, V), _logits(5, V, seed=2)
    s, t = s - s.mean(-1, keepdim=True), t - t.mean(-1, keepdim=True)  # zero-mean logits
    sizes = {}
    for T in (2.0, 5.0, 20.0, 100.0):
        student = s.clone().requires_grad_()
        distillation_loss(student, t, _targets(5), T, alpha=1.0).sum().backward()
        sizes[T] = float(student.grad.abs().mean())
        if T == 100.0:  # Hinton et al.'s high-temperature limit: (s - t) / V
            torch.testing.assert_close(student.grad, (s - t) / V, atol=0.01, rtol=0)
    assert max(sizes.values()) / min(sizes.values()) < 1.3  # without T^2: a factor 2,500


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(teacher=_logits(3, V + 1)), ValueError, r"same shape \(\.\.\., V\), got \(3, 12\) and \(3, 13\)"),
    (dict(targets=_targets(4)), ValueError, r"targets must have shape \(3,\)"),
    (dict(targets=torch.zeros(3)), TypeError, "targets must be a LongTensor"),
    (dict(student=_logits(3, V).long()), TypeError, "student_logits must be a float tensor of logits"),
    (dict(temperature=0.0), ValueError, r"temperature must be a finite number in \(0.0, inf\)"),
    (dict(alpha=1.5), ValueError, r"alpha must be a finite number in \[0.0, 1.0\]"),
])
def test_loss_refuses_bad_arguments(kwargs, error, match):
    args = dict(student=_logits(3, V), teacher=_logits(3, V), targets=_targets(3), temperature=2.0, alpha=0.5)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        distillation_loss(args["student"], args["teacher"], args["targets"], args["temperature"], args["alpha"])


# ---------------------------------------------------------------------------------------------
# The wrapper

def test_wrapper_holds_the_student_only():
    student, teacher = _gpt(0, emb_dim=16), _gpt(1)
    model = Distillation(student, teacher)
    assert model.teacher is teacher and model.config is student.config
    assert {id(p) for p in model.parameters()} == {id(p) for p in student.parameters()}
    assert set(model.state_dict()) == {f"student.{k}" for k in student.state_dict()}
    assert "teacher" not in dict(model.named_modules())


def test_per_position_loss_and_state():
    student, teacher = _gpt(0, emb_dim=16), _gpt(1)
    inputs, targets = _targets(8, 3, seed=3), _targets(8, 3, seed=4)
    with torch.no_grad():
        alone, _ = student.nll(inputs, targets)
        model = Distillation(student, teacher, temperature=2.0, alpha=0.0).train()
        torch.testing.assert_close(model.nll(inputs, targets)[0], alone)  # alpha = 0: the student's nll
        model = Distillation(student, teacher, temperature=2.0, alpha=0.7).train()
        loss, state = model.nll(inputs, targets.flatten())  # (T*B,), as get_batch gives it
        expected = distillation_loss(student.log_probs(inputs)[0], teacher.log_probs(inputs)[0], targets, 2.0, 0.7)
        torch.testing.assert_close(loss, expected)
        assert torch.equal(state[0], inputs) and torch.equal(state[1], inputs)  # GPT: the tokens read
        model.eval()  # validation scores the student alone
        torch.testing.assert_close(model.nll(inputs, targets)[0], alone)


def test_a_recurrent_student_carries_its_own_state_beside_a_gpt_teachers():
    torch.manual_seed(0)
    student = RNNModel(RNNConfig(vocab_size=V, emb_dim=8, hidden_dim=16, dropout=0.0))
    model = Distillation(student, _gpt(1)).train()
    inputs, targets = _targets(6, 2, seed=3), _targets(6, 2, seed=4)
    loss, state = model.nll(inputs, targets)
    loss, _ = model.nll(inputs, targets, state)  # each model carries its own state
    assert loss.shape == (6, 2)


def test_training_through_the_books_loop_leaves_the_teacher_untouched():
    stream = torch.arange(V).repeat(60)  # 0 1 ... 11 0 1 ...
    teacher = _gpt(1)
    train(teacher, stream, stream[:240], TrainConfig(lr=3e-3, batch_size=4, bptt=16, max_steps=30, progress=False))
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student = _gpt(0, emb_dim=16)
    model = Distillation(student, teacher, temperature=2.0, alpha=0.5)
    config = TrainConfig(lr=3e-3, weight_decay=0.5, batch_size=4, bptt=16, max_steps=30, eval_every=10,
                         progress=False)
    history = train(model, stream, stream[:240], config)
    assert sum(history.train_loss[-5:]) < 0.8 * sum(history.train_loss[:5])
    for k, v in teacher.state_dict().items():  # weight decay 0.5 would have moved any of them
        assert torch.equal(v, before[k]), k
    assert teacher.training  # still in the mode train() left it in: only ever read in eval mode inside
    assert history.valid_loss[-1] == pytest.approx(evaluate(student, stream[:240], 10, 16).loss)


def test_wrapper_refuses_mismatched_models():
    with pytest.raises(ValueError, match="share one vocabulary: config.vocab_size is 12 and 13"):
        Distillation(_gpt(0), GPT(GPTConfig.tiny(vocab_size=V + 1)))
    with pytest.raises(TypeError, match="teacher must be a language model with log_probs"):
        Distillation(_gpt(0), torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="alpha must be"):
        Distillation(_gpt(0), _gpt(1), alpha=-0.1)
