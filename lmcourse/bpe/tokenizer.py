"""GPT-2's byte-level BPE tokenizer (Chapter 6, GPT): train, encode, decode, save and load; and
built without training from someone else's vocabulary and merges (Chapter 7, SmolLM2).

Ids 0-255 are the bytes, then come the merged tokens in the order they were learned, then the
special tokens (``<|endoftext|>``), as in GPT-2's vocabulary. A tokenizer made by
:meth:`ByteBPE.from_vocab` keeps the ids of the vocabulary it was given instead. Encoding applies,
within each chunk, the lowest-ranked merge present at all its places from left to right, and
repeats (as GPT-2's ``encoder.py`` does); chunk encodings are cached.
"""

from __future__ import annotations

import json
import operator
import os
import warnings
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path

from lmcourse._checks import check_str
from lmcourse.bpe.files import FORMAT, read_record
from lmcourse.bpe.merging import Pair, merge
from lmcourse.bpe.pretokenize import (GPT2_PATTERN, check_special_tokens, pretokenize,
                                      split_specials)
from lmcourse.bpe.training import learn_merges

__all__ = ["ByteBPE", "BasicBPE"]


class ByteBPE:
    """GPT-2's byte-level BPE tokenizer. Untrained, it has the 256 byte tokens only.

    Worked example (the text of the Wikipedia article on BPE, one chunk): ``aa`` is the most
    frequent pair (4 times); then ``aa a`` and ``a b`` both occur twice and the tie goes to the
    smaller ids, (97, 98) = ``ab``; then ``aa ab`` (twice) makes ``aaab``.

    >>> tok = ByteBPE().train("aaabdaaabac", 256 + 3, special_tokens=(), progress=False)
    >>> [tok.token_bytes(i) for i in range(256, tok.vocab_size)]
    [b'aa', b'ab', b'aaab']
    >>> tok.encode("aaabdaaabac")  # aaab d aaab a c
    [258, 100, 258, 97, 99]
    >>> tok.decode([258, 33])
    'aaab!'
    """

    pattern: str | None = GPT2_PATTERN  # the pre-tokenization regex (None: the text is one chunk)
    cache_limit = 100_000  # chunk encodings kept before the cache is emptied

    def __init__(self) -> None:
        self._set_merges([], [])

    # --- the vocabulary -------------------------------------------------------------------
    def _set_merges(self, merges: Iterable[Pair], special_tokens: Sequence[str]) -> None:
        """Build the vocabulary from the merges (in order) and the special tokens after them."""
        self._vocab = [bytes([b]) for b in range(256)]  # our own ids: bytes, then merged tokens
        token_id = {token: i for i, token in enumerate(self._vocab)}
        self._merges: list[Pair] = []
        self._rank: dict[Pair, int] = {}  # pair -> position of its (first) merge
        self._merged: dict[Pair, int] = {}  # pair -> the id it merges into
        for rank, (a, b) in enumerate(merges):
            if not (0 <= a < len(self._vocab) and 0 <= b < len(self._vocab)):
                raise ValueError(f"merge {rank} is {[a, b]}, but only ids 0 to {len(self._vocab) - 1} "
                                 f"exist before it")
            token = self._vocab[a] + self._vocab[b]
            if token not in token_id:
                token_id[token] = len(self._vocab)
                self._vocab.append(token)
            self._merges.append((a, b))
            self._rank.setdefault((a, b), rank)
            self._merged[a, b] = token_id[token]
        self._special = {s: len(self._vocab) + k for k, s in enumerate(special_tokens)}
        self._decoder = self._vocab + [s.encode("utf-8") for s in special_tokens]  # id -> bytes
        self._ids: list[int | None] | None = None  # our id -> the id we hand out (None: the same)
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def from_vocab(cls, vocab: Mapping[bytes, int], merges: Iterable[tuple[bytes, bytes]], *,
                   special_tokens: Mapping[str, int] | None = None,
                   pattern: str | None = GPT2_PATTERN) -> ByteBPE:
        """A tokenizer with a given vocabulary and merges, no training: how GPT-2-style tokenizers
        (GPT-2 itself, SmolLM2) are loaded.

        `vocab` maps each token's bytes to its id (it must hold every merge's result; a single byte
        it leaves out cannot be encoded; tokens no merge makes are only decoded); `merges` are
        ``(left bytes, right bytes)`` in rank order; `special_tokens` maps each special token to
        its id; `pattern` is the pre-tokenization regex (None: no pre-tokenization). Every id from
        0 to the largest must belong to a token or a special token. :meth:`encode` returns and
        :meth:`decode` reads these ids; tokens spelled in GPT-2's stand-in characters (``"Ġthe"``)
        become bytes with :func:`lmcourse.bpe.unicode_to_bytes`.

        >>> vocab = {bytes([b]): b + 1 for b in range(256)} | {b"ab": 257}  # id 0: the special
        >>> tok = ByteBPE.from_vocab(vocab, [(b"a", b"b")], special_tokens={"<s>": 0})
        >>> tok.encode("<s>abc", allowed_special="all"), tok.decode([257, 100])
        ([0, 257, 100], 'abc')
        """
        tokenizer = cls()
        tokenizer.pattern = pattern
        tokenizer._set_merges(_merge_ids(merges), [])
        specials = dict(special_tokens or {})
        check_special_tokens(list(specials))
        tokenizer._ids, tokenizer._decoder = _external_ids(tokenizer._vocab, vocab, specials)
        tokenizer._special = specials
        return tokenizer

    @property
    def vocab_size(self) -> int:
        """Number of ids: 256 bytes + merged tokens + special tokens (from :meth:`from_vocab`: every id)."""
        return len(self._decoder)

    @property
    def merges(self) -> list[Pair]:
        """The learned merges ``(left id, right id)`` in the order they were learned (= their rank)."""
        if self._ids is None:
            return list(self._merges)
        return [(self._ids[a], self._ids[b]) for a, b in self._merges]

    @property
    def special_tokens(self) -> dict[str, int]:
        """Each special token and its id."""
        return dict(self._special)

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes that `token_id` stands for (a special token: its UTF-8 spelling)."""
        i = operator.index(token_id)
        if 0 <= i < len(self._decoder):
            return self._decoder[i]
        raise IndexError(f"token id {i} is out of range for a vocabulary of {self.vocab_size} ids "
                         f"(valid ids are 0 to {self.vocab_size - 1})")

    # --- training -------------------------------------------------------------------------
    def pretokenize(self, text: str) -> list[str]:
        """Cut `text` into the chunks that merges never cross.

        >>> ByteBPE().pretokenize("I'll pay 100 dollars!  OK?")
        ['I', "'ll", ' pay', ' 100', ' dollars', '!', ' ', ' OK', '?']
        """
        return pretokenize(text, self.pattern)

    def train(self, text: str, vocab_size: int, *, special_tokens: Sequence[str] = ("<|endoftext|>",),
              progress: bool = True) -> ByteBPE:
        """Learn merges from `text` until there are `vocab_size` ids (bytes + merged + special).

        Replaces any earlier training and returns the tokenizer itself. If the text runs out of
        pairs first, training stops with a warning and a smaller vocabulary.
        """
        check_str(text, f"{type(self).__name__}.train")
        specials = check_special_tokens(special_tokens)
        vocab_size = operator.index(vocab_size)
        if vocab_size < 256 + len(specials):
            raise ValueError(f"vocab_size={vocab_size} is too small: the 256 byte tokens and "
                             f"{len(specials)} special token(s) already need {256 + len(specials)} ids")
        if not text:
            raise ValueError("the training text is empty; give some text to learn merges from")
        chunks: Counter[str] = Counter()
        for part in split_specials(text, specials)[::2]:  # even places: the text between specials
            chunks.update(self.pretokenize(part))
        if not chunks:
            raise ValueError("the training text holds only special tokens; there is nothing to learn from")
        words = [list(chunk.encode("utf-8")) for chunk in chunks]
        vocab = [bytes([b]) for b in range(256)]
        merges = learn_merges(words, list(chunks.values()), vocab, vocab_size - len(specials), progress)
        self._set_merges(merges, specials)
        if self.vocab_size < vocab_size:
            warnings.warn(f"only {len(merges)} merges were possible on this text (after them every chunk "
                          f"is a single token), so the vocabulary has {self.vocab_size} ids instead of "
                          f"the {vocab_size} asked for; train on more text for a larger vocabulary",
                          stacklevel=2)
        return self

    # --- encoding and decoding ------------------------------------------------------------
    def _encode_chunk(self, chunk: str) -> list[int]:
        """Apply the lowest-ranked merge present, everywhere in the chunk, until none applies."""
        ids = list(chunk.encode("utf-8"))
        rank, never = self._rank, len(self._merges)  # `never`: a rank no merge has
        while len(ids) > 1:
            pair = min(zip(ids, ids[1:]), key=lambda p: rank.get(p, never))
            if pair not in rank:
                break
            ids = merge(ids, pair, self._merged[pair])
        if self._ids is None:
            return ids
        given = [self._ids[i] for i in ids]
        if None in given:
            byte = ids[given.index(None)]
            raise ValueError(f"byte {byte:#04x} in {chunk!r:.40} has no id: the vocabulary this tokenizer was "
                             f"built from (from_vocab) leaves it out")
        return given

    def encode_ordinary(self, text: str) -> list[int]:
        """Encode `text`, treating special-token spellings as ordinary text."""
        check_str(text, f"{type(self).__name__}.encode")
        ids: list[int] = []
        for chunk in self.pretokenize(text):
            piece = self._cache.get(chunk)
            if piece is None:
                piece = self._encode_chunk(chunk)
                if len(self._cache) >= self.cache_limit:
                    self._cache.clear()
                self._cache[chunk] = piece
            ids.extend(piece)
        return ids

    def encode(self, text: str, allowed_special: str | Collection[str] = "none") -> list[int]:
        """Encode `text` into ids. A special token in `allowed_special` (a set of them, ``"all"`` or
        ``"none"``) becomes its single id; any other special-token spelling is ordinary text.

        >>> tok = ByteBPE().train("low lower lowest", 260, progress=False)
        >>> tok.encode("a<|endoftext|>", allowed_special={"<|endoftext|>"})
        [97, 259]
        >>> len(tok.encode("a<|endoftext|>"))  # not allowed: its 13 bytes (no merge applies)
        14
        """
        check_str(text, f"{type(self).__name__}.encode")
        allowed = self._allowed_special(allowed_special)
        if not allowed:
            return self.encode_ordinary(text)
        ids: list[int] = []
        for k, part in enumerate(split_specials(text, allowed)):
            if k % 2:  # odd places hold the special tokens
                ids.append(self._special[part])
            elif part:
                ids.extend(self.encode_ordinary(part))
        return ids

    def _allowed_special(self, allowed_special: str | Collection[str]) -> list[str]:
        if allowed_special == "all":
            return list(self._special)
        if allowed_special == "none":
            return []
        if isinstance(allowed_special, str):
            raise ValueError(f"allowed_special must be 'all', 'none' or a set of special tokens; got the "
                             f"str {allowed_special!r}; write {{{allowed_special!r}}} for a set of one")
        unknown = [s for s in allowed_special if s not in self._special]
        if unknown:
            raise ValueError(f"allowed_special names {unknown}, which are not special tokens of this "
                             f"tokenizer; its special tokens are {list(self._special)}")
        return list(allowed_special)

    def decode(self, ids: Iterable[int]) -> str:
        """The text of `ids`: their bytes joined, decoded as UTF-8 (invalid bytes become U+FFFD)."""
        if isinstance(ids, (str, bytes)):
            raise TypeError(f"decode expects a sequence of int ids, got a {type(ids).__name__}")
        ids = list(ids)
        try:
            if ids and (min(ids) < 0 or max(ids) >= len(self._decoder)):  # bad ids: token_bytes says which
                return b"".join(map(self.token_bytes, ids)).decode("utf-8", errors="replace")
            return b"".join([self._decoder[i] for i in ids]).decode("utf-8", errors="replace")
        except TypeError:
            bad = next(i for i in ids if not hasattr(i, "__index__"))
            raise TypeError(f"decode expects int ids, got {type(bad).__name__}: {bad!r:.40}") from None

    def clear_cache(self) -> None:
        """Forget the cached chunk encodings (to time encoding from cold)."""
        self._cache.clear()

    # --- files ----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        """Write the tokenizer as UTF-8 JSON: ``{"format": "lmcourse.bpe", "version": 1, "class":
        ..., "pattern": ..., "merges": [[left, right], ...], "special_tokens": {token: id}}``.
        The merges in order rebuild the whole vocabulary. An existing file is kept unless
        ``overwrite=True``. A tokenizer made by :meth:`from_vocab` cannot be saved: keep its files."""
        if self._ids is not None or list(self._special.values()) != list(range(len(self._vocab), self.vocab_size)):
            raise ValueError(f"{type(self).__name__}.save writes tokenizers trained here; this one was "
                             f"built by from_vocab with its own ids: keep the files it was built from")
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it")
        record = {"format": FORMAT, "version": 1, "class": type(self).__name__, "pattern": self.pattern,
                  "merges": [list(pair) for pair in self._merges], "special_tokens": self._special}
        path.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ByteBPE:
        """Read a tokenizer written by :meth:`save` (with the same class or pattern)."""
        path = Path(path)
        merges, specials = read_record(path, cls)
        tokenizer = cls()
        try:
            tokenizer._set_merges(merges, list(specials))
        except ValueError as error:
            raise ValueError(f"{path} is not a valid tokenizer file: {error}") from None
        if tokenizer._special != specials:
            raise ValueError(f"{path}: the special tokens' ids {specials} do not follow the "
                             f"{len(tokenizer._vocab)} byte and merged tokens (expected {tokenizer._special})")
        return tokenizer

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(vocab_size={self.vocab_size}, merges={len(self._merges)}, "
                f"special_tokens={list(self._special)})")


class BasicBPE(ByteBPE):
    """Byte-level BPE without pre-tokenization: the whole text is one chunk, so merges cross word
    boundaries and punctuation (tokens such as ``"e t"`` or ``"s, "``).

    Training and encoding re-read the whole text for every merge, so keep the text to tens of
    kilobytes; it is here to show what GPT-2's regular expression buys.

    >>> BasicBPE().pretokenize("I'll pay!")
    ["I'll pay!"]
    """

    pattern = None


def _merge_ids(merges: Iterable[tuple[bytes, bytes]]) -> list[Pair]:
    """Merges given as byte strings -> pairs of our ids (bytes first, then merged tokens as made)."""
    token_id = {bytes([b]): b for b in range(256)}
    pairs = []
    for rank, (left, right) in enumerate(merges):
        if left not in token_id or right not in token_id:
            raise ValueError(f"merge {rank} is ({left!r}, {right!r}), but a side is neither a byte nor "
                             f"made by an earlier merge")
        pairs.append((token_id[left], token_id[right]))
        token_id.setdefault(left + right, len(token_id))
    return pairs


def _external_ids(ours: list[bytes], vocab: Mapping[bytes, int], specials: Mapping[str, int]
                  ) -> tuple[list[int | None] | None, list[bytes]]:
    """The given id of each of our tokens (None for a byte left out; the whole list None where the ids
    are ours), and each given id's bytes."""
    missing = [token for token in ours[256:] if token not in vocab]
    if missing:
        raise ValueError(f"{len(missing)} merged token(s) are not in vocab, e.g. {missing[0]!r}")
    spelled = {**{i: token for token, i in vocab.items()}, **{i: s.encode("utf-8") for s, i in specials.items()}}
    if len(spelled) != len(vocab) + len(specials):
        raise ValueError("two tokens (or a token and a special token) share an id; each id must be used once")
    if not all(type(i) is int for i in spelled) or sorted(spelled) != list(range(len(spelled))):
        raise ValueError(f"the ids of vocab and special_tokens must be the ints 0 to {len(spelled) - 1}, "
                         f"each used once")
    ids = [vocab.get(token) for token in ours]
    return (None if ids == list(range(len(ours))) else ids), [spelled[i] for i in range(len(spelled))]
