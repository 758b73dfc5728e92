"""The Chapter 10 checkers' oracles against hand-worked values and references written here (not the
package's): each checker passes the reference, reports a stub as unwritten and fails every
registered wrong answer."""

import math

import pytest
import torch

import lmcourse.exercises.scaling  # noqa: F401  (registers the chapter's checkers)
from lmcourse.exercises import REGISTRY
from lmcourse.exercises.progress import _chapter_number
from tests.exercise_contract import check_exercise_contract

NAMES = ["scaling.forward_flops_per_token", "scaling.ring_all_reduce", "scaling.int8_round_trip",
         "scaling.distillation_loss"]


def _oracle(name):
    return REGISTRY[name].oracle


# --- references written here, independent of the package ----------------------------------------


def _forward_flops_per_token(vocab_size, emb_dim, num_layers, seq_len):
    per_block = 2 * (3 * emb_dim * emb_dim + emb_dim * emb_dim + 2 * 4 * emb_dim * emb_dim)  # W_QKV, W_O, MLP
    attention = 2 * seq_len * emb_dim + 2 * seq_len * emb_dim  # scores and the weighted sum
    return num_layers * (per_block + attention) + 2 * vocab_size * emb_dim


def _ring_all_reduce(tensors):
    n = len(tensors)
    flat = [t.reshape(-1).clone() for t in tensors]
    size = flat[0].numel() // n  # the cases divide evenly
    chunk = lambda device, c: flat[device][c * size:(c + 1) * size]  # noqa: E731
    for phase in ("reduce", "gather"):
        for s in range(n - 1):
            sends = [(i, (i - s) % n if phase == "reduce" else (i + 1 - s) % n) for i in range(n)]
            messages = [chunk(i, c).clone() for i, c in sends]
            for (i, c), m in zip(sends, messages):
                target = chunk((i + 1) % n, c)
                target.copy_(target + m if phase == "reduce" else m)
    return [f.reshape(t.shape) for f, t in zip(flat, tensors)], 2 * (n - 1) * size


def _int8_round_trip(weights):
    rows = []
    for row in weights.float():
        scale = row.abs().max() / 127 if row.abs().max() > 0 else torch.tensor(1.0)
        rows.append(torch.clamp(torch.round(row / scale), -127, 127) * scale)
    return torch.stack(rows)


def _distillation_loss(student, teacher, targets, temperature=2.0, alpha=0.5):
    out = []
    for s, t, y in zip(student, teacher, targets):
        p_t = torch.softmax(t / temperature, -1)
        kl = (p_t * (torch.log(p_t) - torch.log_softmax(s / temperature, -1))).sum()
        ce = -torch.log_softmax(s, -1)[y]
        out.append(alpha * temperature ** 2 * kl + (1 - alpha) * ce)
    return torch.stack(out)


REFERENCES = {"scaling.forward_flops_per_token": _forward_flops_per_token, "scaling.ring_all_reduce": _ring_all_reduce,
              "scaling.int8_round_trip": _int8_round_trip, "scaling.distillation_loss": _distillation_loss}


def test_flops_by_hand():
    # V 100, C 32, 2 blocks, 10 tokens: 2 (2 * 12 * 1024 + 3200) + 2 * 4 * 10 * 32
    assert _oracle("scaling.forward_flops_per_token")(100, 32, 2, 10) == 2 * (24576 + 3200) + 2560 == 58112


def test_ring_by_hand():
    sums, sent = _oracle("scaling.ring_all_reduce")([torch.tensor([1.0, 2, 3]), torch.tensor([10.0, 20, 30]),
                                                     torch.tensor([100.0, 200, 300])])
    assert all(s.tolist() == [111.0, 222.0, 333.0] for s in sums) and sent == 4  # 2 (n - 1) chunks of 1


def test_int8_by_hand():
    got = _oracle("scaling.int8_round_trip")(torch.tensor([[0.5, -1.0, 0.25]]))  # scale 1/127
    assert got[0].tolist() == pytest.approx([64 / 127, -1.0, 32 / 127])


def test_distillation_by_hand():
    s, t = torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, math.log(3)]])  # teacher: 1/4, 3/4 at T = 1
    kl = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    got = _oracle("scaling.distillation_loss")(s, t, torch.tensor([0]), temperature=1.0, alpha=0.5)
    assert got.item() == pytest.approx(0.5 * kl + 0.5 * math.log(2))


def test_chapter_label():
    assert _chapter_number("scaling") == "10"


@pytest.mark.parametrize("name", NAMES)
def test_reference_passes_stub_unwritten_and_every_wrong_answer_fails(name):
    check_exercise_contract(name, REFERENCES[name])
