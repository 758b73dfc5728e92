"""Format constraints: which tokens a model may produce, chosen by their text. Chapter 9b uses them
with Chapter 6's decoding (``allowed_ids`` of :func:`lmcourse.gpt.generate_text` and of every
model's ``generate``), e.g. to make a model answer with digits only.

:func:`allowed_token_ids` reads every token of a tokenizer and keeps those whose text passes a
test; :func:`made_of` builds the commonest test, "only these characters". The mask itself is
:func:`lmcourse.decoding.allow_only`.

A token's text is ``tokenizer.decode([id])``: special tokens are spelled out (``<|im_end|>``), so
a character test leaves them out; add the end-of-turn id yourself where the answer must be able to
end. A byte-level BPE token that holds part of a multi-byte character decodes to U+FFFD.

Left out: grammars and regular expressions over the whole output (a constraint that changes with
what was generated so far, as in Outlines or llama.cpp's GBNF); here every step has the same set.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

__all__ = ["allowed_token_ids", "made_of"]


def made_of(characters: str) -> Callable[[str], bool]:
    """A test that a token's text is non-empty and uses only `characters`.

    >>> digits = made_of("0123456789")
    >>> digits("42"), digits(" 42"), digits("")
    (True, False, False)
    """
    if not isinstance(characters, str) or not characters:
        raise ValueError(f"characters must be a non-empty string, got {characters!r:.60}")
    allowed = set(characters)
    return lambda text: bool(text) and set(text) <= allowed


def allowed_token_ids(tokenizer: Any, rule: Callable[[str], bool] | Collection[str]) -> list[int]:
    """The ids, in increasing order, of the tokens whose text passes `rule`: a test ``str -> bool``
    (such as :func:`made_of`) or a collection of strings (a token's text must be one of them).

    `tokenizer` needs ``vocab_size`` and ``decode(list[int]) -> str``.

    >>> class Chars:
    ...     vocab_size = 4
    ...     def decode(self, ids): return "".join("ab1 "[i] for i in ids)
    >>> allowed_token_ids(Chars(), str.isalpha), allowed_token_ids(Chars(), ["1", " "])
    ([0, 1], [2, 3])
    """
    if not (callable(getattr(tokenizer, "decode", None)) and isinstance(getattr(tokenizer, "vocab_size", None), int)):
        raise TypeError(f"tokenizer must have vocab_size and decode(list[int]) -> str, got {type(tokenizer).__name__}")
    if callable(rule):
        test = rule
    elif isinstance(rule, str) or not isinstance(rule, Collection) or not all(isinstance(s, str) for s in rule):
        raise TypeError(f"rule must be a test str -> bool (e.g. made_of('0123456789')) or a collection of "
                        f"token texts (e.g. ['yes', 'no']), got {rule!r:.60}")
    else:
        texts = set(rule)
        test = texts.__contains__
    ids = [i for i in range(tokenizer.vocab_size) if test(tokenizer.decode([i]))]
    if not ids:
        raise ValueError(f"no token of the {tokenizer.vocab_size} passes {rule!r:.60}: nothing could be generated")
    return ids
