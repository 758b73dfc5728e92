"""Text to train and test language models on, and the batching that feeds it to them.

Chapter 1 (Background) introduces these pieces; every later chapter uses them, so that
all models in the book are compared on the same held-out text.

- **Offline corpora.** :func:`load_corpus` returns a :class:`Corpus` with fixed
  train/valid/test splits made *by document*: ``"wiki"`` (96 English Wikipedia
  articles from gensim's test data, markup stripped) and ``"lee"`` (293 short news
  articles, also from gensim's test data). No network is needed.
- **Sentences.** :func:`sentences` splits paragraphs with a small regular expression.
- **Tokenized sentences and id streams.** :func:`tokenized_sentences` (what the n-gram
  models read) and :func:`token_stream` (what the neural models read: the same tokens, each
  sentence closed by ``"</s>"``, so every model predicts the same tokens).
- **LM batching.** :func:`batchify` and :func:`get_batch`, as in PyTorch's
  ``word_language_model`` example.
- **A language with a known entropy rate.** :class:`MarkovSource` (defined in
  :mod:`lmcourse.markov`, re-exported here).
- **WikiText-2.** :func:`load_wikitext2` downloads the standard benchmark once, checks
  its MD5 and caches it; offline it fails with a message saying where to put the file.

Left out: tokenization (see :mod:`lmcourse.text` and :mod:`lmcourse.bpe`), streaming of
corpora too large for memory, shuffling, and any data that must be fetched at run time.
The Wikipedia cleaner is a handful of rules on top of gensim's ``filter_wiki``: templates
that carried words (dates, foreign spellings) leave small holes such as ``Apollo (,
Apollōn)``; a full MediaWiki parser would be needed to fill them.
"""

from __future__ import annotations

import bz2
import functools
import hashlib
import importlib.util
import json
import os
import re
import tempfile
import warnings
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from lmcourse.markov import MarkovSource
from lmcourse.text import Vocab, get_tokenizer

__all__ = [
    "SPLITS", "CORPUS_NAMES", "Corpus", "load_corpus", "cache_dir", "data_file", "sentences",
    "tokenized_sentences", "token_stream", "batchify", "get_batch", "MarkovSource",
    "load_wikitext2", "DatasetUnavailableError", "ChecksumError",
    "WIKITEXT2_URLS", "WIKITEXT2_MD5",
]

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
    path = Path(__file__).resolve().parent.parent / "data" / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: data_file() reads the files that come with the book's "
                                f"repository (see data/README.md); run from a full clone of it")
    return path


