"""Recurrent networks: the Elman RNN, LSTM and GRU cells written from their equations, and the
recurrent language model of Chapter 3b (Recurrent language models) built on torch's fast layers.

- **Cells from scratch.** :class:`RNNCell`, :class:`LSTMCell` and :class:`GRUCell` compute one
  time step, ``forward(x (B, C), state) -> new state``, with parameters named and laid out as
  PyTorch's (``weight_ih`` ``(gates*H, C)``, ``weight_hh``, ``bias_ih``, ``bias_hh``; gate
  order i, f, g, o for the LSTM and r, z, n for the GRU); :func:`lstm_step` is the LSTM's
  equations alone, the teaching version the chapter shows. :func:`unroll` runs a cell over
  time, and :func:`copy_weights_from` (or ``Cell.from_torch``) loads the weights of an
  ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` layer, so the tests can show they compute the same.
- **The language model.** :class:`RNNModel` (configured by :class:`RNNConfig`): embedding,
  dropout, ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU``, dropout, then a full or adaptive softmax, with
  optional weight tying (Press & Wolf, 2017; Inan et al., 2017), as in PyTorch's
  ``word_language_model`` example. It follows the protocol of :mod:`lmcourse.neural`
  (``nll``, ``log_probs``, ``generate``).

Shape letters: ``T`` time, ``B`` batch, ``C`` a cell's input size, ``E`` embedding size, ``V``
vocabulary, ``L`` layers, and ``H`` the *hidden size* (as in torch's RNN documentation; in the
attention chapters ``H`` counts heads).

Left out: bidirectional and projected (``proj_size``) LSTMs, cells without biases, layer
normalisation, variational/weight dropout (AWD-LSTM), and running the from-scratch cells
inside :class:`RNNModel` (they are 1.3-2x slower than torch's fused layers on a CPU; see
``benchmarks/bench_rnn.py``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Union

import torch
from torch import nn

from lmcourse.neural import NeuralLM, check_output_layer, check_sizes

__all__ = ["RNNCell", "LSTMCell", "GRUCell", "lstm_step", "unroll", "copy_weights_from",
           "RNNConfig", "RNNModel", "CELLS"]

CellState = Union[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]


# ---------------------------------------------------------------------------
# Cells from the equations
# ---------------------------------------------------------------------------

class _Cell(nn.Module):
    """Parameters shared by the three cells: ``gates`` blocks of ``H`` rows each."""

    gates = 1

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.input_size, self.hidden_size = input_size, hidden_size
        G, H, C = self.gates, hidden_size, input_size
        self.weight_ih = nn.Parameter(torch.empty(G * H, C))  # W_i* stacked by gate
        self.weight_hh = nn.Parameter(torch.empty(G * H, H))  # W_h* stacked by gate
        self.bias_ih = nn.Parameter(torch.empty(G * H))
        self.bias_hh = nn.Parameter(torch.empty(G * H))
        bound = 1 / math.sqrt(H)  # torch's init: U(-1/sqrt(H), 1/sqrt(H)) for every parameter
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _check(self, x: Any, h: Any, what: str = "h") -> None:
        C, H = self.input_size, self.hidden_size
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            got = f"dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
            raise TypeError(f"x must be a float tensor of shape (B, {C}), got {got}")
        if x.dim() != 2 or x.shape[1] != C:
            raise ValueError(f"x must have shape (B, {C}) = (batch, input_size), got {tuple(x.shape)}")
        if h is not None:
            if not isinstance(h, torch.Tensor):
                raise TypeError(f"{what} must be a tensor of shape ({x.shape[0]}, {H}), got {type(h).__name__}")
            if tuple(h.shape) != (x.shape[0], H):
                raise ValueError(f"{what} must have shape (B, H) = ({x.shape[0]}, {H}), got {tuple(h.shape)}")

    def _zeros(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(x.shape[0], self.hidden_size)  # (B, H)

    @classmethod
    def from_torch(cls, module: nn.Module, layer: int = 0, **kwargs: Any) -> _Cell:
        """A new cell holding (copies of) the weights of layer `layer` of a torch RNN module."""
        size = lambda name: getattr(module, name)  # noqa: E731
        cell = cls(size("input_size") if layer == 0 else size("hidden_size"), size("hidden_size"), **kwargs)
        like = next(module.parameters())
        cell.to(device=like.device, dtype=like.dtype)  # float64 module -> float64 cell
        copy_weights_from(module, cell, layer)
        return cell

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"


class RNNCell(_Cell):
    """The Elman RNN step: ``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`` (or relu).

    >>> cell = RNNCell(3, 5)
    >>> h = cell(torch.randn(2, 3))  # state None means h = 0
    >>> h.shape
    torch.Size([2, 5])
    """

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh") -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size)
        self.nonlinearity = nonlinearity

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        """One step: input ``x`` (B, C) and state ``h`` (B, H) -> new state (B, H)."""
        self._check(x, h)
        h = self._zeros(x) if h is None else h
        # (B, C) @ (C, H) + (B, H) @ (H, H) -> (B, H)
        pre = x @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T + self.bias_hh
        return torch.tanh(pre) if self.nonlinearity == "tanh" else torch.relu(pre)

    @classmethod
    def from_torch(cls, module: nn.Module, layer: int = 0, **kwargs: Any) -> RNNCell:
        """A new cell with the weights and nonlinearity of layer `layer` of an ``nn.RNN``."""
        kwargs.setdefault("nonlinearity", getattr(module, "nonlinearity", "tanh"))
        return super().from_torch(module, layer, **kwargs)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, nonlinearity={self.nonlinearity!r}"


class LSTMCell(_Cell):
    """The LSTM step (Hochreiter & Schmidhuber, 1997, with the forget gate of Gers et al., 2000)::

        i = sigmoid(W_ii x + b_ii + W_hi h + b_hi)     input gate
        f = sigmoid(W_if x + b_if + W_hf h + b_hf)     forget gate
        g = tanh(W_ig x + b_ig + W_hg h + b_hg)        candidate cell
        o = sigmoid(W_io x + b_io + W_ho h + b_ho)     output gate
        c' = f * c + i * g
        h' = o * tanh(c')

    The state is the pair ``(h, c)``, each (B, H).

    >>> h, c = LSTMCell(3, 5)(torch.randn(2, 3))
    >>> h.shape, c.shape
    (torch.Size([2, 5]), torch.Size([2, 5]))
    """

    gates = 4

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: ``x`` (B, C) and ``(h, c)`` (each (B, H)) -> new ``(h, c)``."""
        if state is not None and not (isinstance(state, tuple) and len(state) == 2):
            raise TypeError(f"an LSTM state is a pair (h, c) of (B, {self.hidden_size}) tensors, "
                            f"got {type(state).__name__}")
        h, c = (None, None) if state is None else state
        self._check(x, h, "h")
        self._check(x, c, "c")
        h = self._zeros(x) if h is None else h
        c = self._zeros(x) if c is None else c
        return lstm_step(x, h, c, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)


