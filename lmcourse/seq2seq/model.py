"""The GRU encoder-decoder of Chapter 4's opening experiment, with or without additive attention
(see :mod:`lmcourse.seq2seq`). Batch first: ``B`` batch, ``S`` source length, ``T`` target length,
``V`` vocabulary, ``E`` embedding size, ``H`` GRU size, ``K`` encoder state size, ``A`` attention size."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lmcourse._checks import check_positive_int
from lmcourse.attention import AdditiveAttention
from lmcourse.seq2seq.task import BOS_ID, EOS_ID, PAD_ID

__all__ = ["Seq2SeqConfig", "Seq2Seq"]


@dataclass
class Seq2SeqConfig:
    """Sizes of a :class:`Seq2Seq`. The defaults are the chapter's (about 0.1M parameters).

    >>> Seq2SeqConfig(attention=False).hidden_dim
    64
    """

    vocab_size: int = 29  # V: <pad>, <s>, </s> and a-z (len(CharVocab()))
    emb_dim: int = 32  # E: character embeddings, source and target each their own
    hidden_dim: int = 64  # H: the decoder's GRU, and the encoder's GRU in each direction
    attention: bool = True  # additive attention over the encoder states; False = one fixed vector
    attention_dim: int = 32  # A: hidden size of the additive scorer v^T tanh(W s + U h)
    bidirectional: bool = True  # encoder reads both ways (Bahdanau et al.); K = 2H, else K = H

    def __post_init__(self) -> None:
        for name in ("vocab_size", "emb_dim", "hidden_dim", "attention_dim"):
            check_positive_int(name, getattr(self, name))
        if self.vocab_size < 4:
            raise ValueError(f"vocab_size={self.vocab_size} leaves no room for characters after "
                             f"<pad>, <s>, </s>; use len(CharVocab(alphabet))")
        for name in ("attention", "bidirectional"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")


def _check_ids(name: str, x: Any, vocab_size: int) -> None:
    if not isinstance(x, torch.Tensor) or x.dtype != torch.long:
        got = f"dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"{name} must be a LongTensor of token ids (B, length), got {got}; use .long()")
    if x.dim() != 2 or x.shape[1] == 0:
        raise ValueError(f"{name} must have shape (B, length) with length >= 1, got {tuple(x.shape)}")
    if x.numel() and (int(x.min()) < 0 or int(x.max()) >= vocab_size):
        raise ValueError(f"{name} has ids outside [0, {vocab_size}): min {int(x.min())}, max {int(x.max())}")


class Seq2Seq(nn.Module):
    """GRU encoder-decoder with or without additive attention (see the module docstring).

    >>> from lmcourse.seq2seq import make_batch
    >>> _ = torch.manual_seed(0)
    >>> model = Seq2Seq(Seq2SeqConfig(emb_dim=4, hidden_dim=8, attention_dim=8))
    >>> b = make_batch([("abc", "cba"), ("de", "ed")])
    >>> model(b.src, b.src_lengths, b.tgt_in).shape  # (B, T, V)
    torch.Size([2, 4, 29])
    >>> tokens, weights = model.greedy_decode(b.src, b.src_lengths, max_len=5)
    >>> tokens.shape, weights.shape  # (B, T_out, S): a row of weights per output character
    (torch.Size([2, 5]), torch.Size([2, 5, 3]))
    """

    def __init__(self, config: Seq2SeqConfig | None = None) -> None:
        super().__init__()
        config = config if config is not None else Seq2SeqConfig()
        if not isinstance(config, Seq2SeqConfig):
            raise TypeError(f"config must be a Seq2SeqConfig, got {type(config).__name__}")
        self.config = config
        V, E, H, A = config.vocab_size, config.emb_dim, config.hidden_dim, config.attention_dim
        K = 2 * H if config.bidirectional else H
        self.src_embedding = nn.Embedding(V, E, padding_idx=PAD_ID)
        self.tgt_embedding = nn.Embedding(V, E, padding_idx=PAD_ID)
        self.encoder = nn.GRU(E, H, batch_first=True, bidirectional=config.bidirectional)
        self.init_state = nn.Linear(K, H)  # s_0 = tanh(W_s c)
        self.attention = AdditiveAttention(H, K, A) if config.attention else None
        self.decoder = nn.GRUCell(E + K, H)  # reads [e(y_{i-1}); c_i]
        self.output = nn.Linear(H + K + E, V)  # logits from [s_i; c_i; e(y_{i-1})]

    def _check_src(self, src: Any, src_lengths: Any) -> None:
        _check_ids("src", src, self.config.vocab_size)
        if not isinstance(src_lengths, torch.Tensor) or src_lengths.dtype != torch.long:
            got = (f"dtype {src_lengths.dtype}" if isinstance(src_lengths, torch.Tensor)
                   else type(src_lengths).__name__)
            raise TypeError(f"src_lengths must be a LongTensor of shape (B,), got {got}")
        if tuple(src_lengths.shape) != (src.shape[0],):
            raise ValueError(f"src_lengths must have shape (B,) = ({src.shape[0]},), one length per source, "
                             f"got {tuple(src_lengths.shape)}")
        if int(src_lengths.min()) < 1 or int(src_lengths.max()) > src.shape[1]:
            raise ValueError(f"src_lengths must lie in [1, S={src.shape[1]}], "
                             f"got min {int(src_lengths.min())}, "
                             f"max {int(src_lengths.max())}")

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder states ``(B, S, K)`` (zeros on padding) and the summary ``c`` ``(B, K)``."""
        self._check_src(src, src_lengths)
        B, S = src.shape
        embedded = self.src_embedding(src)  # (B, S) -> (B, S, E)
        packed = pack_padded_sequence(embedded, src_lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, h_n = self.encoder(packed)  # h_n (D, B, H): each direction's last state
        states, _ = pad_packed_sequence(out, batch_first=True, total_length=S)  # (B, S, K)
        summary = h_n.transpose(0, 1).reshape(B, -1)  # (D, B, H) -> (B, D, H) -> (B, K) = [->h_S; <-h_1]
        return states, summary

    def _step(self, y_prev: torch.Tensor, s: torch.Tensor, states: torch.Tensor, mask: torch.Tensor,
              summary: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """One decoder step: previous ids (B,) and state (B, H) -> logits (B, V), state, weights (B, S).
        `mask` (B, S) is boolean, True where the decoder may attend (a real source character)."""
        e = self.tgt_embedding(y_prev)  # (B,) -> (B, E)
        if self.attention is not None:
            context, weights = self.attention(s, states, mask)  # query s_{i-1}: (B, K), (B, S)
        else:
            context, weights = summary, None  # the bottleneck: the same c at every step
        s = self.decoder(torch.cat([e, context], dim=-1), s)  # (B, E + K) -> (B, H)
        logits = self.output(torch.cat([s, context, e], dim=-1))  # (B, H + K + E) @ (H + K + E, V) -> (B, V)
        return logits, s, weights

    def _start(self, src: torch.Tensor, src_lengths: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        states, summary = self.encode(src, src_lengths)
        mask = torch.arange(src.shape[1], device=src.device) < src_lengths.to(src.device)[:, None]  # (B, S): True = may attend
        return states, summary, mask, torch.tanh(self.init_state(summary))  # s_0: (B, K) @ (K, H) -> (B, H)

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: logits ``(B, T, V)`` for the characters after each of ``tgt_in (B, T)``."""
        self._check_src(src, src_lengths)
        _check_ids("tgt_in", tgt_in, self.config.vocab_size)
        if tgt_in.shape[0] != src.shape[0]:
            raise ValueError(f"src and tgt_in must have the same batch size, "
                             f"got {src.shape[0]} and {tgt_in.shape[0]}")
        states, summary, mask, s = self._start(src, src_lengths)
        logits = []
        for i in range(tgt_in.shape[1]):
            step_logits, s, _ = self._step(tgt_in[:, i], s, states, mask, summary)
            logits.append(step_logits)
        return torch.stack(logits, dim=1)  # T x (B, V) -> (B, T, V)

    @torch.no_grad()
    def greedy_decode(self, src: torch.Tensor, src_lengths: torch.Tensor, max_len: int
                      ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Feed back the most likely character until every row has written ``</s>`` or `max_len`.

        Returns ids ``(B, T_out)`` with ``T_out <= max_len`` (``</s>`` kept, ``<pad>`` after it),
        and the attention weights ``(B, T_out, S)`` (zero rows after ``</s>``), or None without
        attention. ``<pad>`` and ``<s>`` are never predicted.
        """
        check_positive_int("max_len", max_len)
        states, summary, mask, s = self._start(src, src_lengths)
        B = src.shape[0]
        y = torch.full((B,), BOS_ID, dtype=torch.long, device=src.device)
        done = torch.zeros(B, dtype=torch.bool, device=src.device)
        tokens, weights = [], []
        for _ in range(max_len):
            logits, s, w = self._step(y, s, states, mask, summary)
            logits[:, [PAD_ID, BOS_ID]] = float("-inf")
            y = logits.argmax(dim=-1).masked_fill(done, PAD_ID)  # (B, V) -> (B,)
            tokens.append(y)
            if w is not None:
                weights.append(w.masked_fill(done[:, None], 0.0))
            done = done | (y == EOS_ID)
            if bool(done.all()):
                break
        return torch.stack(tokens, 1), (torch.stack(weights, 1) if weights else None)
