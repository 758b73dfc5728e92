"""Checkers for Chapter 3b (recurrent language models): an Elman RNN run over a sequence, one LSTM
step, and gradient clipping by the global norm.

The oracles are trusted references, not the reader's formula restated: ``torch.nn.RNN`` for the
forward pass, ``torch.nn.LSTMCell`` for the LSTM step (both in float64, given the case's weights) and
``torch.nn.utils.clip_grad_norm_`` for clipping (its ``1e-6`` guard against a zero norm is far below
the checker's tolerance).

>>> [a.round(3) for a in _torch_lstm_step(*_lstm_cases()[0].args)]  # one unit: (h', c')
[array([0.342]), array([0.835])]
"""

from __future__ import annotations

import numpy as np
import torch

from lmcourse.exercises.core import Case, Exercise, register

# --- recurrent.rnn_forward -------------------------------------------------------------------


def _torch_rnn(xs, h0, W_ih, W_hh, b) -> np.ndarray:
    """Hidden states of torch's Elman RNN (tanh) given these weights, in float64: (T, H)."""
    xs, h0, W_ih, W_hh, b = (torch.as_tensor(np.asarray(a, dtype=float)) for a in (xs, h0, W_ih, W_hh, b))
    rnn = torch.nn.RNN(W_ih.shape[1], W_ih.shape[0], nonlinearity="tanh").double()
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(W_ih)
        rnn.weight_hh_l0.copy_(W_hh)
        rnn.bias_ih_l0.copy_(b)
        rnn.bias_hh_l0.zero_()
        out, _ = rnn(xs[:, None, :], h0[None, None, :])  # (T, 1, C) -> (T, 1, H)
    return out[:, 0, :].numpy()


def _zero_start(xs, h0, W_ih, W_hh, b):
    return _torch_rnn(xs, np.zeros_like(np.asarray(h0, dtype=float)), W_ih, W_hh, b)


def _transposed_recurrence(xs, h0, W_ih, W_hh, b):
    return _torch_rnn(xs, h0, W_ih, np.asarray(W_hh, dtype=float).T, b)


def _no_tanh(xs, h0, W_ih, W_hh, b):
    h, out = np.asarray(h0, dtype=float), []
    for x in np.asarray(xs, dtype=float):
        h = np.asarray(W_ih) @ x + np.asarray(W_hh) @ h + np.asarray(b)
        out.append(h)
    return np.stack(out)


def _last_state_only(xs, h0, W_ih, W_hh, b):
    return _torch_rnn(xs, h0, W_ih, W_hh, b)[-1]


def _updates_h0_in_place(xs, h0, W_ih, W_hh, b):
    h, out = h0, []  # h is the caller's array: h[:] = ... overwrites h0
    for x in np.asarray(xs, dtype=float):
        h[:] = np.tanh(np.asarray(W_ih) @ x + np.asarray(W_hh) @ h + np.asarray(b))
        out.append(h.copy())
    return np.stack(out)


def _list_of_states(xs, h0, W_ih, W_hh, b):
    return list(_torch_rnn(xs, h0, W_ih, W_hh, b))


def _rnn_cases() -> list[Case]:
    rng = np.random.default_rng(3)
    cases = [Case((np.array([[1.0], [0.0], [-1.0]]), np.array([0.5]), np.array([[1.0]]), np.array([[0.5]]),
                   np.array([0.0])), label="one unit, three steps (the hand example of exercise 1)")]
    for T, C, H in ((4, 3, 2), (6, 2, 5), (1, 4, 3)):
        cases.append(Case((rng.normal(size=(T, C)), rng.normal(size=H), rng.normal(size=(H, C)),
                           rng.normal(size=(H, H)), rng.normal(size=H)), label=f"T={T}, C={C}, H={H}, random"))
    return cases


register(Exercise(
    name="recurrent.rnn_forward",
    cases=_rnn_cases(),
    oracle=_torch_rnn,
    nudge="Start from h0, apply h = tanh(W_ih x_t + W_hh h + b) at every step, and stack all T states into one array.",
    hint="Start from h = h0 (a copy: do not change the input). For each x_t in order: h = tanh(W_ih @ x_t + W_hh @ h + b), and keep every h. "
         "Return the kept states stacked into an array of shape (T, H): one row per time step.",
    wrong_answers={"starts from zeros instead of h0": _zero_start, "uses W_hh transposed": _transposed_recurrence,
                   "forgets the tanh": _no_tanh, "returns only the last state": _last_state_only,
                   "changes its input (updates h0 in place)": _updates_h0_in_place,
                   "returns a list of states, not one (T, H) array": _list_of_states},
))

# --- recurrent.clip_by_global_norm ------------------------------------------------------------


