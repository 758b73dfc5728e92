"""The Chapter 3b LSTM-step checker: its oracle (torch.nn.LSTMCell) agrees with the book's
lstm_step and with the hand computation, and the checker passes a reference written as the
chapter's cell holds it, fails its stub and fails every registered wrong answer."""

from pathlib import Path

import numpy as np
import torch

from lmcourse.exercises import REGISTRY, evaluate, load_all
from lmcourse.exercises.notebooks import SolutionCell
from lmcourse.exercises.selftest import selftest_solution
from lmcourse.rnn import lstm_step

load_all()

LSTM = SolutionCell(Path(__file__), 0, '''
import numpy as np

def lstm_step(x, h, c, W_ih, W_hh, b):
    """One LSTM step, gates in PyTorch's order i, f, g, o: (h_new, c_new)."""
    # BEGIN SOLUTION
    z_i, z_f, z_g, z_o = np.split(x @ W_ih.T + h @ W_hh.T + b, 4, axis=-1)  # (..., 4H) -> 4 x (..., H)
    i, f, o = (1 / (1 + np.exp(-z)) for z in (z_i, z_f, z_o))
    c_new = f * c + i * np.tanh(z_g)
    return o * np.tanh(c_new), c_new
    # END SOLUTION
''', "recurrent.lstm_step", "lstm_step")


def test_lstm_checker_passes_the_reference_and_fails_the_stub_and_every_wrong_answer():
    result = selftest_solution(LSTM)
    assert result.ok, "\n".join(result.problems)
    assert result.wrong_answers_caught == result.wrong_answers >= 8


def test_lstm_oracle_equals_the_book_lstm_step():
    exercise = REGISTRY["recurrent.lstm_step"]
    assert {np.ndim(case.args[0]) for case in exercise.cases} == {1, 2}  # one vector and batches
    for case in exercise.cases:
        x, h, c, W_ih, W_hh, b = (torch.as_tensor(a) for a in case.args)
        if x.ndim == 1:
            x, h, c = x[None], h[None], c[None]
        h_new, c_new = lstm_step(x, h, c, W_ih, W_hh, b, torch.zeros_like(b))
        want_h, want_c = exercise.expected(case)
        np.testing.assert_allclose(want_h, h_new.numpy().reshape(want_h.shape), atol=1e-12)
        np.testing.assert_allclose(want_c, c_new.numpy().reshape(want_c.shape), atol=1e-12)


def test_lstm_hand_case():
    exercise = REGISTRY["recurrent.lstm_step"]
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    c = sigmoid(3.0) * 0.5 + sigmoid(1.25) * np.tanh(0.5)  # z = (1.25, 3, 0.5, 0)
    h, c_new = exercise.expected(exercise.cases[0])
    np.testing.assert_allclose(c_new, [c])
    np.testing.assert_allclose(h, [sigmoid(0.0) * np.tanh(c)])


def test_a_changed_cell_is_reported():
    wrong = REGISTRY["recurrent.lstm_step"].wrong_answers["changes its input (writes the new cell into c)"]
    assert "your function changed its input `c`" in str(evaluate("recurrent.lstm_step", wrong))
