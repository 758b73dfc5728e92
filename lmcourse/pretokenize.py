"""BERT's basic tokenization, the stage before WordPiece: text -> words and punctuation.

Chapter 5 (BERT) explains it; :mod:`lmcourse.wordpiece` splits each word further. It follows
Google's ``tokenization.py`` for BERT (Devlin et al., 2019): drop NUL, U+FFFD and control
characters, turn every whitespace character into a space, put spaces around CJK ideographs, split
on whitespace, lower-case and strip accents (NFD, then drop the combining marks), and cut out each
punctuation character as a token of its own (every non-alphanumeric ASCII symbol, like ``$`` or
``^``, counts as punctuation too). As transformers' Python tokenizer does, text is put in NFC
before it is split.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

__all__ = ["basic_tokenize"]


def _is_whitespace(char: str) -> bool:
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def _is_control(char: str) -> bool:
    """Unicode categories C* (control, format, unassigned...), except the whitespace \\t \\n \\r."""
    return char not in "\t\n\r" and unicodedata.category(char).startswith("C")


def _is_punctuation(char: str) -> bool:
    """Unicode categories P*, and every ASCII character that is not a letter, digit or space."""
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True  # !"#$%&'()*+,-./  :;<=>?@  [\]^_`  {|}~
    return unicodedata.category(char).startswith("P")


def _is_cjk(char: str) -> bool:
    """The CJK Unified Ideographs blocks (and extensions, compatibility ideographs) BERT uses.

    Japanese kana and Korean Hangul are not in them: they stay inside words."""
    cp = ord(char)
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def _clean_text(text: str) -> str:
    """Drop NUL, U+FFFD and control characters; every whitespace character becomes a space."""
    return "".join(" " if _is_whitespace(c) else c for c in text
                   if c not in "\x00\ufffd" and not _is_control(c))


def _space_cjk(text: str) -> str:
    """Put spaces around each CJK ideograph, so that each one is a word: Chinese has no spaces."""
    return "".join(f" {c} " if _is_cjk(c) else c for c in text)


def _strip_accents(word: str) -> str:
    """Decompose (NFD: "é" -> "e" + U+0301) and drop the combining marks (category Mn).

    >>> _strip_accents("Ångström")
    'Angstrom'
    """
    return "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")


def _split_on_punctuation(word: str) -> list[str]:
    """Each punctuation character becomes a piece of its own.

    >>> _split_on_punctuation("don't...")
    ['don', "'", 't', '.', '.', '.']
    """
    pieces: list[str] = []
    start_new = True
    for char in word:
        if _is_punctuation(char):
            pieces.append(char)
            start_new = True
        else:
            if start_new:
                pieces.append("")
            pieces[-1] += char
            start_new = False
    return pieces


def basic_tokenize(text: str, lowercase: bool = True, strip_accents: bool | None = None,
                   tokenize_chinese_chars: bool = True, never_split: Iterable[str] = ()) -> list[str]:
    """Split text into words and punctuation as BERT does before WordPiece.

    ``strip_accents=None`` strips them exactly when lower-casing (as the original BERT does).
    Words in ``never_split`` (e.g. ``"[MASK]"``) are kept as they are.

    >>> basic_tokenize("Héllo,  WORLD!\\t你好 [MASK]", never_split=["[MASK]"])
    ['hello', ',', 'world', '!', '你', '好', '[MASK]']
    """
    never_split = set(never_split)
    text = _clean_text(text)
    if tokenize_chinese_chars:
        text = _space_cjk(text)
    words = []
    for word in unicodedata.normalize("NFC", text).split():
        if word in never_split:
            words.append(word)
            continue
        if lowercase:
            word = word.lower()
        if strip_accents or (strip_accents is None and lowercase):
            word = _strip_accents(word)
        words.extend(_split_on_punctuation(word))
    return " ".join(words).split()  # drops the words that stripping emptied (only accents)
