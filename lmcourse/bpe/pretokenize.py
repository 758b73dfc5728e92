"""What happens to text before any merge: GPT-2's pre-tokenization regex, and cutting out the
special tokens (Chapter 6, GPT).

GPT-2 (Radford et al., 2019) cuts the text into chunks with a regular expression and never
merges across chunks: " dog." and " dog!" both start with the chunk " dog", which is encoded the
same way in both, and no token spans two words. Special tokens (``<|endoftext|>``) are cut out
first, so no merge includes or crosses one.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import regex

__all__ = ["GPT2_PATTERN", "pretokenize", "split_specials", "check_special_tokens"]

# GPT-2's pre-tokenizer (openai/gpt-2, src/encoder.py): English contractions; letters, digits and
# other symbols, each with at most one leading space; runs of whitespace, of which the last space
# is left to start the next word (``\s+(?!\S)``); any whitespace left at the end of the text.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def pretokenize(text: str, pattern: str | None = GPT2_PATTERN) -> list[str]:
    """Cut `text` into the chunks that merges never cross (`pattern` None: one chunk).

    >>> pretokenize("I'll pay 100 dollars!  OK?")
    ['I', "'ll", ' pay', ' 100', ' dollars', '!', ' ', ' OK', '?']
    """
    if pattern is None:
        return [text] if text else []
    return regex.findall(pattern, text)


def split_specials(text: str, specials: Collection[str]) -> list[str]:
    """``[text, special, text, special, ..., text]``: the specials at the odd places (longest
    spelling first where two overlap).

    >>> split_specials("a<|endoftext|>b", ["<|endoftext|>"])
    ['a', '<|endoftext|>', 'b']
    """
    if not specials:
        return [text]
    alternatives = "|".join(regex.escape(s) for s in sorted(specials, key=len, reverse=True))
    return regex.split(f"({alternatives})", text)


def check_special_tokens(special_tokens: Sequence[str]) -> list[str]:
    """The special tokens as a list, after checking that they are distinct non-empty strs."""
    if isinstance(special_tokens, str):
        raise TypeError(f"special_tokens must be a sequence of str, got the str {special_tokens!r}; "
                        f"write ({special_tokens!r},) for one special token")
    specials = list(special_tokens)
    for s in specials:
        if not isinstance(s, str) or not s:
            raise ValueError(f"each special token must be a non-empty str, got {s!r}")
    if len(set(specials)) != len(specials):
        raise ValueError(f"special tokens must be distinct, got {specials}")
    return specials