def _digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file ("sha256", "md5"), read in 1 MiB blocks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _atomic_write_text(path: Path, text: str) -> None:
    """Write to a temporary file in the same directory, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------
# Corpus and its splits
# ---------------------------------------------------------------------------

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


# -- the Wikipedia excerpt: MediaWiki XML -> paragraphs of prose --------------

_WIKI_FILE = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
_LEE_FILE = "lee_background.cor"
_CLEAN_VERSION = 1  # bump when the cleaning rules change: invalidates disk caches

_DROP_SECTIONS = {  # sections of references and link lists, not prose
    "references", "external links", "see also", "further reading", "notes", "footnotes",
    "bibliography", "sources", "citations", "works cited", "gallery", "notes and references",
    "primary sources", "secondary sources", "filmography", "discography", "works",
    "publications", "selected works", "literature", "list of works",
}
_RE_GALLERY = re.compile(r"<gallery\b.*?</gallery>", re.S | re.I)
_RE_FILE_LINK = re.compile(r"\[\[\s*(?:file|image|media)\s*:", re.I)
_RE_HEADING = re.compile(r"^(=+)\s*(.*?)\s*\1$")
_RE_LIST_MARK = re.compile(r"^[*#:;]+\s*")
_RE_BOLD_ITALIC = re.compile(r"'{2,}")
_RE_EMPTY_PARENS = re.compile(r"\(\s*[,;:]*\s*\)")
_RE_PAREN_JUNK = re.compile(r"\(\s*[,;:]+\s*|\(\s+")  # "(;, Phoibos" -> "(Phoibos"
_RE_SPACE_PUNCT = re.compile(r"\s+([,.;:!?)])")
_RE_COMMAS = re.compile(r",(\s*,)+")
_RE_WS = re.compile(r"\s+")
_RE_PROSE_END = re.compile(r"[.!?\"')]$")
_RE_NOT_PROSE = re.compile(r"^(?:see also|main articles?|further information)\b|\bISBN\b", re.I)


def _strip_balanced(text: str, opening: re.Pattern[str], open_tok: str, close_tok: str) -> str:
    """Remove each match of `opening` up to its balanced `close_tok` (nesting counted)."""
    out, i = [], 0
    while m := opening.search(text, i):
        out.append(text[i:m.start()])
        depth, k = 1, m.end()
        while depth and k < len(text):
            if text.startswith(open_tok, k):
                depth, k = depth + 1, k + len(open_tok)
            elif text.startswith(close_tok, k):
                depth, k = depth - 1, k + len(close_tok)
            else:
                k += 1
        i = k
    out.append(text[i:])
    return "".join(out)


def _clean_wiki_article(raw: str) -> list[str]:
    """One article's wikitext -> paragraphs of plain prose (one per line)."""
    from gensim.corpora.wikicorpus import filter_wiki

    raw = _RE_GALLERY.sub("", raw)
    raw = _strip_balanced(raw, re.compile(r"\{\|"), "{|", "|}")  # tables
    raw = _strip_balanced(raw, _RE_FILE_LINK, "[[", "]]")  # images with their captions
    text = filter_wiki(raw)  # gensim: templates, refs, tags, links -> their text
    paragraphs, skip_level = [], 0
    for line in text.split("\n"):
        line = line.strip()
        if heading := _RE_HEADING.match(line):
            level = len(heading.group(1))
            if not (skip_level and level > skip_level):  # a subsection of a dropped one
                skip_level = level if heading.group(2).lower() in _DROP_SECTIONS else 0
            continue
        if skip_level or not line or line[0] in "|!{}":  # table leftovers
            continue
        is_list_item = bool(_RE_LIST_MARK.match(line))
        line = _RE_LIST_MARK.sub("", line)
        line = _RE_BOLD_ITALIC.sub("", line).replace("{{", "").replace("}}", "")
        line = _RE_EMPTY_PARENS.sub("", line)
        line = _RE_PAREN_JUNK.sub("(", line)
        line = _RE_COMMAS.sub(",", line)
        line = _RE_SPACE_PUNCT.sub(r"\1", line)
        line = _RE_WS.sub(" ", line).strip()
        if _RE_NOT_PROSE.search(line):  # hatnotes and book references
            continue
        # keep sentences: end punctuation and a few words (list items need more)
        if len(line.split()) >= (8 if is_list_item else 5) and _RE_PROSE_END.search(line):
            paragraphs.append(line)
    return paragraphs


def _wiki_documents(path: Path) -> list[tuple[str, list[str]]]:
    from gensim.corpora.wikicorpus import extract_pages

    documents = []
    with bz2.open(path) as f:
        for title, raw, _pageid in extract_pages(f, filter_namespaces=("0",)):
            if not raw or raw.lstrip().lower().startswith("#redirect"):
                continue
            if title.endswith("(disambiguation)"):
                continue
            paragraphs = _clean_wiki_article(raw)
            if sum(map(len, paragraphs)) >= 500:  # drops stubs and lists of links
                documents.append((title, paragraphs))
    return documents


def _lee_documents(path: Path) -> list[tuple[str, list[str]]]:
    """One article per line. The file repeats 7 articles verbatim (dropped here) and
    has 3 pairs that share their opening; keying by the first 100 characters keeps
    each pair in one split, so no held-out article is also in train."""
    groups: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line := line.strip():
            group = groups.setdefault(line[:100], [])
            if line not in group:
                group.append(line)
    return list(groups.items())


_SOURCES = {"wiki": (_WIKI_FILE, _wiki_documents), "lee": (_LEE_FILE, _lee_documents)}
CORPUS_NAMES: tuple[str, ...] = tuple(_SOURCES)