def _torch_clip(grads: list, max_norm: float) -> tuple[list[np.ndarray], float]:
    params = [torch.nn.Parameter(torch.zeros(np.shape(g), dtype=torch.float64)) for g in grads]
    for p, g in zip(params, grads):
        p.grad = torch.as_tensor(np.asarray(g, dtype=float)).clone()
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    return [p.grad.numpy() for p in params], float(norm)


def _per_tensor(grads, max_norm):
    out = []
    for g in grads:
        g = np.asarray(g, dtype=float)
        n = np.linalg.norm(g)
        out.append(g * min(1.0, max_norm / n) if n > 0 else g)
    return out, float(np.sqrt(sum(np.sum(np.asarray(g, dtype=float) ** 2) for g in grads)))


def _always_rescale(grads, max_norm):
    norm = float(np.sqrt(sum(np.sum(np.asarray(g, dtype=float) ** 2) for g in grads)))
    return [np.asarray(g, dtype=float) * max_norm / norm for g in grads], norm


def _elementwise(grads, max_norm):
    norm = float(np.sqrt(sum(np.sum(np.asarray(g, dtype=float) ** 2) for g in grads)))
    return [np.clip(np.asarray(g, dtype=float), -max_norm, max_norm) for g in grads], norm


def _clips_in_place(grads, max_norm):
    norm = float(np.sqrt(sum(np.sum(np.square(g)) for g in grads)))
    if norm > max_norm:
        for g in grads:
            g *= max_norm / norm  # changes the caller's arrays, as torch's clip_grad_norm_ does
    return grads, norm


def _norm_as_array(grads, max_norm):
    clipped, norm = _torch_clip(grads, max_norm)
    return clipped, np.array(norm)


def _divides_by_zero_norm(grads, max_norm):
    norm = float(np.sqrt(sum(np.sum(np.square(g)) for g in grads)))
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = min(1.0, max_norm / norm) if norm != 0 else np.float64(max_norm) / np.float64(norm)
    return [np.asarray(g, dtype=float) * scale for g in grads], norm


def _clip_cases() -> list[Case]:
    rng = np.random.default_rng(5)
    return [
        Case(([np.array([3.0, 0.0]), np.array([[0.0, 4.0]])], 1.0), label="norm 5 clipped to 1"),
        Case(([np.array([0.3, 0.4])], 1.0), label="norm 0.5, below the limit: unchanged"),
        Case(([rng.normal(size=(3, 4)) * 10, rng.normal(size=5)], 2.5), label="two random tensors, large norm"),
        Case(([np.array([0.1, -0.2]), np.array([5.0]), np.array([[0.0, 0.0]])], 3.0),
             label="one large entry among small ones"),
        Case(([np.zeros(3), np.zeros((2, 2))], 1.0), label="all gradients zero (norm 0): nothing to scale"),
        Case(([np.array([3.0, 4.0])], 5.0), label="norm exactly max_norm: unchanged"),
    ]


register(Exercise(
    name="recurrent.clip_by_global_norm",
    cases=_clip_cases(),
    oracle=_torch_clip,
    nudge="One norm over ALL the arrays together; scale every array by max_norm / norm only if the norm is larger.",
    hint="Compute ONE norm over all gradients together, sqrt(sum of every squared entry of every array). "
         "If it exceeds max_norm, multiply every array by max_norm / norm; otherwise leave them as they are. "
         "Return new arrays, not the inputs scaled in place, and the norm as a float: (list of arrays, norm).",
    wrong_answers={"clips each tensor on its own": _per_tensor, "rescales even below the limit": _always_rescale,
                   "clips each entry": _elementwise,
                   "changes its input (scales the caller's arrays in place)": _clips_in_place,
                   "returns the norm as a NumPy array": _norm_as_array,
                   "divides by a zero norm": _divides_by_zero_norm},
    rel_tol=1e-5,
))

# --- recurrent.lstm_step ---------------------------------------------------------------------


def _torch_lstm_step(x, h, c, W_ih, W_hh, b) -> tuple[np.ndarray, np.ndarray]:
    """One step of torch.nn.LSTMCell (gates in torch's order i, f, g, o) in float64, given the weights:
    x (C,) or (B, C), h and c (H,) or (B, H) -> (h', c')."""
    x, h, c, W_ih, W_hh, b = (torch.as_tensor(np.asarray(a, dtype=float)) for a in (x, h, c, W_ih, W_hh, b))
    cell = torch.nn.LSTMCell(W_ih.shape[1], W_hh.shape[1]).double()
    with torch.no_grad():
        cell.weight_ih.copy_(W_ih)
        cell.weight_hh.copy_(W_hh)
        cell.bias_ih.copy_(b)
        cell.bias_hh.zero_()
        h_new, c_new = cell(x, (h, c))
    return h_new.numpy(), c_new.numpy()


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def _lstm_wrong(squash=(_sigmoid, _sigmoid, np.tanh, _sigmoid), order="ifgo", forget_candidate=False,
                out_of_cell=np.tanh, old_cell_out=False, recurrent_transposed=False):
    """An LSTM step with one typical slip, chosen by the arguments (the defaults give the right step)."""
    def step(x, h, c, W_ih, W_hh, b):
        x, h, c, W_ih, W_hh, b = (np.asarray(a, dtype=float) for a in (x, h, c, W_ih, W_hh, b))
        U = np.concatenate([block.T for block in np.split(W_hh, 4)]) if recurrent_transposed else W_hh
        blocks = dict(zip(order, np.split(x @ W_ih.T + h @ U.T + b, 4, axis=-1)))  # 4 x (..., H)
        i, f, g, o = (fn(blocks[name]) for fn, name in zip(squash, "ifgo"))
        c_new = f * g + i * c if forget_candidate else f * c + i * g
        return o * out_of_cell(c if old_cell_out else c_new), c_new
    return step


