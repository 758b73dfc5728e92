"""Sequence to sequence with and without attention: the experiment that opens Chapter 4
(Attention and the Transformer).

An RNN encoder-decoder (Cho et al., 2014; Sutskever et al., 2014) reads the source into one
fixed vector and writes the target from it; every source character has to squeeze through that
vector, so long inputs fail. Attention (Bahdanau et al., 2015) lets the decoder look back at all
encoder states at every step. Both models here are one class, :class:`Seq2Seq`, with a switch:

- **the task**: reversing a random string of lowercase letters (``"attend" -> "dnetta"``),
  made by :func:`make_pairs`. Random letters carry ``log2(26) = 4.7`` bits each with nothing
  to predict them from, so a fixed vector must hold all ``4.7 L`` bits of a length-``L``
  string, and an error can only come from losing information. Each output character depends on
  exactly one input character, so the right alignment is known: the anti-diagonal, which the
  attention heatmap should show (copying would give the diagonal, which a model could also get
  by attending to "the same position" without having learnt anything about order). With a
  bidirectional encoder copying is no easier for the bottleneck: measured with the chapter's
  settings, the no-attention model gets 39% of length-8 strings exactly right on both tasks.
  ``task="copy"`` is there to try.
- **the encoder**: a bidirectional GRU, as in Bahdanau et al.: the state ``h_j = [->h_j; <-h_j]``
  of character ``j`` sums up its left and its right, so it knows how far it is from both ends,
  which is what finding "the j-th character from the end" needs.
- **the decoder**: a GRU whose every step reads the previous character and a context vector
  ``c_i`` and predicts the next character from ``[s_i; c_i; e(y_{i-1})]``. Without attention
  ``c_i = c`` is the encoder's final states ``[->h_S; <-h_1]`` at every step (Cho et al., 2014):
  the bottleneck, one vector. With attention ``c_i = sum_j a_ij h_j`` with weights from
  :class:`lmcourse.attention.AdditiveAttention` queried by the previous decoder state ``s_{i-1}``,
  padding masked. Both start from ``s_0 = tanh(W_s c)``, so the two models differ only by the
  attention module's parameters (6% more with the chapter's sizes).

Training uses teacher forcing (the decoder reads the true previous character) and
:func:`train_seq2seq`, a small loop that reuses :class:`lmcourse.train.TrainConfig`, its
optimizer and schedule, and records a :class:`lmcourse.train.History`. :func:`accuracy_by_length`
greedy-decodes and scores whole strings. The defaults of :class:`Seq2SeqConfig`,
:func:`chapter_train_config` and :data:`CHAPTER_LENGTHS` are the chapter's experiment (1000
steps of 64 pairs; about 40 s without and 55 s with attention on one thread of a busy CPU)::

    torch.set_num_threads(1)
    pairs = make_pairs(20_000, *CHAPTER_LENGTHS, seed=0)  # lengths 3-20
    test = make_pairs(4_800, 3, 26, seed=1)  # about 200 per length, 21-26 longer than any seen
    torch.manual_seed(0)
    model = Seq2Seq(Seq2SeqConfig(attention=True))
    history = train_seq2seq(model, pairs, chapter_train_config())
    accuracy_by_length(model, test)  # {3: 1.0, ..., 20: 0.98, 21: 0.93, ...}

Tensors are batch first. Shape letters: ``B`` batch, ``S`` source length, ``T`` target length,
``V`` vocabulary, ``E`` embedding size, ``H`` GRU size, ``K`` encoder state size (``2H``
bidirectional), ``A`` attention hidden size.

Left out: beam search (decoding is greedy), teacher-forcing schedules (scheduled sampling),
Luong et al.'s (2015) multiplicative and local attention, the deep maxout output layer of
Bahdanau et al., dropout, and real translation data.
"""

from __future__ import annotations

import math
import random
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lmcourse.attention import AdditiveAttention
from lmcourse.train import History, TrainConfig, _device, check_example_config, train_on_examples

