"""Masked-language-model data, Chapter 5 (BERT): the tokenizer's special ids
(:class:`MaskIds`), sentences packed into examples (:func:`mlm_examples`) and padded batches
(:func:`collate`). :mod:`lmcourse.mlm` masks and trains on them and re-exports these names.

Left out: sentence pairs (BERT's second segment) and next-sentence prediction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch

from lmcourse.wordpiece import WordPieceTokenizer

__all__ = ["MaskIds", "mlm_examples", "MLMBatch", "collate", "check_examples"]


class MaskIds(NamedTuple):
    """The ids masking needs, read from a tokenizer by :meth:`from_tokenizer`."""

    mask_id: int  # what 80% of the chosen tokens become
    pad_id: int  # padding: never chosen, attention_mask 0
    vocab_size: int  # V: random replacements are drawn from [0, V) minus special_ids
    special_ids: tuple[int, ...]  # never chosen, never drawn: [CLS], [SEP], [PAD], [MASK], [UNK]

    @classmethod
    def from_tokenizer(cls, tokenizer: WordPieceTokenizer) -> MaskIds:
        """Read ``mask_id``, ``pad_id``, ``cls_id``, ``sep_id``, ``unk_id`` and ``vocab_size``
        from a :class:`lmcourse.wordpiece.WordPieceTokenizer` (or anything with those names)."""
        names = ("mask_id", "pad_id", "cls_id", "sep_id", "unk_id", "vocab_size")
        missing = [n for n in names if not isinstance(getattr(tokenizer, n, None), int)]
        if missing:
            raise TypeError(f"tokenizer must have int properties {', '.join(names)} (as "
                            f"lmcourse.wordpiece.WordPieceTokenizer has); {type(tokenizer).__name__} "
                            f"lacks {', '.join(missing)}")
        t = tokenizer
        specials = tuple(sorted({t.cls_id, t.sep_id, t.pad_id, t.mask_id, t.unk_id}))
        return cls(t.mask_id, t.pad_id, t.vocab_size, specials)


# ---------------------------------------------------------------------------------------------
# Data: packed sentences, padded batches

def mlm_examples(tokenizer: WordPieceTokenizer, sentences: Sequence[str],
                 max_length: int = 64) -> list[list[int]]:
    """Pack consecutive `sentences` into id lists ``[CLS] s_1 s_2 ... [SEP]`` of at most `max_length`.

    A sentence goes into the current example if it fits, else it starts the next one; a sentence
    longer than ``max_length - 2`` tokens is cut into pieces (no text is dropped).

    >>> from lmcourse.wordpiece import WordPieceTokenizer
    >>> tok = WordPieceTokenizer({t: i for i, t in enumerate(
    ...     ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c", "."])})
    >>> mlm_examples(tok, ["a b .", "c .", "a a a a a a a ."], max_length=7)  # [CLS]=2, [SEP]=3
    [[2, 5, 6, 8, 7, 8, 3], [2, 5, 5, 5, 5, 5, 3], [2, 5, 5, 8, 3]]
    """
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 3:
        raise ValueError(f"max_length must be an int >= 3 ([CLS], a token, [SEP]), got {max_length!r}")
    if isinstance(sentences, str) or not isinstance(sentences, Sequence):
        raise TypeError(f"sentences must be a list of str, got {type(sentences).__name__}; "
                        f"split text with lmcourse.data.sentences(lines)")
    MaskIds.from_tokenizer(tokenizer)  # checks that it has the ids
    cls_id, sep_id = tokenizer.cls_id, tokenizer.sep_id
    room = max_length - 2
    examples: list[list[int]] = []
    current: list[int] = []
    for i, sentence in enumerate(sentences):
        if not isinstance(sentence, str):
            raise TypeError(f"sentences[{i}] must be a str, got {type(sentence).__name__}")
        body = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(sentence))
        if current and len(current) + len(body) > room:
            examples.append([cls_id, *current, sep_id])
            current = []
        while len(body) > room:  # only a sentence longer than a whole example gets here
            examples.append([cls_id, *body[:room], sep_id])
            body = body[room:]
        current += body
    if current:
        examples.append([cls_id, *current, sep_id])
    return examples


class MLMBatch(NamedTuple):
    """Padded examples: what a BERT model reads."""

    input_ids: torch.Tensor  # (B, T) ids, pad_id after each example's end
    attention_mask: torch.Tensor  # (B, T) 1 for real tokens, 0 for padding


def collate(examples: Sequence[Sequence[int]], pad_id: int) -> MLMBatch:
    """Pad id lists to the longest one.

    >>> collate([[2, 7, 3], [2, 3]], pad_id=0)
    MLMBatch(input_ids=tensor([[2, 7, 3],
            [2, 3, 0]]), attention_mask=tensor([[1, 1, 1],
            [1, 1, 0]]))
    """
    width = max(len(e) for e in examples)
    ids = torch.tensor([list(e) + [pad_id] * (width - len(e)) for e in examples], dtype=torch.long)
    mask = torch.tensor([[1] * len(e) + [0] * (width - len(e)) for e in examples], dtype=torch.long)
    return MLMBatch(ids, mask)  # (B, T), (B, T)


def check_examples(name: str, examples: Any, ids: MaskIds, context_length: int | None) -> None:
    """Refuse examples that are not non-empty lists of in-vocabulary ids with something to mask,
    or longer than `context_length` (None: any length)."""
    if not isinstance(examples, Sequence) or not examples:
        raise ValueError(f"{name} must be a non-empty list of id lists; make them with mlm_examples()")
    special = set(ids.special_ids)
    for i, example in enumerate(examples):
        if not isinstance(example, Sequence) or not all(isinstance(t, int) for t in example):
            raise TypeError(f"{name}[{i}] must be a list of int ids, got {example!r:.80}")
        if not any(t not in special for t in example):
            raise ValueError(f"{name}[{i}] has no ordinary token to mask: {example!r:.80}")
        if context_length is not None and len(example) > context_length:
            raise ValueError(f"{name}[{i}] has {len(example)} tokens but the model reads at most "
                             f"context_length={context_length}; use mlm_examples(..., max_length="
                             f"{context_length})")
        if min(example) < 0 or max(example) >= ids.vocab_size:
            raise ValueError(f"{name}[{i}] has ids outside [0, vocab_size={ids.vocab_size})")
