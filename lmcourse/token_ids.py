"""The check of batch-first token ids ``(B, T)`` that the Transformer models share (BERT, GPT).

From Chapter 4 on, models take ids batch first, ``(B, T)``, as ``transformers`` does; the
recurrent models before them take ``(T, B)`` and check it with :func:`lmcourse.neural.check_tokens`.
One check gives every model the same messages, each saying how to fix the input.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["check_batch_ids"]


def check_batch_ids(name: str, x: Any, vocab_size: int | None = None, *,
                    shape: tuple[int, ...] | None = None, like: str = "input_ids") -> None:
    """Raise a clear error unless `x` is a LongTensor of token ids: ``(B, T)`` with at least one
    token (or exactly `shape`, the shape of `like`), each id in ``[0, vocab_size)`` if given.

    >>> check_batch_ids("ids", torch.tensor([1, 2]))
    Traceback (most recent call last):
    ...
    ValueError: ids must be (B, T), batch first, got shape (2,); for one sequence use ids[None]
    """
    expected = "(B, T)" if shape is None else str(tuple(shape))
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a LongTensor (torch.long) of shape {expected}, got "
                        f"{type(x).__name__}; make one with torch.tensor(ids)")
    if x.dtype != torch.long:
        raise TypeError(f"{name} must be a LongTensor (torch.long) of shape {expected}, got dtype {x.dtype}; "
                        f"convert it with .long()")
    if shape is not None and tuple(x.shape) != tuple(shape):
        raise ValueError(f"{name} must have the shape of {like} {expected}, got {tuple(x.shape)}")
    if x.dim() != 2 and shape is None:
        hint = f"; for one sequence use {name}[None]" if x.dim() == 1 else ""
        raise ValueError(f"{name} must be (B, T), batch first, got shape {tuple(x.shape)}{hint}")
    if x.numel() == 0 and shape is None:
        raise ValueError(f"{name} is empty {tuple(x.shape)}: give at least one token per sequence")
    if vocab_size is not None and x.numel():
        low, high = int(x.min()), int(x.max())
        if low < 0 or high >= vocab_size:
            raise ValueError(f"{name} holds ids outside [0, vocab_size={vocab_size}): min {low}, max {high}; "
                             f"was it made by another tokenizer than the model's?")
