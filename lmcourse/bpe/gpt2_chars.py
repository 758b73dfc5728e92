"""GPT-2's printable stand-ins for bytes, the spelling of tokens in GPT-2-style vocabulary and merges
files (``encoder.json``, ``vocab.bpe``, ``tokenizer.json``, GGUF's ``tokenizer.ggml.tokens``).

GPT-2 (openai/gpt-2, src/encoder.py) writes each byte as one printable character so that a token
is a readable string: printable Latin-1 bytes stand for themselves, the other 68 bytes (controls,
space, ...) for ``chr(256)``, ``chr(257)``, ... in byte order; so a space is ``"Ġ"`` and a newline
``"Ċ"``. Chapter 7 uses this to load SmolLM2's tokenizer with :meth:`lmcourse.bpe.ByteBPE.from_vocab`.
"""

from __future__ import annotations

import functools

__all__ = ["bytes_to_unicode", "unicode_to_bytes"]


@functools.cache
def _tables() -> tuple[dict[int, str], dict[str, int]]:
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    char = {**{b: chr(b) for b in printable}, **{b: chr(256 + k) for k, b in enumerate(others)}}
    return char, {c: b for b, c in char.items()}


def bytes_to_unicode() -> dict[int, str]:
    """Each byte's printable stand-in character.

    >>> table = bytes_to_unicode()
    >>> table[ord("a")], table[ord(" ")], table[ord("\\n")]
    ('a', 'Ġ', 'Ċ')
    """
    return dict(_tables()[0])


def unicode_to_bytes(token: str) -> bytes:
    """The bytes a token written in stand-in characters spells.

    >>> unicode_to_bytes("Ġthe"), unicode_to_bytes("Ã©")  # " the"; "é" is the two bytes C3 A9
    (b' the', b'\\xc3\\xa9')
    """
    byte_of = _tables()[1]
    try:
        return bytes(byte_of[c] for c in token)
    except KeyError as err:
        raise ValueError(f"{err.args[0]!r} in {token!r:.60} is not one of GPT-2's 256 byte "
                         f"stand-in characters") from None