def _gensim_datapath(filename: str) -> Path:
    """Path of a file in gensim's test data, found without importing gensim (slow)."""
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
    digest = _digest(source, "sha256")
    cache_file = cache_root / "corpora" / f"{name}-{digest[:16]}-v{_CLEAN_VERSION}.json"
    try:
        cached = json.loads(cache_file.read_text(encoding="utf-8"))
        if cached.get("source_sha256") == digest:
            return Corpus(name, cached["train"], cached["valid"], cached["test"])
    except (OSError, ValueError, KeyError, AttributeError):
        pass  # missing or damaged cache: rebuild it
    corpus = Corpus.from_documents(name, make_documents(source))
    payload = {"name": name, "source": filename, "source_sha256": digest,
               "clean_version": _CLEAN_VERSION,
               **{s: getattr(corpus, s) for s in SPLITS}}
    try:
        _atomic_write_text(cache_file, json.dumps(payload, ensure_ascii=False))
    except OSError as err:
        warnings.warn(f"could not write the corpus cache {cache_file}: {err}", stacklevel=3)
    return corpus


@functools.cache
def _cached_corpus(name: str) -> Corpus:
    return _load_corpus_from(name, _gensim_datapath(_SOURCES[name][0]), cache_dir())


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


_RE_SENTENCE_END = re.compile(
    r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))"  # after . ! ? and an optional closing quote
    r"(?<!\bMr\.)(?<!\bMrs\.)(?<!\bDr\.)(?<!\bSt\.)(?<!\bJr\.)(?<!\bSr\.)(?<!\bvs\.)"
    r"(?<!\b[A-Z]\.)"  # not after an initial such as "J."
    r"\s+(?=[\"'(\[]?[A-Z0-9])"  # before a capital letter or digit
)


def sentences(lines: Iterable[str]) -> list[str]:
    """Split paragraph lines into sentences with a regular expression.

    A rough splitter: it breaks after ``.``, ``!`` or ``?`` followed by a capital or a
    digit, and knows only a few abbreviations.

    >>> sentences(["Dr. Who came. He saw! Did he win? Yes."])
    ['Dr. Who came.', 'He saw!', 'Did he win?', 'Yes.']
    """
    if isinstance(lines, str):
        raise TypeError("sentences() takes an iterable of lines, not one str; wrap it: [text]")
    out = []
    for line in lines:
        out.extend(s for s in (p.strip() for p in _RE_SENTENCE_END.split(line)) if s)
    return out


def tokenized_sentences(lines: Iterable[str], tokenizer: str = "basic_english") -> list[list[str]]:
    """The sentences of ``lines``, each a list of tokens; sentences with no tokens are dropped.

    >>> tokenized_sentences(["The cat sat. It purred!"])
    [['the', 'cat', 'sat', '.'], ['it', 'purred', '!']]
    """
    tokenize = get_tokenizer(tokenizer)
    return [tokens for s in sentences(lines) if (tokens := tokenize(s))]


def token_stream(sentences_: Sequence[Sequence[str]], vocab: Vocab, eos: str = "</s>") -> torch.Tensor:
    """One 1-D LongTensor of ids: ``eos``, then each sentence followed by ``eos``.

    The leading ``eos`` is the context of the first word, so a model that reads the stream predicts
    every word and every closing ``eos``: the same tokens the n-gram models of Chapter 2 predict.
    Words missing from ``vocab`` take its default index (set one, e.g. for ``"<unk>"``).

    >>> v = Vocab(["<unk>", "</s>", "a", "b"], default_index=0)
    >>> token_stream([["a", "b"], ["b", "z"]], v).tolist()
    [1, 2, 3, 1, 3, 0, 1]
    """
    if not isinstance(sentences_, Sequence) or isinstance(sentences_, (str, bytes)) or not all(
            isinstance(s, Sequence) and not isinstance(s, (str, bytes)) for s in sentences_):
        raise TypeError("token_stream needs a list of tokenized sentences (lists of str), e.g. "
                        "tokenized_sentences(corpus.train)")
    if eos not in vocab:
        raise ValueError(f"{eos!r} is not in the vocabulary; add it (e.g. as a special) or pass eos=...")
    eos_id = vocab[eos]
    ids = [eos_id]
    for sentence in sentences_:
        ids += vocab.lookup_indices(list(sentence))
        ids.append(eos_id)
    if len(ids) < 2:
        raise ValueError("token_stream got no sentences; pass at least one tokenized sentence")
    return torch.tensor(ids, dtype=torch.long)


# ---------------------------------------------------------------------------
# Batching for language models (as in PyTorch's word_language_model example)
# ---------------------------------------------------------------------------