def lstm_step(x: torch.Tensor, h: torch.Tensor, c: torch.Tensor, weight_ih: torch.Tensor,
              weight_hh: torch.Tensor, bias_ih: torch.Tensor, bias_hh: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM step, the equations alone (Chapter 3b shows it; :class:`LSTMCell` checks its
    arguments and calls it): ``x`` (B, C), ``h`` and ``c`` (B, H) -> new ``(h, c)``."""
    # (B, C) @ (C, 4H) + (B, H) @ (H, 4H) -> (B, 4H)
    gates = x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh
    i, f, g, o = gates.chunk(4, dim=1)  # (B, 4H) -> 4 x (B, H), in torch's order
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c = f * c + i * g  # forget part of the old cell, write part of the candidate
    return o * torch.tanh(c), c  # show part of the cell


class GRUCell(_Cell):
    """The GRU step (Cho et al., 2014), in torch's form (the reset gate multiplies ``W_hn h + b_hn``)::

        r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)     reset gate
        z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)     update gate
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn))  candidate state
        h' = (1 - z) * n + z * h

    >>> GRUCell(3, 5)(torch.randn(2, 3)).shape
    torch.Size([2, 5])
    """

    gates = 3

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        """One step: input ``x`` (B, C) and state ``h`` (B, H) -> new state (B, H)."""
        self._check(x, h)
        h = self._zeros(x) if h is None else h
        gi = x @ self.weight_ih.T + self.bias_ih  # (B, C) @ (C, 3H) -> (B, 3H)
        gh = h @ self.weight_hh.T + self.bias_hh  # (B, H) @ (H, 3H) -> (B, 3H)
        i_r, i_z, i_n = gi.chunk(3, dim=1)  # (B, 3H) -> 3 x (B, H)
        h_r, h_z, h_n = gh.chunk(3, dim=1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return (1 - z) * n + z * h


def unroll(cell: _Cell, inputs: torch.Tensor, state: CellState | None = None
           ) -> tuple[torch.Tensor, CellState]:
    """Run `cell` over time: inputs (T, B, C) -> outputs (T, B, H) (the ``h`` of every step)
    and the final state (``h``, or ``(h, c)`` for an LSTM).

    >>> out, h = unroll(GRUCell(3, 5), torch.randn(7, 2, 3))
    >>> out.shape, torch.equal(out[-1], h)
    (torch.Size([7, 2, 5]), True)
    """
    if not isinstance(cell, _Cell):
        raise TypeError(f"cell must be an RNNCell, LSTMCell or GRUCell, got {type(cell).__name__}")
    if not isinstance(inputs, torch.Tensor) or inputs.dim() != 3:
        got = f"shape {tuple(inputs.shape)}" if isinstance(inputs, torch.Tensor) else type(inputs).__name__
        raise ValueError(f"inputs must have shape (T, B, {cell.input_size}) (time first), got {got}")
    outputs = []
    for x in inputs:  # x: (B, C)
        state = cell(x, state)
        outputs.append(state[0] if isinstance(state, tuple) else state)  # h: (B, H)
    if not outputs:
        raise ValueError("inputs has no time steps (T = 0)")
    return torch.stack(outputs), state  # T x (B, H) -> (T, B, H)


def copy_weights_from(module: nn.Module, cell: _Cell, layer: int = 0) -> _Cell:
    """Copy layer `layer` of ``nn.RNN``/``nn.LSTM``/``nn.GRU`` (``weight_ih_l0``...) into `cell`
    (``weight_ih``...), in place; returns the cell. The torch cells ``nn.RNNCell`` etc. work
    too (their names have no suffix). Only the forward direction is read.

    >>> lstm = nn.LSTM(3, 5, num_layers=2)
    >>> cell = copy_weights_from(lstm, LSTMCell(5, 5), layer=1)
    >>> torch.equal(cell.weight_hh, lstm.weight_hh_l1)
    True
    """
    if not isinstance(cell, _Cell):
        raise TypeError(f"cell must be an RNNCell, LSTMCell or GRUCell, got {type(cell).__name__}")
    pairs = {RNNCell: (nn.RNN, nn.RNNCell), LSTMCell: (nn.LSTM, nn.LSTMCell), GRUCell: (nn.GRU, nn.GRUCell)}
    layer_type, cell_type = pairs[type(cell)]
    if isinstance(module, layer_type):
        if not 0 <= layer < module.num_layers:
            raise ValueError(f"layer={layer} out of range: the module has {module.num_layers} layer(s)")
        if getattr(module, "proj_size", 0):
            raise ValueError("LSTMs with proj_size > 0 are not supported")
        suffix = f"_l{layer}"
    elif isinstance(module, cell_type):
        suffix = ""
    else:
        raise TypeError(f"a {type(cell).__name__} takes weights from nn.{layer_type.__name__} or "
                        f"nn.{cell_type.__name__}, got {type(module).__name__}")
    if not module.bias:
        raise ValueError("the torch module was built with bias=False; these cells always have biases")
    if isinstance(cell, RNNCell) and module.nonlinearity != cell.nonlinearity:
        raise ValueError(f"nonlinearity differs: the module uses {module.nonlinearity!r}, "
                         f"the cell {cell.nonlinearity!r}")
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            src, dst = getattr(module, name + suffix), getattr(cell, name)
            if src.shape != dst.shape:
                raise ValueError(f"{name}{suffix} has shape {tuple(src.shape)} but the cell's {name} "
                                 f"has {tuple(dst.shape)}: build the cell with input_size="
                                 f"{src.shape[1] if name == 'weight_ih' else cell.input_size}, "
                                 f"hidden_size={src.shape[0] // cell.gates}")
            dst.copy_(src)
    return cell


# ---------------------------------------------------------------------------
# The recurrent language model
# ---------------------------------------------------------------------------

CELLS: dict[str, tuple[type[nn.RNNBase], dict[str, str]]] = {
    "rnn_tanh": (nn.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (nn.LSTM, {}),
    "gru": (nn.GRU, {}),
}


@dataclass(frozen=True)
class RNNConfig:
    """Hyperparameters of :class:`RNNModel`. Defaults follow PyTorch's ``word_language_model``
    example; :meth:`tiny` is a preset that trains in seconds on a CPU. Vary with
    ``dataclasses.replace(cfg, cell="gru")``."""

    vocab_size: int  # V: number of token ids
    cell: str = "lstm"  # "rnn_tanh", "rnn_relu", "lstm" or "gru"
    emb_dim: int = 200  # E: size of a word embedding
    hidden_dim: int = 200  # H: size of the recurrent state of each layer
    num_layers: int = 2  # stacked recurrent layers
    dropout: float = 0.2  # on the embeddings, between layers, and on the last layer's output
    tie_weights: bool = False  # decoder shares the embedding matrix (needs emb_dim == hidden_dim)
    adaptive_cutoffs: tuple[int, ...] | None = None  # e.g. (2000, 6000): adaptive softmax; None: full

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"unknown cell {self.cell!r}; choose one of {', '.join(map(repr, CELLS))}")
        check_sizes(self, ("vocab_size", "emb_dim", "hidden_dim", "num_layers"))
        check_output_layer(self, width="H")
        if self.tie_weights and self.emb_dim != self.hidden_dim:
            raise ValueError(f"tie_weights=True needs emb_dim == hidden_dim (the decoder reuses the "
                             f"V x E embedding matrix as its V x H weight), got emb_dim={self.emb_dim}, "
                             f"hidden_dim={self.hidden_dim}: set hidden_dim={self.emb_dim}, or "
                             f"emb_dim={self.hidden_dim}, or tie_weights=False")

    @classmethod
    def tiny(cls, vocab_size: int, **overrides: Any) -> RNNConfig:
        """A small one-layer LSTM for CPU experiments; `overrides` change any field.

        >>> RNNConfig.tiny(100, cell="gru").hidden_dim
        64
        """
        fields = dict(emb_dim=64, hidden_dim=64, num_layers=1, dropout=0.1)
        return cls(vocab_size=vocab_size, **{**fields, **overrides})


class RNNModel(NeuralLM):
    """Embedding -> dropout -> ``nn.RNN``/``nn.LSTM``/``nn.GRU`` -> dropout -> softmax.

    The state is ``h`` (L, B, H), or ``(h, c)`` for an LSTM; ``None`` starts from zeros.
    Embedding and decoder weights start uniform in [-0.1, 0.1], the decoder bias at 0.

    >>> model = RNNModel(RNNConfig.tiny(vocab_size=10))
    >>> x = torch.tensor([[1, 2], [3, 4], [5, 6]])  # (T=3, B=2)
    >>> nll, state = model.nll(x, torch.tensor([[2, 3], [4, 5], [6, 7]]), None)
    >>> nll.shape, state[0].shape  # state (h, c), each (num_layers, B, H)
    (torch.Size([3, 2]), torch.Size([1, 2, 64]))
    """

    def __init__(self, config: RNNConfig) -> None:
        super().__init__()
        if not isinstance(config, RNNConfig):
            raise TypeError(f"RNNModel needs an RNNConfig, got {type(config).__name__}")
        self.config = c = config
        rnn_type, kwargs = CELLS[c.cell]
        self.embedding = nn.Embedding(c.vocab_size, c.emb_dim)
        self.drop = nn.Dropout(c.dropout)
        self.rnn = rnn_type(c.emb_dim, c.hidden_dim, c.num_layers,
                            dropout=c.dropout if c.num_layers > 1 else 0.0, **kwargs)
        self._build_output(c.hidden_dim, c.vocab_size, c.adaptive_cutoffs)
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        if self.decoder is not None:
            nn.init.uniform_(self.decoder.weight, -0.1, 0.1)
            nn.init.zeros_(self.decoder.bias)
            if c.tie_weights:
                self.decoder.weight = self.embedding.weight  # one Parameter, (V, E) with E == H

    def features(self, inputs: torch.Tensor, state: CellState | None) -> tuple[torch.Tensor, CellState]:
        """Token ids (T, B) -> last-layer outputs after dropout (T, B, H), and the new state."""
        emb = self.drop(self.embedding(inputs))  # (T, B) -> (T, B, E)
        out, state = self.rnn(emb, state)  # (T, B, E) -> (T, B, H)
        return self.drop(out), state

    def check_state(self, state: Any, batch_size: int) -> None:
        """The state must be what ``nll``/``log_probs`` returned for the same batch size."""
        c = self.config
        shape = (c.num_layers, batch_size, c.hidden_dim)
        is_lstm = c.cell == "lstm"
        parts = state if is_lstm and isinstance(state, tuple) and len(state) == 2 else (state,)
        if (is_lstm and len(parts) != 2) or not all(
                isinstance(p, torch.Tensor) and tuple(p.shape) == shape for p in parts):
            what = "a pair (h, c) of tensors" if is_lstm else "a tensor h"
            got = ", ".join(str(tuple(p.shape)) if isinstance(p, torch.Tensor) else type(p).__name__
                            for p in parts)
            raise ValueError(f"state must be None or {what} of shape (num_layers, B, hidden_dim) = "
                             f"{shape}, as returned by the previous call; got {got}")

    def extra_repr(self) -> str:
        return f"{dataclasses.asdict(self.config)}"
