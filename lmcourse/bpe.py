"""Byte-level byte-pair encoding (BPE) as GPT-2 uses it: learn merges from text, encode, decode.

Chapter 6 (GPT) builds it. BPE (Gage, 1994; brought to NLP by Sennrich et al., 2016) starts from
single symbols and keeps merging the most frequent adjacent pair into a new symbol. GPT-2 (Radford
et al., 2019) runs it on UTF-8 *bytes*, so any string can be encoded with only 256 base tokens and
no unknown token, and it first cuts the text into chunks with a regular expression
(:data:`GPT2_PATTERN`: contractions, letters, digits, other symbols, whitespace) and never merges
across chunks: " dog." and " dog!" both start with the chunk " dog", which is encoded the same way
in both, and no token spans two words.

- :class:`ByteBPE` trains, encodes, decodes, and saves and loads itself as JSON. Ids 0-255 are the
  bytes, then come the merged tokens in the order they were learned, then the special tokens
  (``<|endoftext|>``), as in GPT-2's vocabulary.
- :class:`BasicBPE` is the same without pre-tokenization (the whole text is one chunk), to show
  what the regular expression buys.
- :func:`pair_counts` and :func:`merge` are the two steps of BPE on a list of ids;
  :func:`compression` measures bytes per token; :func:`train_hf_bpe` trains the ``tokenizers``
  library's byte-level BPE the same way, as an oracle.

The rules that decide which merges are learned:

- Pairs are counted over the *distinct* chunks of the text, each weighted by how often it occurs.
  After a merge only the counts of the pairs beside each merged place change, and only those are
  updated (never a full recount), so 1 MB trains in seconds.
- The most frequent pair wins. Ties go to the smallest pair of ids (left id first, then right id):
  bytes rank by value, merged tokens by when they were made. ``tokenizers`` uses the same rule on
  its own ids, which number the bytes in the order of GPT-2's printable stand-ins (so a space, shown
  as "Ġ", ranks after the letters); the two learn the same merges until the first tie that the two
  byte orders break differently.
- Two merges could spell the same bytes (``"t" + "he"`` and ``"th" + "e"``; rare in practice). As
  in ``tokenizers``, the later one reuses the earlier one's id, so no two ids share a byte string
  and ``len(merges)`` can exceed ``vocab_size - 256 - len(special_tokens)``.
- Special tokens are cut out of the training text, so no merge includes or crosses one.

Encoding applies, within each chunk, the lowest-ranked merge present at all its places from left to
right, and repeats (as GPT-2's ``encoder.py`` does); chunk encodings are cached.

Left out: the speed of tiktoken or ``tokenizers`` (Rust), reading or writing GPT-2's own files
(``encoder.json`` with its printable stand-in characters, ``vocab.bpe``), Unicode normalisation,
BPE-dropout, and other pre-tokenization patterns (a subclass can set its own ``pattern``).
"""

from __future__ import annotations

import heapq
import json
import operator
import os
import warnings
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

import regex

__all__ = ["GPT2_PATTERN", "pair_counts", "merge", "ByteBPE", "BasicBPE", "compression", "train_hf_bpe"]

# GPT-2's pre-tokenizer (openai/gpt-2, src/encoder.py): English contractions; letters, digits and
# other symbols, each with at most one leading space; runs of whitespace, of which the last space
# is left to start the next word (``\s+(?!\S)``); any whitespace left at the end of the text.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

Pair = tuple[int, int]
_FORMAT = "lmcourse.bpe"


def _check_str(text: object, who: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"{who} expects a str, got {type(text).__name__}: {text!r:.60}")
    return text


def pair_counts(ids: Sequence[int], weight: int = 1, counts: dict[Pair, int] | None = None) -> dict[Pair, int]:
    """Count each adjacent pair in `ids`, `weight` times per occurrence, adding into `counts`.

    >>> pair_counts([97, 97, 97, 98])  # "aaab": (a, a) twice, (a, b) once
    {(97, 97): 2, (97, 98): 1}
    """
    counts = {} if counts is None else counts
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + weight
    return counts