def batchify(data: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Cut a 1-D stream of token ids into `batch_size` parallel streams.

    Drops the tokens that do not fill a whole row; column ``b`` is the ``b``-th
    contiguous slice of the stream.

    >>> batchify(torch.arange(11), 2)  # 11 tokens -> (5, 2); token 10 is dropped
    tensor([[0, 5],
            [1, 6],
            [2, 7],
            [3, 8],
            [4, 9]])
    """
    if not isinstance(data, torch.Tensor) or data.dtype != torch.long:
        got = f"a tensor of dtype {data.dtype}" if isinstance(data, torch.Tensor) else type(data).__name__
        raise TypeError(f"batchify needs a 1-D LongTensor of token ids, got {got}")
    if data.dim() != 1:
        raise ValueError(f"batchify needs a 1-D tensor of token ids, got shape {tuple(data.shape)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    n_steps = data.numel() // batch_size
    if n_steps < 2:
        raise ValueError(
            f"{data.numel()} tokens are too few for batch_size={batch_size}: need at least "
            f"{2 * batch_size} (two time steps: one input and its next-token target)")
    data = data[: n_steps * batch_size]  # (N,) trimmed to a multiple of B
    return data.view(batch_size, n_steps).t().contiguous()  # (B, T) -> (T, B)


def get_batch(source: torch.Tensor, i: int, bptt: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``i : i+T`` of a batchified `source` as input, the rows after them as target.

    ``T = min(bptt, len(source) - 1 - i)``, so the last batch may be shorter. Returns
    ``input`` of shape ``(T, B)`` and ``target`` of shape ``(T*B,)``: rows
    ``i+1 : i+1+T`` flattened, ready for ``F.cross_entropy(logits.view(-1, V), target)``.

    >>> x, y = get_batch(batchify(torch.arange(10), 2), 0, bptt=3)
    >>> x.shape, y.tolist()
    (torch.Size([3, 2]), [1, 6, 2, 7, 3, 8])
    """
    if not isinstance(source, torch.Tensor) or source.dim() != 2:
        got = f"shape {tuple(source.shape)}" if isinstance(source, torch.Tensor) else type(source).__name__
        raise ValueError(f"get_batch needs a (T, B) tensor from batchify, got {got}")
    if isinstance(bptt, bool) or not isinstance(bptt, int) or bptt < 1:
        raise ValueError(f"bptt must be a positive int, got {bptt!r}")
    if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(source) - 1:
        raise IndexError(
            f"i={i!r} out of range: source has {len(source)} steps, so 0 <= i <= {len(source) - 2}")
    seq_len = min(bptt, len(source) - 1 - i)
    inputs = source[i : i + seq_len]  # (T, B)
    target = source[i + 1 : i + 1 + seq_len].reshape(-1)  # (T, B) -> (T*B,)
    return inputs, target


# ---------------------------------------------------------------------------
# WikiText-2: download once, verify, cache
# ---------------------------------------------------------------------------

WIKITEXT2_URLS: tuple[str, ...] = (
    "https://wikitext.smerity.com/wikitext-2-v1.zip",  # the author's mirror
    "https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-v1.zip",  # original, gone since 2024
)
WIKITEXT2_MD5 = "542ccefacc6c27f945fb54453812b3cd"  # as in torchtext.datasets.WikiText2
_WIKITEXT2_ZIP = "wikitext-2-v1.zip"
_WIKITEXT2_MEMBERS = {s: f"wikitext-2/wiki.{s}.tokens" for s in SPLITS}


class DatasetUnavailableError(RuntimeError):
    """A dataset is neither cached nor downloadable (offline, or a dead URL)."""


class ChecksumError(DatasetUnavailableError):
    """A downloaded or user-supplied archive does not have the expected checksum."""


def _set_aside(path: Path) -> Path:
    """Rename a file that failed its checksum to ``<name>.bad`` (``.bad1``... if taken)."""
    target, n = path.with_name(path.name + ".bad"), 0
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.bad{n}")
    path.rename(target)
    return target


def _download(url: str, dest: Path, md5: str) -> None:
    """Stream `url` to a temporary file beside `dest`, check its MD5, rename to `dest`."""
    import requests
    from tqdm.auto import tqdm

    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        headers = {"User-Agent": "Mozilla/5.0 (compatible; lmcourse)"}  # the mirror rejects bare clients
        with os.fdopen(fd, "wb") as f, requests.get(url, stream=True, timeout=30, headers=headers) as r:
            r.raise_for_status()
            total = int(r.headers.get("content-length", 0)) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name) as bar:
                for chunk in r.iter_content(chunk_size=1 << 16):
                    f.write(chunk)
                    bar.update(len(chunk))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    actual = _digest(tmp, "md5")
    if actual != md5:
        bad = _set_aside(tmp)
        raise ChecksumError(f"MD5 of the download is {actual}, expected {md5}; kept it as {bad}")
    os.replace(tmp, dest)