def _lstm_h_only(x, h, c, W_ih, W_hh, b):
    return _torch_lstm_step(x, h, c, W_ih, W_hh, b)[0]


def _lstm_c_then_h(x, h, c, W_ih, W_hh, b):
    return _torch_lstm_step(x, h, c, W_ih, W_hh, b)[::-1]


def _lstm_list(x, h, c, W_ih, W_hh, b):
    return list(_torch_lstm_step(x, h, c, W_ih, W_hh, b))


def _lstm_updates_c_in_place(x, h, c, W_ih, W_hh, b):
    h_new, c_new = _torch_lstm_step(x, h, c, W_ih, W_hh, b)
    c[...] = c_new  # overwrites the caller's cell state
    return h_new, c


def _lstm_cases() -> list[Case]:
    rng = np.random.default_rng(7)

    def random(B: int | None, C: int, H: int, scale: float = 1.0) -> tuple:
        lead = () if B is None else (B,)
        return (rng.normal(size=lead + (C,)), rng.normal(size=lead + (H,)), rng.normal(size=lead + (H,)) * 2,
                rng.normal(size=(4 * H, C)) * scale, rng.normal(size=(4 * H, H)) * scale, rng.normal(size=4 * H))

    one = (np.array([1.0]), np.array([0.5]), np.array([0.5]), np.array([[1.0], [2.0], [1.0], [-1.0]]),
           np.array([[0.5], [0.0], [-1.0], [1.0]]), np.array([0.0, 1.0, 0.0, 0.5]))
    return [
        Case(one, label="one unit (H=1): x=1, h=0.5, c=0.5; the four rows of W_ih are the i, f, g, o blocks"),
        Case(random(None, 3, 2), label="unbatched: x (C=3,), h and c (H=2,)"),
        Case(random(None, 2, 4), label="unbatched: x (C=2,), h and c (H=4,)"),
        Case(random(3, 4, 3), label="a batch: x (B=3, C=4), h and c (B=3, H=3)"),
        Case(random(2, 5, 5), label="a batch with C = H = 5"),
        Case(random(4, 3, 2, scale=3.0), label="large weights: the gates saturate near 0 and 1"),
    ]


register(Exercise(
    name="recurrent.lstm_step",
    cases=_lstm_cases(),
    oracle=_torch_lstm_step,
    nudge="Check the gate order (i, f, g, o), which blocks get the sigmoid and which the tanh, and which cell "
          "each gate multiplies.",
    hint="Compute all four pre-activations at once from x, h and b: an array whose last axis has 4H entries. "
         "Multiply the rows of x and h by the TRANSPOSED weight matrices, so that one vector and a batch of rows "
         "work alike. Cut that last axis into four consecutive blocks of H, in PyTorch's order: input gate i, "
         "forget gate f, candidate g, output gate o. "
         "The three gates go through the sigmoid 1 / (1 + exp(-z)), values in (0, 1); only the candidate goes "
         "through tanh. The forget gate multiplies the OLD cell, the input gate the candidate, and the new hidden "
         "state is the output gate times tanh of the NEW cell. Return both, as a tuple (h_new, c_new), without "
         "changing h or c.",
    wrong_answers={"tanh and sigmoid swapped": _lstm_wrong(squash=(np.tanh, np.tanh, _sigmoid, np.tanh)),
                   "the forget gate multiplies the candidate": _lstm_wrong(forget_candidate=True),
                   "gates in the order i, f, o, g": _lstm_wrong(order="ifog"),
                   "h' = o * c' (no tanh of the cell)": _lstm_wrong(out_of_cell=lambda c: c),
                   "h' from the old cell": _lstm_wrong(old_cell_out=True),
                   "each recurrent block transposed": _lstm_wrong(recurrent_transposed=True),
                   "returns h' only": _lstm_h_only, "returns (c', h')": _lstm_c_then_h,
                   "returns a list, not a tuple": _lstm_list,
                   "changes its input (writes the new cell into c)": _lstm_updates_c_in_place},
    rel_tol=1e-6,
    abs_tol=1e-9,
))
