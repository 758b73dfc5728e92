"""The task of Chapter 4's opening experiment: random strings and their reversal (or copy), the
character vocabulary, and padded batches with teacher-forcing targets."""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch

from lmcourse._checks import check_int

__all__ = ["PAD_ID", "BOS_ID", "EOS_ID", "TASKS", "CHAPTER_LENGTHS", "CharVocab", "make_pairs", "Batch",
           "make_batch", "check_pairs", "encode_pairs", "collate"]

PAD_ID, BOS_ID, EOS_ID = 0, 1, 2  # <pad>, <s> (start of target), </s> (end of target)
TASKS: dict[str, Callable[[str], str]] = {"reverse": lambda s: s[::-1], "copy": lambda s: s}
CHAPTER_LENGTHS = (3, 20)  # source lengths of the chapter's training strings (inclusive)


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
    for name, value in (("n", n), ("min_len", min_len), ("max_len", max_len)):
        check_int(name, value, 1)
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

    def to(self, device: torch.device) -> Batch:
        """The same batch on `device`."""
        return Batch(*(t.to(device) for t in self))


def check_pairs(pairs: Any, name: str = "pairs") -> None:
    """Raise a clear error unless `pairs` is a non-empty list of (source, target) str pairs."""
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


def encode_pairs(pairs: Sequence[tuple[str, str]], vocab: CharVocab, name: str = "pairs"
                 ) -> list[tuple[list[int], list[int]]]:
    """The ids of each source and target (errors name the pair: ``pairs[3]: ...``)."""
    check_pairs(pairs, name)
    out = []
    for i, (source, target) in enumerate(pairs):
        try:
            out.append((vocab.encode(source), vocab.encode(target)))
        except ValueError as err:
            raise ValueError(f"{name}[{i}]: {err}") from None
    return out


def collate(encoded: Sequence[tuple[list[int], list[int]]]) -> Batch:
    """Pad encoded pairs into a :class:`Batch`: ``<s>`` before the targets the decoder reads, ``</s>`` after those it predicts."""
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
    return collate(encode_pairs(pairs, vocab or CharVocab()))