__all__ = ["PAD_ID", "BOS_ID", "EOS_ID", "TASKS", "CHAPTER_LENGTHS", "CharVocab", "make_pairs",
           "Batch", "make_batch", "Seq2SeqConfig", "Seq2Seq", "chapter_train_config",
           "train_seq2seq", "evaluate_loss", "translate", "accuracy_by_length",
           "char_accuracy_by_length", "plot_accuracy_by_length", "plot_alignment"]

PAD_ID, BOS_ID, EOS_ID = 0, 1, 2  # <pad>, <s> (start of target), </s> (end of target)
TASKS: dict[str, Callable[[str], str]] = {"reverse": lambda s: s[::-1], "copy": lambda s: s}
CHAPTER_LENGTHS = (3, 20)  # source lengths of the chapter's training strings (inclusive)


# ---------------------------------------------------------------------------------------------
# Data: a character vocabulary, random strings, padded batches

class CharVocab:
    """Characters <-> ids: ``<pad>`` = 0, ``<s>`` = 1, ``</s>`` = 2, then the alphabet in order.

    >>> vocab = CharVocab("abc")
    >>> len(vocab), vocab.encode("cab"), vocab.decode([5, 3, 4, 2, 0])  # decode stops at </s>
    (6, [5, 3, 4], 'cab')
    """

    specials = ("<pad>", "<s>", "</s>")

    def __init__(self, alphabet: str = string.ascii_lowercase) -> None:
        if not isinstance(alphabet, str) or not alphabet:
            raise ValueError(f"alphabet must be a non-empty str of characters, got {alphabet!r}")
        if len(set(alphabet)) != len(alphabet):
            raise ValueError(f"alphabet {alphabet!r} repeats characters; give each one once")
        self.alphabet = alphabet
        self.itos = [*self.specials, *alphabet]
        self.stoi = {c: i for i, c in enumerate(alphabet, start=len(self.specials))}

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        """The ids of the characters of `text` (no ``<s>`` or ``</s>`` added)."""
        if not isinstance(text, str):
            raise TypeError(f"encode expects a str, got {type(text).__name__}: {text!r:.60}")
        try:
            return [self.stoi[c] for c in text]
        except KeyError as err:
            raise ValueError(f"character {err.args[0]!r} in {text!r:.60} is not in the vocabulary; "
                             f"it knows only {self.alphabet!r} (pass CharVocab(alphabet) with "
                             f"every character your strings use)") from None

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """The string of `ids` up to the first ``</s>``, skipping ``<pad>`` and ``<s>``."""
        out = []
        for i in (ids.tolist() if isinstance(ids, torch.Tensor) else ids):
            if i == EOS_ID:
                break
            if i >= len(self.specials):
                out.append(self.itos[i])
        return "".join(out)

    def __repr__(self) -> str:
        return f"CharVocab({self.alphabet!r})"


