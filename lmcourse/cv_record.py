"""A cross-validation kept on disk, so that a later chapter reads it instead of training the same
models again.

Chapter 5 cross-validates its classifiers on the 200 polarity sentences; Chapter 9a compares
prompting with the same methods on the same folds. Fine-tuning MiniLM five times takes about two
CPU-minutes, and the result would be the same, so Chapter 5 saves its results here
(:func:`save_cross_validation`) and Chapter 9a loads them (:func:`load_cross_validation`). The
record holds a fingerprint of the sentences, labels and folds: a record made on other data or
other folds is refused, never silently compared with.

>>> import tempfile
>>> from lmcourse.classify import BagOfWords, cross_validate, stratified_folds
>>> texts, labels = ["good", "fine", "bad", "poor"] * 2, [1, 1, 0, 0] * 2
>>> folds = stratified_folds(labels, k=2)
>>> results = {"bag of words": cross_validate(BagOfWords, texts, labels, folds)}
>>> path = Path(tempfile.mkdtemp()) / "cv.json"
>>> _ = save_cross_validation(results, texts, labels, folds, path)
>>> load_cross_validation(texts, labels, folds, path) == results
True
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from lmcourse._io import DATA_DIR, atomic_write_text, exclusive_lock
from lmcourse.classify import CVResult

__all__ = ["polarity_cv_path", "save_cross_validation", "load_cross_validation"]

FORMAT = 1


def polarity_cv_path() -> Path:
    """`$LMCOURSE_POLARITY_CV` if set, else `data/polarity_cv.json` in the repository."""
    override = os.environ.get("LMCOURSE_POLARITY_CV")
    return Path(override) if override else DATA_DIR / "polarity_cv.json"


def _fingerprint(texts: Sequence[str], labels: Sequence[int], folds: Sequence[tuple[Sequence[int], Sequence[int]]]
                 ) -> str:
    """SHA-256 of the sentences, their labels and the folds: what makes two cross-validations comparable."""
    data = {"texts": list(texts), "labels": [int(y) for y in labels],
            "folds": [[sorted(int(i) for i in train), sorted(int(i) for i in test)] for train, test in folds]}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode("utf-8")).hexdigest()


def save_cross_validation(results: Mapping[str, CVResult], texts: Sequence[str], labels: Sequence[int],
                          folds: Sequence[tuple[Sequence[int], Sequence[int]]], path: Path | None = None) -> Path:
    """Write every method's :class:`CVResult` (in order) with the data's fingerprint; returns the path.
    The file is replaced atomically, under a lock, so two notebooks never leave half a record."""
    if not results:
        raise ValueError("save_cross_validation needs at least one method's results")
    for name, result in results.items():
        if len(result.predictions) != len(texts):
            raise ValueError(f"{name!r} has {len(result.predictions)} predictions for {len(texts)} texts: "
                             "save the results of cross_validate on these texts")
    path = Path(path) if path else polarity_cv_path()
    record = {"format": FORMAT, "fingerprint": _fingerprint(texts, labels, folds),
              "methods": {name: {"folds": r.folds, "predictions": r.predictions, "pooled": r.pooled,
                                 "seconds": r.seconds} for name, r in results.items()}}
    with exclusive_lock(path):
        atomic_write_text(path, json.dumps(record, indent=1) + "\n")
    return path


def load_cross_validation(texts: Sequence[str], labels: Sequence[int],
                          folds: Sequence[tuple[Sequence[int], Sequence[int]]], path: Path | None = None
                          ) -> dict[str, CVResult]:
    """The results :func:`save_cross_validation` wrote, by method name, after checking that they were
    made on these texts, labels and folds."""
    path = Path(path) if path else polarity_cv_path()
    if not path.exists():
        raise FileNotFoundError(f"no saved cross-validation at {path}: run Chapter 5 "
                                "(chapters/05_bert.ipynb), which writes it")
    record = json.loads(path.read_text(encoding="utf-8"))
    if record.get("format") != FORMAT:
        raise ValueError(f"{path} has format {record.get('format')!r}, expected {FORMAT}: run Chapter 5 again")
    if record["fingerprint"] != _fingerprint(texts, labels, folds):
        raise ValueError(f"{path} was made on other sentences, labels or folds than these: use the same "
                         "load_polarity() and stratified_folds(labels, k=5, seed=0) as Chapter 5, or run it again")
    return {name: CVResult(folds=m["folds"], predictions=m["predictions"], pooled=m["pooled"], seconds=m["seconds"])
            for name, m in record["methods"].items()}
