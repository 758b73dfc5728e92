"""Word and character tokenizers and a vocabulary: text in, integer ids out.

Chapter 1 (Background: tokenization) explains these pieces. They replace torchtext's
``get_tokenizer``, ``Vocab`` and ``build_vocab_from_iterator`` with the same names and the same
behaviour as torchtext 0.18, because torchtext 0.18 (its last release) no longer imports with
current PyTorch. Code written for torchtext runs after changing its imports to ``lmcourse.text``.

Differences from torchtext, on purpose:

- Errors are Python errors that say what to do: an unknown token raises ``UnknownTokenError`` (a
  ``KeyError``) instead of ``RuntimeError``; bad indices raise ``IndexError``; bad arguments raise
  ``ValueError`` or ``TypeError`` where torchtext silently did something surprising.
- Added: a character tokenizer (``char_tokenize``, ``get_tokenizer("char")``), ``Vocab.save`` /
  ``Vocab.load`` (see ``Vocab.save`` for the file format) and iteration over a ``Vocab``.
- Left out: the spacy, moses, toktok, revtok and subword tokenizers (they need their own
  libraries), pretrained ``vocab.vectors`` (GloVe, FastText), TorchScript and the C++ speed-up.
"""

from __future__ import annotations

import json
import operator
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from lmcourse._checks import check_str

__all__ = ["get_tokenizer", "basic_english_tokenize", "char_tokenize", "Vocab",
           "UnknownTokenError", "build_vocab_from_iterator"]

Tokenizer = Callable[[str], list[str]]

# torchtext's basic_english rules, applied in this order after lower-casing.
_BASIC_ENGLISH_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(pattern), replacement) for pattern, replacement in [
        (r"'", " '  "),       # split off apostrophes: don't -> don ' t
        (r'"', ""),           # drop double quotes
        (r"\.", " . "),
        (r"<br />", " "),     # HTML line breaks (common in IMDB reviews)
        (r",", " , "),
        (r"\(", " ( "),
        (r"\)", " ) "),
        (r"!", " ! "),
        (r"\?", " ? "),
        (r";", " "),          # semicolons and colons vanish
        (r":", " "),
        (r"\s+", " "),
    ]
]
_LIBRARY_TOKENIZERS = ("spacy", "moses", "toktok", "revtok", "subword")


def basic_english_tokenize(text: str) -> list[str]:
    """Lower-case ``text``, pad or drop punctuation as torchtext's ``basic_english`` does, split."""
    line = check_str(text, "basic_english_tokenize").lower()
    for pattern, replacement in _BASIC_ENGLISH_RULES:
        line = pattern.sub(replacement, line)
    return line.split()


def char_tokenize(text: str) -> list[str]:
    """Split ``text`` into characters, keeping spaces and newlines: ``"a b"`` -> ``["a", " ", "b"]``."""
    return list(check_str(text, "char_tokenize"))


def _split_tokenize(text: str) -> list[str]:
    return check_str(text, "the whitespace tokenizer (get_tokenizer(None))").split()


def get_tokenizer(tokenizer: str | Tokenizer | None, language: str = "en") -> Tokenizer:
    """Return a function from a string to its list of tokens, as ``torchtext.data.get_tokenizer``.

    ``None`` splits on whitespace, ``"basic_english"`` normalises English text first (English only),
    ``"char"`` splits into characters, and a callable is returned unchanged.

    >>> get_tokenizer("basic_english")("Don't panic, it's <br />only (a) TEST!")
    ['don', "'", 't', 'panic', ',', 'it', "'", 's', 'only', '(', 'a', ')', 'test', '!']
    """
    if tokenizer is None:
        return _split_tokenize
    if tokenizer == "basic_english":
        if language != "en":
            raise ValueError(f"the basic_english tokenizer is only available for English "
                             f"(language='en'), got language={language!r}")
        return basic_english_tokenize
    if tokenizer == "char":
        return char_tokenize
    if callable(tokenizer):
        return tokenizer
    supported = "None (split on whitespace), 'basic_english', 'char', or a callable str -> list[str]"
    if tokenizer in _LIBRARY_TOKENIZERS:
        raise ValueError(f"tokenizer {tokenizer!r} needs its own library and is not provided by "
                         f"lmcourse.text; supported values are {supported}")
    raise ValueError(f"unknown tokenizer {tokenizer!r}; supported values are {supported}")