def make_pairs(n: int, min_len: int = CHAPTER_LENGTHS[0], max_len: int = CHAPTER_LENGTHS[1],
               seed: int = 0, task: str = "reverse",
               alphabet: str = string.ascii_lowercase) -> list[tuple[str, str]]:
    """`n` pairs ``(source, target)``: random strings with lengths uniform in [min_len, max_len]
    and their transformation by ``TASKS[task]``. The same arguments give the same pairs.

    >>> make_pairs(3, 2, 5, seed=0)
    [('tkgnk', 'kngkt'), ('zjxf', 'fxjz'), ('htq', 'qth')]
    """
    for name, value, low in (("n", n, 1), ("min_len", min_len, 1), ("max_len", max_len, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    if min_len > max_len:
        raise ValueError(f"min_len={min_len} is larger than max_len={max_len}")
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    CharVocab(alphabet)  # checks the alphabet
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        source = "".join(rng.choices(alphabet, k=rng.randint(min_len, max_len)))
        pairs.append((source, TASKS[task](source)))
    return pairs


class Batch(NamedTuple):
    """Padded LongTensors for a list of pairs (pad id 0)."""

    src: torch.Tensor  # (B, S) source ids
    src_lengths: torch.Tensor  # (B,) true source lengths
    tgt_in: torch.Tensor  # (B, T) <s> y_1 ... y_n: what the decoder reads (teacher forcing)
    tgt_out: torch.Tensor  # (B, T) y_1 ... y_n </s>: what it should predict


def _check_pairs(pairs: Any, name: str = "pairs") -> None:
    if not isinstance(pairs, (list, tuple)) or not pairs:
        got = f"an empty {type(pairs).__name__}" if isinstance(pairs, (list, tuple)) else type(pairs).__name__
        raise ValueError(f"{name} must be a non-empty list of (source, target) string pairs, got {got}; "
                         f"make some with make_pairs(n, min_len, max_len, seed)")
    for i, pair in enumerate(pairs):
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2
                and isinstance(pair[0], str) and isinstance(pair[1], str)):
            raise TypeError(f"{name}[{i}] must be a (source, target) pair of str, got {pair!r:.80}")
        if not pair[0]:
            raise ValueError(f"{name}[{i}] has an empty source; the encoder needs at least one character")


def _pad(rows: list[list[int]]) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([r + [PAD_ID] * (width - len(r)) for r in rows], dtype=torch.long)


def _encode_pairs(pairs: Sequence[tuple[str, str]], vocab: CharVocab, name: str = "pairs"
                  ) -> list[tuple[list[int], list[int]]]:
    _check_pairs(pairs, name)
    out = []
    for i, (source, target) in enumerate(pairs):
        try:
            out.append((vocab.encode(source), vocab.encode(target)))
        except ValueError as err:
            raise ValueError(f"{name}[{i}]: {err}") from None
    return out


def _collate(encoded: Sequence[tuple[list[int], list[int]]]) -> Batch:
    src = _pad([s for s, _ in encoded])  # (B, S)
    lengths = torch.tensor([len(s) for s, _ in encoded], dtype=torch.long)  # (B,)
    tgt_in = _pad([[BOS_ID] + t for _, t in encoded])  # (B, T)
    tgt_out = _pad([t + [EOS_ID] for _, t in encoded])  # (B, T)
    return Batch(src, lengths, tgt_in, tgt_out)


def make_batch(pairs: Sequence[tuple[str, str]], vocab: CharVocab | None = None) -> Batch:
    """Encode and pad a list of ``(source, target)`` pairs into one :class:`Batch`.

    >>> b = make_batch([("ab", "ba"), ("c", "c")], CharVocab("abc"))
    >>> b.src.tolist(), b.src_lengths.tolist()
    ([[3, 4], [5, 0]], [2, 1])
    >>> b.tgt_in.tolist(), b.tgt_out.tolist()  # <s>=1 before, </s>=2 after, <pad>=0
    ([[1, 4, 3], [1, 5, 0]], [[4, 3, 2], [5, 2, 0]])
    """
    return _collate(_encode_pairs(pairs, vocab or CharVocab()))


# ---------------------------------------------------------------------------------------------
# The model

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
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
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
        """One decoder step: previous ids (B,) and state (B, H) -> logits (B, V), state, weights (B, S)."""
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
        mask = torch.arange(src.shape[1], device=src.device) < src_lengths.to(src.device)[:, None]  # (B, S)
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
        if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
            raise ValueError(f"max_len must be a positive int, got {max_len!r}")
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


# ---------------------------------------------------------------------------------------------
# Training

def chapter_train_config(**changes: Any) -> TrainConfig:
    """The chapter's training settings (a fresh :class:`TrainConfig`); `changes` override fields.

    >>> chapter_train_config(max_steps=10).max_steps
    10
    """
    settings = dict(lr=3e-3, batch_size=64, max_steps=1000, schedule="cosine", warmup_steps=100,
                    min_lr_ratio=0.1, clip_grad_norm=1.0, weight_decay=0.0, seed=0)
    settings.update(changes)
    return TrainConfig(**settings)


def _loss(model: Seq2Seq, batch: Batch, reduction: str = "mean") -> torch.Tensor:
    logits = model(batch.src, batch.src_lengths, batch.tgt_in)  # (B, T, V)
    return F.cross_entropy(logits.transpose(1, 2), batch.tgt_out, ignore_index=PAD_ID, reduction=reduction)


def _to(batch: Batch, device: torch.device) -> Batch:
    return Batch(*(t.to(device) for t in batch))


@torch.no_grad()
def evaluate_loss(model: Seq2Seq, pairs: Sequence[tuple[str, str]], vocab: CharVocab | None = None,
                  batch_size: int = 256) -> float:
    """Teacher-forced cross-entropy per target character (``</s>`` included), in nats."""
    encoded = _encode_pairs(pairs, vocab or CharVocab())
    was_training, total, count = model.training, 0.0, 0
    model.eval()
    try:
        for i in range(0, len(encoded), batch_size):
            batch = _to(_collate(encoded[i:i + batch_size]), _device(model))
            total += float(_loss(model, batch, "sum"))
            count += int((batch.tgt_out != PAD_ID).sum())
    finally:
        model.train(was_training)
    return total / count


def train_seq2seq(model: Seq2Seq, train_pairs: Sequence[tuple[str, str]], config: TrainConfig | None = None,
                  *, valid_pairs: Sequence[tuple[str, str]] | None = None,
                  vocab: CharVocab | None = None) -> History:
    """Teacher-forced training on `train_pairs`; returns a :class:`lmcourse.train.History`.

    Seeds torch and the batch order with ``config.seed`` (seed the model's initialisation yourself,
    before building it). Uses ``lr``, the optimizer, the schedule, ``clip_grad_norm``,
    ``batch_size``, ``epochs`` / ``max_steps``, ``eval_every`` and ``progress`` of `config`
    (default :func:`chapter_train_config`); batches hold strings of similar length. With
    `valid_pairs`, :func:`evaluate_loss` runs every ``eval_every`` steps and at the end.
    ``history.tokens_seen`` counts target characters (``</s>`` included).

    >>> threads = torch.get_num_threads(); torch.set_num_threads(1)  # small models: one is fastest
    >>> _ = torch.manual_seed(0)
    >>> model = Seq2Seq(Seq2SeqConfig(emb_dim=8, hidden_dim=16, attention_dim=8))
    >>> config = chapter_train_config(max_steps=20, progress=False)
    >>> history = train_seq2seq(model, make_pairs(64, 3, 5), config)
    >>> history.steps, history.train_loss[-1] < history.train_loss[0]
    (20, True)
    >>> torch.set_num_threads(threads)
    """
    config = config if config is not None else chapter_train_config()
    if not isinstance(model, Seq2Seq):
        raise TypeError(f"model must be a Seq2Seq, got {type(model).__name__}; lmcourse.train.train "
                        f"trains language models")
    check_example_config(config, "train_seq2seq")
    vocab = vocab or CharVocab()
    if len(vocab) > model.config.vocab_size:
        raise ValueError(f"the vocabulary has {len(vocab)} symbols but the model only "
                         f"vocab_size={model.config.vocab_size}; build it with "
                         f"Seq2SeqConfig(vocab_size={len(vocab)})")
    encoded = _encode_pairs(train_pairs, vocab, "train_pairs")
    if valid_pairs is not None:
        _encode_pairs(valid_pairs, vocab, "valid_pairs")  # fail now, not after training
    device = _device(model)
    history = History()

    def batch_loss(indices: list[int]) -> tuple[torch.Tensor, int]:
        batch = _to(_collate([encoded[i] for i in indices]), device)
        return _loss(model, batch), int((batch.tgt_out != PAD_ID).sum())

    def validate(step: int) -> dict[str, str]:
        loss = evaluate_loss(model, valid_pairs, vocab)
        history.eval_steps.append(step)
        history.valid_loss.append(loss)
        history.valid_perplexity.append(math.exp(loss))
        if loss < history.best_valid_loss:
            history.best_step, history.best_valid_loss = step, loss
            history.best_valid_perplexity = math.exp(loss)
        return {"val_loss": f"{loss:.3f}"}

    return train_on_examples(model, len(encoded), config, batch_loss, history=history,
                             validate=validate if valid_pairs is not None else None,
                             lengths=[len(s) for s, _ in encoded], desc="seq2seq")


# ---------------------------------------------------------------------------------------------
# Evaluation and figures

def translate(model: Seq2Seq, sources: Sequence[str], vocab: CharVocab | None = None,
              batch_size: int = 500, max_len: int | None = None) -> list[str]:
    """Greedy outputs for a list of source strings (`max_len` default: longest source + 5).

    >>> _ = torch.manual_seed(0)
    >>> outputs = translate(Seq2Seq(), ["abc", "de"], max_len=3)  # untrained: random letters
    >>> len(outputs), all(isinstance(out, str) and len(out) <= 3 for out in outputs)
    (2, True)
    """
    vocab = vocab or CharVocab()
    if isinstance(sources, str) or not isinstance(sources, (list, tuple)):
        raise TypeError(f"sources must be a list of str, got {type(sources).__name__}; "
                        f"wrap one string in [...]")
    encoded = _encode_pairs([(s, "") for s in sources], vocab, "sources")
    max_len = max_len if max_len is not None else max(len(s) for s in sources) + 5
    out = []
    for i in range(0, len(encoded), batch_size):
        batch = _to(_collate(encoded[i:i + batch_size]), _device(model))
        tokens, _ = model.greedy_decode(batch.src, batch.src_lengths, max_len)
        out += [vocab.decode(row) for row in tokens]
    return out


def _by_length(model: Seq2Seq, pairs: Sequence[tuple[str, str]], vocab: CharVocab | None,
               score: Callable[[str, str], float]) -> dict[int, float]:
    _check_pairs(pairs)
    totals: dict[int, list[float]] = {}
    for length in sorted({len(s) for s, _ in pairs}):  # one decode per length: max_len = target + 1
        group = [(s, t) for s, t in pairs if len(s) == length]
        outputs = translate(model, [s for s, _ in group], vocab, max_len=max(len(t) for _, t in group) + 1)
        totals[length] = [score(out, t) for out, (_, t) in zip(outputs, group)]
    return {length: sum(v) / len(v) for length, v in totals.items()}


def accuracy_by_length(model: Seq2Seq, pairs: Sequence[tuple[str, str]],
                       vocab: CharVocab | None = None) -> dict[int, float]:
    """Exact-match accuracy (the whole greedy output equals the target) per source length.

    >>> accuracy_by_length(Seq2Seq(), [("ab", "ba"), ("abc", "cba")])  # untrained
    {2: 0.0, 3: 0.0}
    """
    return _by_length(model, pairs, vocab, lambda out, target: float(out == target))


def char_accuracy_by_length(model: Seq2Seq, pairs: Sequence[tuple[str, str]],
                            vocab: CharVocab | None = None) -> dict[int, float]:
    """Share of target positions where the greedy output has the right character, per source
    length (characters missing from a short output count as wrong)."""
    return _by_length(model, pairs, vocab,
                      lambda out, target: sum(a == b for a, b in zip(out, target)) / max(1, len(target)))


def plot_accuracy_by_length(results: dict[str, dict[int, float]],
                            train_lengths: tuple[int, int] | None = CHAPTER_LENGTHS, ax: Any = None) -> Any:
    """One line per model ``{name: {length: accuracy}}``; the training lengths shaded."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    if train_lengths is not None:
        ax.axvspan(train_lengths[0] - 0.5, train_lengths[1] + 0.5, color="0.9", label="training lengths")
    for name, acc in results.items():
        ax.plot(list(acc), list(acc.values()), "o-", ms=3, label=name)
    ax.set_xlabel("source length (characters)")
    ax.set_ylabel("exact-match accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.legend()
    return ax


def plot_alignment(weights: torch.Tensor, source: str, output: str, ax: Any = None) -> Any:
    """Heatmap of attention weights ``(T_out, S)``: output characters down, source across."""
    import matplotlib.pyplot as plt

    weights = torch.as_tensor(weights).detach().cpu()
    if weights.dim() != 2:
        raise ValueError(f"weights must be (T_out, S) for one example, got shape {tuple(weights.shape)}; "
                         f"take weights[b] from greedy_decode")
    rows = list(output) + ["</s>"]
    weights = weights[:len(rows), :len(source)]
    if ax is None:
        _, ax = plt.subplots(figsize=(0.3 * len(source) + 1.5, 0.3 * len(rows) + 1))
    ax.imshow(weights.numpy(), cmap="Greys", vmin=0, vmax=1)
    ax.set_xticks(range(len(source)), list(source))
    ax.set_yticks(range(weights.shape[0]), rows[:weights.shape[0]])
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    return ax
