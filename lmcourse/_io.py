"""File helpers shared across the package: atomic writes, file digests and a lock for shared tables.

Private to ``lmcourse`` (imports nothing else from it). An atomic write goes to a temporary file
in the target's directory and is renamed over the target only when complete, so an interrupted
write never leaves a half-written file where the reader's old one was.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["DATA_DIR", "atomic_path", "atomic_write_text", "atomic_write_bytes", "file_digest", "exclusive_lock"]

DATA_DIR = Path(__file__).resolve().parent.parent / "data"  # the repository's data/ folder (data/README.md)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary file's path beside `path` for the block to write; flushed to disk and renamed over
    `path` when the block ends without error, removed when it raises (for writers that want a path, such
    as safetensors')."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as f:  # on disk before the rename, so a crash cannot leave an empty file
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as a file opened for writing would be, not mkstemp's 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, then rename it over `path`."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` as UTF-8 to a temporary file beside `path`, then rename it over `path`."""
    atomic_write_bytes(path, text.encode("utf-8"))


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file ("sha256", "md5"), read in 1 MiB blocks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path.lock`` (POSIX), so notebooks running at the same time
    (CI runs two) cannot both read a table, add a row and write, losing one of the rows."""
    try:
        import fcntl
    except ImportError:  # Windows: one notebook at a time, no lock needed
        yield
        return
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