def merge(ids: Sequence[int], pair: Pair, new_id: int) -> list[int]:
    """Replace each occurrence of `pair` in `ids` by `new_id`, from left to right without overlaps.

    >>> merge([97, 97, 97, 98], (97, 97), 256)  # "aaab": the first two a's merge, the third stays
    [256, 97, 98]
    """
    first, second = pair
    out, i, n = [], 0, len(ids)
    while i < n:
        if ids[i] == first and i + 1 < n and ids[i + 1] == second:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


# ---------------------------------------------------------------------------
# Training: the most frequent pair, merged in every chunk that holds it
# ---------------------------------------------------------------------------

class _PairIndex:
    """Weighted pair counts over the distinct chunks (`words`), which chunks hold each pair, and a
    heap of ``(-count, pair)``. Heap entries may be stale; :meth:`best` re-checks them."""

    def __init__(self, words: list[list[int]], freqs: list[int]) -> None:
        self.words, self.freqs = words, freqs
        self.counts: dict[Pair, int] = defaultdict(int)
        self.where: dict[Pair, set[int]] = defaultdict(set)  # may list chunks that lost the pair
        for w, (word, freq) in enumerate(zip(words, freqs)):
            for pair in zip(word, word[1:]):
                self.counts[pair] += freq
                self.where[pair].add(w)
        self.heap = [(-count, pair) for pair, count in self.counts.items()]
        heapq.heapify(self.heap)

    def best(self) -> Pair | None:
        """The most frequent pair (ties: smallest ids), or None when no pair is left.

        A pair's count only falls, except for pairs with the newest id, which :meth:`merge` pushes
        afresh; so the first entry popped whose stored count is still right is the true maximum."""
        while self.heap:
            stored, pair = heapq.heappop(self.heap)
            count = self.counts.get(pair, 0)
            if count > 0 and count == -stored:
                return pair
            if count > 0:  # stale: put it back with its current count
                heapq.heappush(self.heap, (-count, pair))
        return None

    def merge(self, pair: Pair, new_id: int) -> None:
        """Merge `pair` = (a, b) into `new_id` in every chunk that holds it, as :func:`merge` does.

        Only the pairs around each merged place change: a left neighbour x turns (x, a) into
        (x, new), a right neighbour y turns (b, y) into (new, y). Where two places are adjacent
        (a b a b), the (new, a) added by the first is taken back by the second, leaving (new, new).
        """
        a, b = pair
        new_pairs: set[Pair] = set()

        def move(old: Pair, new: Pair, freq: int, w: int) -> None:
            self.counts[old] -= freq
            self.counts[new] += freq
            self.where[new].add(w)
            new_pairs.add(new)

        for w in self.where.pop(pair):
            word, freq = self.words[w], self.freqs[w]
            out, i, n = [], 0, len(word)
            while i < n:
                if word[i] == a and i + 1 < n and word[i + 1] == b:
                    if out:
                        move((out[-1], a), (out[-1], new_id), freq, w)
                    if i + 2 < n:
                        move((b, word[i + 2]), (new_id, word[i + 2]), freq, w)
                    out.append(new_id)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            self.words[w] = out
        del self.counts[pair]
        for p in new_pairs:
            if self.counts[p] > 0:
                heapq.heappush(self.heap, (-self.counts[p], p))