class UnknownTokenError(KeyError):
    """A token is not in the vocabulary and no default index is set."""

    def __init__(self, token: str) -> None:
        super().__init__(
            f"token {token!r} is not in the vocabulary and no default index is set; to map unknown "
            f"tokens to '<unk>', build the vocab with specials=['<unk>'] and call "
            f"vocab.set_default_index(vocab['<unk>'])")
        self.token = token

    def __str__(self) -> str:  # KeyError would show the message inside quotes
        return str(self.args[0])


class Vocab:
    """An ordered list of distinct tokens, mapping each token to its position (its index).

    Same methods as ``torchtext.vocab.Vocab``. The default index is a plain number, as in torchtext:
    ``insert_token`` does not move it.
    """

    def __init__(self, tokens: Iterable[str], default_index: int | None = None) -> None:
        if isinstance(tokens, str):
            raise TypeError("Vocab expects a list of tokens, got a single str")
        self._itos: list[str] = []
        self._stoi: dict[str, int] = {}
        for token in tokens:
            if check_str(token, "Vocab") in self._stoi:
                raise ValueError(f"duplicate token {token!r} in the tokens list (at indices "
                                 f"{self._stoi[token]} and {len(self._itos)}); tokens must be distinct")
            self.append_token(token)
        self.set_default_index(default_index)

    # --- lookups ---
    def __getitem__(self, token: str) -> int:
        if not isinstance(token, str):
            raise TypeError(f"vocab[...] takes a token (str), got {type(token).__name__}; "
                            f"use vocab.lookup_token(index) to go from an index to its token")
        index = self._stoi.get(token, self._default_index)
        if index is None:
            raise UnknownTokenError(token)
        return index

    def __contains__(self, token: str) -> bool:
        return check_str(token, "`token in vocab`") in self._stoi

    def __len__(self) -> int:
        return len(self._itos)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._itos))

    def __call__(self, tokens: Iterable[str]) -> list[int]:
        return self.lookup_indices(tokens)

    def lookup_indices(self, tokens: Iterable[str]) -> list[int]:
        """The index of each token (the default index for unknown tokens, if one is set)."""
        if isinstance(tokens, str):
            raise TypeError(f"expected a list of tokens, got a single str {tokens!r:.40}; "
                            f"tokenize it first, e.g. vocab(tokenizer(text))")
        return [self[token] for token in tokens]

    def lookup_token(self, index: int) -> str:
        """The token at ``index``; negative indices are out of range, as in torchtext."""
        i = operator.index(index)  # accepts ints, numpy ints and 0-d integer tensors
        if not 0 <= i < len(self._itos):
            raise IndexError(f"index {i} is out of range for a vocab of size {len(self._itos)} "
                             f"(valid indices are 0 to {len(self._itos) - 1})")
        return self._itos[i]

    def lookup_tokens(self, indices: Iterable[int]) -> list[str]:
        """The token at each index."""
        return [self.lookup_token(i) for i in indices]

    def get_itos(self) -> list[str]:
        """A copy of the tokens in index order (index to string)."""
        return list(self._itos)

    def get_stoi(self) -> dict[str, int]:
        """A copy of the token-to-index mapping (string to index)."""
        return dict(self._stoi)

    # --- default index ---
    def set_default_index(self, index: int | None) -> None:
        """Return ``index`` for unknown tokens from now on (``None``: raise instead)."""
        self._default_index = None if index is None else operator.index(index)

    def get_default_index(self) -> int | None:
        return self._default_index

    # --- growing ---
    def insert_token(self, token: str, index: int) -> None:
        """Insert ``token`` at ``index`` (0 to ``len(vocab)``), shifting later tokens up by one."""
        index = operator.index(index)
        if not 0 <= index <= len(self._itos):
            raise IndexError(f"index {index} is out of range for inserting into a vocab of size "
                             f"{len(self._itos)} (valid indices are 0 to {len(self._itos)})")
        self._check_new(token)
        self._itos.insert(index, token)
        for i in range(index, len(self._itos)):
            self._stoi[self._itos[i]] = i

    def append_token(self, token: str) -> None:
        """Add ``token`` at the end, with index ``len(vocab)``."""
        self._check_new(token)
        self._stoi[token] = len(self._itos)
        self._itos.append(token)

    def _check_new(self, token: str) -> None:
        if check_str(token, "Vocab") in self._stoi:
            raise ValueError(f"token {token!r} already exists in the vocab with index {self._stoi[token]}")

    # --- files ---
    def save(self, path: str | os.PathLike[str], overwrite: bool = False) -> None:
        """Write the vocab as a UTF-8 JSON file (any token, line breaks included, survives).

        The file holds ``{"format": "lmcourse.text.Vocab", "version": 1, "default_index": D,
        "tokens": [...]}`` with the tokens in index order. An existing file is kept unless
        ``overwrite=True``.
        """
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it")
        record = {"format": "lmcourse.text.Vocab", "version": 1, "default_index": self._default_index,
                  "tokens": self._itos}
        data = json.dumps(record, ensure_ascii=False).encode("utf-8")  # fails before touching the file
        path.write_bytes(data + b"\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Vocab:
        """Read a vocab written by ``Vocab.save``."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no vocab file at {path} (write one with vocab.save(path))")
        try:
            record = json.loads(path.read_bytes().decode("utf-8"))
            if record["format"] != "lmcourse.text.Vocab" or not isinstance(record["tokens"], list):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{path} is not a vocab file written by Vocab.save "
                             f"(expected JSON with a 'format' and a 'tokens' list)") from None
        return cls(record["tokens"], default_index=record["default_index"])

    def __repr__(self) -> str:
        head = ", ".join(repr(t) for t in self._itos[:5]) + (", ..." if len(self) > 5 else "")
        return f"Vocab(size={len(self)}, tokens=[{head}], default_index={self._default_index})"


def build_vocab_from_iterator(iterator: Iterable[Iterable[str]], min_freq: int = 1,
                              specials: list[str] | None = None, special_first: bool = True,
                              max_tokens: int | None = None) -> Vocab:
    """Build a ``Vocab`` from token lists, with torchtext's rules.

    Tokens are ordered by count, most frequent first, ties alphabetically. As in torchtext,
    ``max_tokens`` keeps the ``max_tokens - len(specials)`` most frequent tokens *before* specials
    are taken out of them and before ``min_freq`` drops rare ones, so the result can be smaller.
    Specials go first (or last with ``special_first=False``) in the order given.

    >>> vocab = build_vocab_from_iterator([["b", "a", "c"], ["a", "b", "a"]], specials=["<unk>"])
    >>> vocab.get_itos()
    ['<unk>', 'a', 'b', 'c']
    """
    if min_freq < 1:
        raise ValueError(f"min_freq must be at least 1, got {min_freq}")
    specials = list(specials or [])
    if max_tokens is not None and not len(specials) < max_tokens:
        raise ValueError(f"max_tokens={max_tokens} must be greater than the number of specials "
                         f"({len(specials)}), otherwise the vocab would hold only special tokens")
    counts: Counter[str] = Counter()
    for n, tokens in enumerate(iterator):
        if isinstance(tokens, (str, bytes)) or not isinstance(tokens, Iterable):
            raise TypeError(f"item {n} of the iterator is a {type(tokens).__name__} "
                            f"({tokens!r:.40}); each item must be a list of tokens; did you pass "
                            f"lines of text instead of tokenized lines, e.g. map(tokenizer, lines)?")
        for token in tokens:
            counts[check_str(token, f"build_vocab_from_iterator (a token in item {n})")] += 1
    if not counts and not specials:
        raise ValueError("the corpus is empty: the iterator gave no tokens (and there are no specials)")
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    if max_tokens is not None:
        ordered = ordered[: max_tokens - len(specials)]
    kept = [token for token, count in ordered if count >= min_freq and token not in specials]
    return Vocab(specials + kept if special_first else kept + specials)
