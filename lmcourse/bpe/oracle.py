"""Measuring a tokenizer (bytes per token) and the ``tokenizers`` library's byte-level BPE, trained
the way :meth:`lmcourse.bpe.ByteBPE.train` trains, as an oracle to check ours against (Chapter 6)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lmcourse._checks import check_str

__all__ = ["compression", "train_hf_bpe"]


def compression(tokenizer: Any, text: str) -> float:
    """UTF-8 bytes per token of `text` (higher: fewer, longer tokens). Works with any tokenizer
    whose ``encode(text)`` returns ids or, like ``tokenizers.Tokenizer``, an object with ``.ids``.

    >>> from lmcourse.bpe import ByteBPE
    >>> compression(ByteBPE(), "héllo")  # untrained: one token per byte
    1.0
    """
    check_str(text, "compression")
    if not text:
        raise ValueError("compression of an empty text is undefined; give some text")
    ids = tokenizer.encode(text)
    return len(text.encode("utf-8")) / len(getattr(ids, "ids", ids))


def train_hf_bpe(text: str, vocab_size: int, *, special_tokens: Sequence[str] = ("<|endoftext|>",)) -> Any:
    """The ``tokenizers`` library's byte-level BPE, trained on `text` like :meth:`ByteBPE.train`:
    GPT-2's pre-tokenizer without a prefix space, all 256 bytes in the alphabet, no minimum count.

    Returns a ``tokenizers.Tokenizer``; its ids differ from ours (special tokens first, bytes in
    the order of their printable stand-ins), its merges are the same up to tie-breaking.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    check_str(text, "train_hf_bpe")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(special_tokens), min_frequency=0,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator([text], trainer=trainer)
    return tokenizer