def _learn_merges(words: list[list[int]], freqs: list[int], vocab: list[bytes], target: int,
                  progress: bool) -> list[Pair]:
    """Merge pairs until `vocab` (extended in place) holds `target` byte strings or no pair is left."""
    from tqdm.auto import tqdm

    token_id = {token: i for i, token in enumerate(vocab)}
    index = _PairIndex(words, freqs)
    merges: list[Pair] = []
    with tqdm(total=target - len(vocab), disable=not progress, desc="BPE merges", unit="token") as bar:
        while len(vocab) < target and (pair := index.best()) is not None:
            token = vocab[pair[0]] + vocab[pair[1]]
            if token not in token_id:  # else an earlier merge spelled the same bytes: reuse its id
                token_id[token] = len(vocab)
                vocab.append(token)
                bar.update(1)
            index.merge(pair, token_id[token])
            merges.append(pair)
    return merges


# ---------------------------------------------------------------------------
# The tokenizer
# ---------------------------------------------------------------------------

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
        self._vocab = [bytes([b]) for b in range(256)]
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
        self._cache: dict[str, list[int]] = {}

    @property
    def vocab_size(self) -> int:
        """Number of ids: 256 bytes + merged tokens + special tokens."""
        return len(self._vocab) + len(self._special)

    @property
    def merges(self) -> list[Pair]:
        """The learned merges ``(left id, right id)`` in the order they were learned (= their rank)."""
        return list(self._merges)

    @property
    def special_tokens(self) -> dict[str, int]:
        """Each special token and its id."""
        return dict(self._special)

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes that `token_id` stands for (a special token: its UTF-8 spelling)."""
        i = operator.index(token_id)
        if 0 <= i < len(self._vocab):
            return self._vocab[i]
        for special, j in self._special.items():
            if i == j:
                return special.encode("utf-8")
        raise IndexError(f"token id {i} is out of range for a vocabulary of {self.vocab_size} ids "
                         f"(valid ids are 0 to {self.vocab_size - 1})")

    # --- training -------------------------------------------------------------------------
    def pretokenize(self, text: str) -> list[str]:
        """Cut `text` into the chunks that merges never cross.

        >>> ByteBPE().pretokenize("I'll pay 100 dollars!  OK?")
        ['I', "'ll", ' pay', ' 100', ' dollars', '!', ' ', ' OK', '?']
        """
        if self.pattern is None:
            return [text] if text else []
        return regex.findall(self.pattern, text)

    def train(self, text: str, vocab_size: int, *, special_tokens: Sequence[str] = ("<|endoftext|>",),
              progress: bool = True) -> ByteBPE:
        """Learn merges from `text` until there are `vocab_size` ids (bytes + merged + special).

        Replaces any earlier training and returns the tokenizer itself. If the text runs out of
        pairs first, training stops with a warning and a smaller vocabulary.
        """
        _check_str(text, f"{type(self).__name__}.train")
        specials = _check_special_tokens(special_tokens)
        vocab_size = operator.index(vocab_size)
        if vocab_size < 256 + len(specials):
            raise ValueError(f"vocab_size={vocab_size} is too small: the 256 byte tokens and "
                             f"{len(specials)} special token(s) already need {256 + len(specials)} ids")
        if not text:
            raise ValueError("the training text is empty; give some text to learn merges from")
        chunks: Counter[str] = Counter()
        for part in _split_specials(text, specials)[::2]:  # even places: the text between specials
            chunks.update(self.pretokenize(part))
        if not chunks:
            raise ValueError("the training text holds only special tokens; there is nothing to learn from")
        words = [list(chunk.encode("utf-8")) for chunk in chunks]
        vocab = [bytes([b]) for b in range(256)]
        merges = _learn_merges(words, list(chunks.values()), vocab, vocab_size - len(specials), progress)
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
        return ids

    def encode_ordinary(self, text: str) -> list[int]:
        """Encode `text`, treating special-token spellings as ordinary text."""
        _check_str(text, f"{type(self).__name__}.encode")
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
        _check_str(text, f"{type(self).__name__}.encode")
        allowed = self._allowed_special(allowed_special)
        if not allowed:
            return self.encode_ordinary(text)
        ids: list[int] = []
        for k, part in enumerate(_split_specials(text, allowed)):
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
            if ids and (min(ids) < 0 or max(ids) >= len(self._vocab)):  # special tokens or bad ids
                return b"".join(map(self.token_bytes, ids)).decode("utf-8", errors="replace")
            return b"".join([self._vocab[i] for i in ids]).decode("utf-8", errors="replace")
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
        ``overwrite=True``."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it")
        record = {"format": _FORMAT, "version": 1, "class": type(self).__name__, "pattern": self.pattern,
                  "merges": [list(pair) for pair in self._merges], "special_tokens": self._special}
        path.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ByteBPE:
        """Read a tokenizer written by :meth:`save` (with the same class or pattern)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no tokenizer file at {path} (write one with tokenizer.save(path))")
        try:
            record = json.loads(path.read_bytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{path} is not a tokenizer file written by {cls.__name__}.save: "
                             f"it is not valid UTF-8 JSON ({error})") from None
        tokenizer = cls()
        merges, specials = _check_record(record, path, cls)
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