def _extract(zip_path: Path, members: dict[str, str], root: Path) -> None:
    with zipfile.ZipFile(zip_path) as zf:
        names = set(zf.namelist())
        for member in members.values():
            if member not in names:
                raise DatasetUnavailableError(
                    f"{zip_path} has no member {member!r}; it holds {sorted(names)[:10]}")
            target = root / member  # only the known members: no path tricks from the archive
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as out, zf.open(member) as src:
                    while block := src.read(1 << 20):
                        out.write(block)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise


def load_wikitext2(
    root: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    md5: str = WIKITEXT2_MD5,
    urls: Sequence[str] = WIKITEXT2_URLS,
) -> dict[str, list[str]]:
    """WikiText-2 (Merity et al., 2016), the tokenized v1 release, as lines per split.

    Returns ``{"train": [...], "valid": [...], "test": [...]}``: every line of
    ``wiki.<split>.tokens`` without its newline, blank lines included (36718, 3760
    and 4358 lines), exactly as torchtext's ``WikiText2`` yields them.

    Files live in `root` (default :func:`cache_dir`): the archive at
    ``root/wikitext-2-v1.zip``, the extracted text under ``root/wikitext-2/``.
    Extracted files are used as they are; an archive is checked against `md5`
    first (a mismatching one is renamed ``*.bad`` and :class:`ChecksumError` raised);
    with neither present and ``download=True`` the archive is fetched from `urls`
    in turn. Offline this raises :class:`DatasetUnavailableError`, which says where
    to put a copy of the archive by hand.
    """
    root = Path(root).expanduser() if root is not None else cache_dir()
    zip_path = root / _WIKITEXT2_ZIP
    files = {s: root / member for s, member in _WIKITEXT2_MEMBERS.items()}

    if not all(p.is_file() for p in files.values()):
        if zip_path.is_file():
            actual = _digest(zip_path, "md5")
            if actual != md5:
                bad = _set_aside(zip_path)
                raise ChecksumError(
                    f"{zip_path} has MD5 {actual}, expected {md5}: it is not the WikiText-2 v1 "
                    f"archive, or it is truncated. It was renamed to {bad}; put a good copy at "
                    f"{zip_path}.")
        elif not download:
            raise DatasetUnavailableError(_wikitext2_help(zip_path, md5, urls, "download=False"))
        else:
            import requests

            root.mkdir(parents=True, exist_ok=True)
            failures = []
            for url in urls:
                try:
                    _download(url, zip_path, md5)
                    break
                except (requests.RequestException, OSError, ChecksumError) as err:
                    failures.append(f"  {url}: {type(err).__name__}: {err}")
            else:
                reason = "the download failed:\n" + ("\n".join(failures) or "  (no URLs given)")
                raise DatasetUnavailableError(_wikitext2_help(zip_path, md5, urls, reason))
        _extract(zip_path, _WIKITEXT2_MEMBERS, root)

    out = {}
    for split, path in files.items():
        with open(path, encoding="utf-8", newline="\n") as f:  # split on "\n" only
            out[split] = [line.rstrip("\n") for line in f]
    return out


def _wikitext2_help(zip_path: Path, md5: str, urls: Sequence[str], reason: str) -> str:
    sources = "\n".join(f"  {u}" for u in urls)
    return (
        f"WikiText-2 is not available: {reason}\n"
        f"To use it offline, download wikitext-2-v1.zip (MD5 {md5}) on a machine with\n"
        f"network access from one of\n{sources}\n"
        f"and copy it, unopened, to\n  {zip_path}\n"
        f"(set LMCOURSE_CACHE or pass root= to use another directory).")
