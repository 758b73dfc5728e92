"""The offline corpora every chapter trains and tests on, with fixed train/valid/test splits,
and where the book's files live (the repository's ``data/`` folder, the cache directory).

Chapter 1 (Background) introduces them; all models in the book are compared on the same
held-out text. :func:`load_corpus` returns a :class:`Corpus` split *by document*: ``"wiki"``
(96 English Wikipedia articles from gensim's test data, cleaned by
:mod:`lmcourse.data.cleaning`) and ``"lee"`` (293 short news articles, also from gensim's test
data). No network is needed; the cleaned text is cached on disk.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lmcourse._io import DATA_DIR, atomic_write_text, file_digest
from lmcourse.data.cleaning import CLEAN_VERSION, lee_documents, wiki_documents

__all__ = ["SPLITS", "CORPUS_NAMES", "Corpus", "load_corpus", "load_documents", "cache_dir", "data_file", "gensim_datapath"]

SPLITS = ("train", "valid", "test")


def cache_dir() -> Path:
    """Where lmcourse keeps derived and downloaded data: ``$LMCOURSE_CACHE`` if set,
    else ``~/.cache/lmcourse``. The directory is not created here."""
    env = os.environ.get("LMCOURSE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lmcourse"


def data_file(name: str) -> Path:
    """A file of the repository's ``data/`` folder (each is described in ``data/README.md``).

    >>> data_file("results.csv").name
    'results.csv'
    """
    path = DATA_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: data_file() reads the files that come with the book's "
                                f"repository (see data/README.md); run from a full clone of it")
    return path


def _split_of(key: str) -> str:
    """Stable split for a document: SHA-256 of its key, modulo 10 -> 8 train : 1 : 1."""
    bucket = int(hashlib.sha256(key.encode("utf-8")).hexdigest(), 16) % 10
    return "valid" if bucket == 8 else "test" if bucket == 9 else "train"


@dataclass(frozen=True)
class Corpus:
    """A text corpus split by document into train/valid/test lists of paragraph lines.

    Lines never contain a newline and are never empty. Treat the lists as read-only:
    :func:`load_corpus` hands the same object to every caller.
    """

    name: str
    train: list[str]
    valid: list[str]
    test: list[str]

    @classmethod
    def from_documents(cls, name: str, documents: Iterable[tuple[str, Sequence[str]]]) -> Corpus:
        """Build a corpus from ``(key, lines)`` pairs, sending each whole document to the
        split given by a hash of its key (about 80/10/10). Lines are stripped, empty
        ones dropped, and embedded newlines split."""
        splits: dict[str, list[str]] = {s: [] for s in SPLITS}
        seen: set[str] = set()
        for key, lines in documents:
            if isinstance(lines, str):
                raise TypeError(f"document {key!r}: lines must be a list of strings, got one str")
            if key in seen:
                raise ValueError(f"duplicate document key {key!r}")
            seen.add(key)
            clean = [part.strip() for line in lines for part in line.split("\n")]
            splits[_split_of(key)].extend(part for part in clean if part)
        empty = [s for s in SPLITS if not splits[s]]
        if empty:
            raise ValueError(
                f"corpus {name!r}: split(s) {empty} got no text from {len(seen)} document(s); "
                "documents are assigned ~80/10/10 by a hash of their key, so give at least "
                "~30 non-empty documents")
        return cls(name, splits["train"], splits["valid"], splits["test"])

    def _lines(self, split: str) -> list[str]:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        return getattr(self, split)

    def text(self, split: str) -> str:
        """The split as one string, lines joined by ``"\\n"``."""
        return "\n".join(self._lines(split))

    def num_chars(self, split: str) -> int:
        """``len(self.text(split))``: characters including the joining newlines."""
        lines = self._lines(split)
        return sum(map(len, lines)) + max(len(lines) - 1, 0)

    def __repr__(self) -> str:  # the default would print megabytes of text
        sizes = ", ".join(f"{s}={len(self._lines(s))} lines" for s in SPLITS)
        return f"Corpus(name={self.name!r}, {sizes})"


_WIKI_FILE = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
_LEE_FILE = "lee_background.cor"
_SOURCES = {"wiki": (_WIKI_FILE, wiki_documents), "lee": (_LEE_FILE, lee_documents)}
CORPUS_NAMES: tuple[str, ...] = tuple(_SOURCES)


def gensim_datapath(filename: str) -> Path:
    """Path of a file in gensim's test data, found without importing gensim (slow).

    The offline corpora and :mod:`lmcourse.classify`'s sentiment data come from there.
    """
    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the offline corpora come from gensim's test data: pip install gensim")
    path = Path(list(spec.submodule_search_locations)[0]) / "test" / "test_data" / filename
    if not path.is_file():
        raise FileNotFoundError(f"gensim is installed but its test data file is missing: {path}")
    return path


def _load_corpus_from(name: str, source: Path, cache_root: Path) -> Corpus:
    """Read the cleaned corpus from the disk cache, or build it and write the cache."""
    filename, make_documents = _SOURCES[name]
    digest = file_digest(source)
    cache_file = cache_root / "corpora" / f"{name}-{digest[:16]}-v{CLEAN_VERSION}.json"
    try:
        cached = json.loads(cache_file.read_text(encoding="utf-8"))
        if cached.get("source_sha256") == digest:
            return Corpus(name, cached["train"], cached["valid"], cached["test"])
    except (OSError, ValueError, KeyError, AttributeError):
        pass  # missing or damaged cache: rebuild it
    corpus = Corpus.from_documents(name, make_documents(source))
    payload = {"name": name, "source": filename, "source_sha256": digest,
               "clean_version": CLEAN_VERSION,
               **{s: getattr(corpus, s) for s in SPLITS}}
    try:
        atomic_write_text(cache_file, json.dumps(payload, ensure_ascii=False))
    except OSError as err:
        warnings.warn(f"could not write the corpus cache {cache_file}: {err}", stacklevel=3)
    return corpus


@functools.cache
def _cached_corpus(name: str) -> Corpus:
    return _load_corpus_from(name, gensim_datapath(_SOURCES[name][0]), cache_dir())


@functools.cache
def _cached_documents(name: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    source = gensim_datapath(_SOURCES[name][0])
    cache_file = cache_dir() / "corpora" / f"{name}-{file_digest(source)[:16]}-v{CLEAN_VERSION}-documents.json"
    try:
        return tuple((key, tuple(lines)) for key, lines in json.loads(cache_file.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        pass  # missing or damaged cache: rebuild it
    documents = [(key, [part.strip() for line in lines for part in line.split("\n") if part.strip()])
                 for key, lines in _SOURCES[name][1](source)]
    try:
        atomic_write_text(cache_file, json.dumps(documents, ensure_ascii=False))
    except OSError as err:
        warnings.warn(f"could not write the document cache {cache_file}: {err}", stacklevel=3)
    return tuple((key, tuple(lines)) for key, lines in documents)


def load_documents(name: str = "wiki", split: str | None = None) -> list[tuple[str, tuple[str, ...]]]:
    """The corpus as ``(key, paragraphs)`` per document (the title, for ``"wiki"``), in source order;
    with `split`, only the documents :func:`load_corpus` puts in that split. Joined in order, a
    split's paragraphs are exactly ``load_corpus(name).<split>``.

    >>> [title for title, _ in load_documents("wiki", "test")][:3]
    ['Alabama', 'Animation', 'Abacus']
    """
    if name not in _SOURCES:
        raise ValueError(f"unknown corpus {name!r}; available: {', '.join(CORPUS_NAMES)}")
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS} or None (every document)")
    return [(key, lines) for key, lines in _cached_documents(name) if split is None or _split_of(key) == split]


def load_corpus(name: str = "wiki") -> Corpus:
    """Load an offline English corpus with fixed train/valid/test splits.

    ``"wiki"``: the 96 Wikipedia articles of gensim's test excerpt that are not
    redirects, disambiguation pages or stubs, markup stripped, one paragraph per line
    (2.6M characters). ``"lee"``: the Lee news corpus, 293 distinct articles, one per
    line (0.35M characters). Whole documents go to one split, chosen by a hash of the
    title (wiki) or of the first 100 characters (lee), so the held-out text is the same
    in every chapter. The cleaned text is cached under :func:`cache_dir`; repeated
    calls return the same object.
    """
    if name not in _SOURCES:
        raise ValueError(f"unknown corpus {name!r}; available: {', '.join(CORPUS_NAMES)}")
    return _cached_corpus(name)