# ---------------------------------------------------------------------------
# Helpers: special tokens, file checks, measurement, the tokenizers oracle
# ---------------------------------------------------------------------------

def _check_special_tokens(special_tokens: Sequence[str]) -> list[str]:
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


def _split_specials(text: str, specials: Collection[str]) -> list[str]:
    """``[text, special, text, special, ..., text]``: the specials at the odd places (longest
    spelling first where two overlap)."""
    if not specials:
        return [text]
    alternatives = "|".join(regex.escape(s) for s in sorted(specials, key=len, reverse=True))
    return regex.split(f"({alternatives})", text)


def _check_record(record: Any, path: Path, cls: type[ByteBPE]) -> tuple[list[Pair], dict[str, int]]:
    """The merges and special tokens of a saved tokenizer, after checking each field."""
    def bad(what: str) -> ValueError:
        return ValueError(f"{path} is not a valid tokenizer file: {what}")

    if not isinstance(record, dict) or record.get("format") != _FORMAT:
        raise bad(f"expected a JSON object with \"format\": \"{_FORMAT}\" (as written by {cls.__name__}.save)")
    if record.get("version") != 1:
        raise bad(f"unsupported version {record.get('version')!r} (this lmcourse reads version 1)")
    missing = [k for k in ("class", "pattern", "merges", "special_tokens") if k not in record]
    if missing:
        raise bad(f"missing field(s) {missing}")
    if record["pattern"] != cls.pattern:
        raise bad(f"it was saved by {record['class']} with pre-tokenization pattern {record['pattern']!r}, "
                  f"but {cls.__name__} uses {cls.pattern!r}; load it with {record['class']}.load")
    merges = record["merges"]
    if not isinstance(merges, list):
        raise bad(f"'merges' must be a list of [left id, right id] pairs, got {type(merges).__name__}")
    for k, pair in enumerate(merges):
        if not (isinstance(pair, list) and len(pair) == 2 and all(type(i) is int for i in pair)):
            raise bad(f"merge {k} is {pair!r}, not a [left id, right id] pair of ints")
    specials = record["special_tokens"]
    if not (isinstance(specials, dict) and all(isinstance(s, str) and s and type(i) is int
                                               for s, i in specials.items())):
        raise bad("'special_tokens' must be an object mapping each special token to its int id")
    return [(a, b) for a, b in merges], specials


def compression(tokenizer: Any, text: str) -> float:
    """UTF-8 bytes per token of `text` (higher: fewer, longer tokens). Works with any tokenizer
    whose ``encode(text)`` returns ids or, like ``tokenizers.Tokenizer``, an object with ``.ids``.

    >>> compression(ByteBPE(), "héllo")  # untrained: one token per byte
    1.0
    """
    _check_str(text, "compression")
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

    _check_str(text, "train_hf_bpe")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(special_tokens), min_frequency=0,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator([text], trainer=trainer)
    return tokenizer
