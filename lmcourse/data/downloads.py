"""Benchmarks fetched from the network: downloaded once, checked against a checksum, cached.

Chapter 3b (Recurrent networks) uses :func:`load_wikitext2`, the standard WikiText-2 benchmark
(Merity et al., 2016), beside the offline corpora. A download streams to a temporary file,
is checked against its MD5 and only then renamed into place; a file that fails the check is set
aside as ``*.bad``, never used. Offline, the loader fails with
:class:`DatasetUnavailableError`, whose message says where to put a copy made elsewhere.
Left out: other benchmarks (WikiText-103, the Penn Treebank), resuming broken downloads.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from lmcourse._io import atomic_write_bytes, file_digest
from lmcourse.data.corpus import SPLITS, cache_dir

__all__ = ["load_wikitext2", "DatasetUnavailableError", "ChecksumError", "WIKITEXT2_URLS", "WIKITEXT2_MD5"]

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
    actual = file_digest(tmp, "md5")
    if actual != md5:
        bad = _set_aside(tmp)
        raise ChecksumError(f"MD5 of the download is {actual}, expected {md5}; kept it as {bad}")
    os.replace(tmp, dest)


def _extract(zip_path: Path, members: dict[str, str], root: Path) -> None:
    """Write the known `members` of the archive under `root`, each atomically."""
    with zipfile.ZipFile(zip_path) as zf:
        names = set(zf.namelist())
        for member in members.values():
            if member not in names:
                raise DatasetUnavailableError(
                    f"{zip_path} has no member {member!r}; it holds {sorted(names)[:10]}")
            atomic_write_bytes(root / member, zf.read(member))  # only known members: no path tricks

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
            actual = file_digest(zip_path, "md5")
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
