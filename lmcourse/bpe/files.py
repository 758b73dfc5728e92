"""The tokenizer's file: UTF-8 JSON holding the pre-tokenization pattern, the merges in order and the
special tokens, checked field by field on reading (:meth:`lmcourse.bpe.ByteBPE.save` and ``load``).

The merges in order rebuild the whole vocabulary, so the file stores nothing else. Left out: GPT-2's
own ``encoder.json`` and ``vocab.bpe`` (read them with :func:`lmcourse.bpe.unicode_to_bytes` and
:meth:`lmcourse.bpe.ByteBPE.from_vocab`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lmcourse.bpe.merging import Pair

__all__ = ["FORMAT", "read_record"]

FORMAT = "lmcourse.bpe"


def read_record(path: Path, cls: type) -> tuple[list[Pair], dict[str, int]]:
    """The merges and special tokens of a file written by ``cls.save``, after checking each field."""
    if not path.is_file():
        raise FileNotFoundError(f"no tokenizer file at {path} (write one with tokenizer.save(path))")
    try:
        record = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not a tokenizer file written by {cls.__name__}.save: "
                         f"it is not valid UTF-8 JSON ({error})") from None
    return _check_record(record, path, cls)


def _check_record(record: Any, path: Path, cls: type) -> tuple[list[Pair], dict[str, int]]:
    def bad(what: str) -> ValueError:
        return ValueError(f"{path} is not a valid tokenizer file: {what}")

    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise bad(f"expected a JSON object with \"format\": \"{FORMAT}\" (as written by {cls.__name__}.save)")
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
