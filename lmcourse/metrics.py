"""How well a model predicts: entropy, cross-entropy, perplexity, bits per character, bootstrap
intervals (from :mod:`lmcourse.intervals`: one model's bits per character, a paired one for ranking two models),
and the classification scores used when a model is fine-tuned. Also `record`, which adds a model's
held-out result to the book's one comparison table, `data/results.csv`, and its nats per test
paragraph to `data/results_paragraph_nll.csv`, from which the results page ranks models in pairs.

Chapter 1 (Background) explains every quantity here; every later chapter records into the table.
Log-probabilities are natural logarithms (nats) unless a `base` says otherwise, as in PyTorch.
Left out: calibration and ranking metrics (they appear where a chapter needs them).
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Hashable, Iterable, Sequence

import numpy as np

from lmcourse._io import DATA_DIR, atomic_write_text, exclusive_lock
from lmcourse.intervals import (bootstrap_bpc, mean_interval, paired_bootstrap, paired_mean_difference,
                                paired_rate_difference, rate_interval, statistic_interval)

__all__ = [
    "entropy", "cross_entropy", "perplexity", "bits_per_token", "bits_per_char", "bootstrap_bpc", "paired_bootstrap",
    "rate_interval", "paired_rate_difference", "mean_interval", "paired_mean_difference", "statistic_interval",
    "accuracy", "precision", "recall", "f1_score",
    "Result", "record", "show_results", "load_results", "load_paragraph_nll", "paragraph_nll_path", "results_path", "results_table", "style_results", "chapter_order",
]


def _distribution(p: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(p, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of probabilities, got shape {arr.shape}")
    if np.any(arr < 0) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} has negative or non-finite entries; probabilities must be in [0, 1]")
    if not math.isclose(arr.sum(), 1.0, rel_tol=0, abs_tol=1e-6):
        raise ValueError(f"{name} sums to {arr.sum():.6g}, not 1; normalise it first (p / p.sum())")
    return arr


def entropy(p: Sequence[float] | np.ndarray, base: float = 2.0) -> float:
    """Entropy $H(p) = -\\sum_x p(x) \\log p(x)$, in bits by default (terms with p(x)=0 add 0).

    >>> entropy([0.5, 0.5])
    1.0
    """
    return cross_entropy(p, p, base=base)


def cross_entropy(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray, base: float = 2.0) -> float:
    """Cross-entropy $H(p, q) = -\\sum_x p(x) \\log q(x)$: the cost of coding p's outcomes with q.

    Infinite when q gives zero probability to an outcome p can produce.

    >>> cross_entropy([0.5, 0.5], [0.25, 0.75])  # doctest: +ELLIPSIS
    1.207...
    """
    p_arr, q_arr = _distribution(p, "p"), _distribution(q, "q")
    if p_arr.shape != q_arr.shape:
        raise ValueError(f"p and q must have the same length, got {p_arr.size} and {q_arr.size}")
    support = p_arr > 0
    if np.any(q_arr[support] == 0):
        return math.inf
    nats = -float(np.sum(p_arr[support] * np.log(q_arr[support])))
    return nats / math.log(base)


def _log_probs(log_probs: Iterable[float] | np.ndarray) -> np.ndarray:
    if hasattr(log_probs, "detach"):  # a torch tensor
        log_probs = log_probs.detach().cpu().numpy()
    arr = np.asarray(list(log_probs) if not isinstance(log_probs, np.ndarray) else log_probs, dtype=float)
    if arr.size == 0:
        raise ValueError("no log-probabilities given: perplexity of an empty text is undefined")
    if np.any(arr > 1e-9):
        raise ValueError("log-probabilities must be <= 0; did you pass probabilities or losses instead?")
    return arr.ravel()


def perplexity(log_probs: Iterable[float] | np.ndarray) -> float:
    """Perplexity $\\exp(-\\frac1N \\sum_i \\log p(w_i \\mid w_{<i}))$ from per-token log-probs (nats).

    A model that is uniform over V tokens has perplexity V; a zero probability gives infinity.

    >>> round(perplexity([math.log(0.25)] * 4), 6)
    4.0
    """
    return math.exp(-float(np.mean(_log_probs(log_probs))))


def bits_per_token(log_probs: Iterable[float] | np.ndarray) -> float:
    """Average negative log-likelihood in bits: $\\log_2$ of the perplexity."""
    return -float(np.mean(_log_probs(log_probs))) / math.log(2)


def bits_per_char(total_nll_nats: float, num_chars: int) -> float:
    """Total negative log-likelihood of a text (nats) spread over its characters, in bits.

    The measure that compares models with different tokenizations on the same text.

    >>> bits_per_char(100 * math.log(2), 50)
    2.0
    """
    if num_chars <= 0:
        raise ValueError(f"num_chars must be positive, got {num_chars}")
    if total_nll_nats < 0 or math.isnan(total_nll_nats):
        raise ValueError(f"total negative log-likelihood must be >= 0 nats, got {total_nll_nats}")
    return total_nll_nats / (math.log(2) * num_chars)


def _labels(y_true: Sequence[Hashable], y_pred: Sequence[Hashable]) -> tuple[list, list]:
    y_true, y_pred = list(np.asarray(y_true).tolist()), list(np.asarray(y_pred).tolist())
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true and y_pred have different lengths ({len(y_true)} and {len(y_pred)})")
    if not y_true:
        raise ValueError("no labels given")
    return y_true, y_pred


def accuracy(y_true: Sequence[Hashable], y_pred: Sequence[Hashable]) -> float:
    """Share of predictions equal to the true label."""
    y_true, y_pred = _labels(y_true, y_pred)
    return sum(t == p for t, p in zip(y_true, y_pred)) / len(y_true)


def _confusion(y_true, y_pred, positive) -> tuple[int, int, int]:
    y_true, y_pred = _labels(y_true, y_pred)
    tp = sum(t == positive and p == positive for t, p in zip(y_true, y_pred))
    fp = sum(t != positive and p == positive for t, p in zip(y_true, y_pred))
    fn = sum(t == positive and p != positive for t, p in zip(y_true, y_pred))
    return tp, fp, fn


def precision(y_true: Sequence[Hashable], y_pred: Sequence[Hashable], positive: Hashable = 1) -> float:
    """Of the items predicted `positive`, the share that are; 0.0 if none were predicted."""
    tp, fp, _ = _confusion(y_true, y_pred, positive)
    return tp / (tp + fp) if tp + fp else 0.0


def recall(y_true: Sequence[Hashable], y_pred: Sequence[Hashable], positive: Hashable = 1) -> float:
    """Of the truly `positive` items, the share predicted so; 0.0 if there are none."""
    tp, _, fn = _confusion(y_true, y_pred, positive)
    return tp / (tp + fn) if tp + fn else 0.0


def f1_score(y_true: Sequence[Hashable], y_pred: Sequence[Hashable], positive: Hashable = 1) -> float:
    """Harmonic mean of precision and recall, $2PR/(P+R)$; 0.0 when both are 0."""
    tp, fp, fn = _confusion(y_true, y_pred, positive)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


# ---------------------------------------------------------------------------------------------
# The results table: one row per model, shared by every chapter.

@dataclass(frozen=True)
class Result:
    """One model's held-out result on the default corpus's test split."""

    model: str  # unique name, e.g. "trigram Kneser-Ney"
    family: str  # e.g. "n-gram", "RNN", "Transformer"
    tokenization: str  # e.g. "words (basic_english, 10k vocab)", "characters"
    parameters: int  # learned numbers (n-gram: stored probabilities or counts)
    test_perplexity: float  # per token of its own tokenization
    bits_per_char: float  # comparable across tokenizations
    train_seconds: float
    chapter: str = ""  # where the model is built
    bpc_ci_low: float = math.nan  # 95% bootstrap interval of bits_per_char over the test paragraphs
    bpc_ci_high: float = math.nan  # (nan: not measured)

    def __post_init__(self) -> None:
        for name in ("model", "family", "tokenization"):
            if not str(getattr(self, name)).strip():
                raise ValueError(f"Result.{name} must not be empty")
        if self.parameters < 0:
            raise ValueError(f"parameters must be >= 0, got {self.parameters}")
        for name in ("test_perplexity", "bits_per_char", "train_seconds"):
            value = float(getattr(self, name))
            if math.isnan(value) or value < 0:
                raise ValueError(f"{name} must be a non-negative number, got {value}")
        low, high = float(self.bpc_ci_low), float(self.bpc_ci_high)
        if math.isnan(low) != math.isnan(high) or (not math.isnan(low) and not low <= self.bits_per_char <= high):
            raise ValueError(f"the interval ({low}, {high}) must hold bits_per_char={self.bits_per_char} "
                             "(give both ends, from bootstrap_bpc, or neither)")


# The file's columns: the interval sits beside the number it qualifies.
_COLUMNS = ["model", "family", "tokenization", "parameters", "test_perplexity", "bits_per_char", "bpc_ci_low",
            "bpc_ci_high", "train_seconds", "chapter"]
_OLD_COLUMNS = [c for c in _COLUMNS if not c.startswith("bpc_ci")]  # tables written before the intervals


def _float(text: str) -> float:
    return float(text) if text else math.nan


def results_path() -> Path:
    """`$LMCOURSE_RESULTS` if set, else `data/results.csv` in the repository."""
    override = os.environ.get("LMCOURSE_RESULTS")
    return Path(override) if override else DATA_DIR / "results.csv"


def load_results(path: Path | None = None) -> list[Result]:
    """Read the results table (empty if the file does not exist yet)."""
    path = Path(path) if path else results_path()
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames not in (_COLUMNS, _OLD_COLUMNS):
            raise ValueError(f"{path} has columns {reader.fieldnames}, expected {_COLUMNS}; "
                             "move it aside and re-run the notebooks to rebuild it")
        return [Result(row["model"], row["family"], row["tokenization"], int(row["parameters"]),
                       float(row["test_perplexity"]), float(row["bits_per_char"]),
                       float(row["train_seconds"]), row["chapter"], _float(row.get("bpc_ci_low", "")),
                       _float(row.get("bpc_ci_high", ""))) for row in reader]


def paragraph_nll_path(path: Path | None = None) -> Path:
    """Where :func:`record` keeps each model's nats per test paragraph: beside the results table,
    ``results_paragraph_nll.csv`` for ``results.csv``."""
    path = Path(path) if path else results_path()
    return path.with_name(path.stem + "_paragraph_nll.csv")


def load_paragraph_nll(path: Path | None = None) -> dict[str, np.ndarray]:
    """Each recorded model's nats per test paragraph, by model name (empty if none were recorded)."""
    path = paragraph_nll_path(path)
    if not path.exists():
        return {}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        return {name: np.array([float(row[name]) for row in rows]) for name in (reader.fieldnames or [])}


def _save_paragraph_nll(model: str, nll: Sequence[float] | np.ndarray, path: Path) -> None:
    """Add or replace one model's column of nats per paragraph; every column has one row per paragraph."""
    values = np.asarray(nll, dtype=float)
    if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError(f"paragraph_nll must be a 1-D array of finite nats >= 0, one per test paragraph, "
                         f"got shape {values.shape}")
    columns = load_paragraph_nll(path)
    other = next((v for name, v in columns.items() if name != model), None)
    if other is not None and other.size != values.size:
        raise ValueError(f"paragraph_nll has {values.size} paragraphs but the models already in "
                         f"{paragraph_nll_path(path).name} have {other.size}: score the whole test split")
    columns[model] = values
    handle = io.StringIO()
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(list(columns))
    writer.writerows(zip(*([f"{v:.6f}" for v in column] for column in columns.values())))
    atomic_write_text(paragraph_nll_path(path), handle.getvalue())


def record(result: Result, path: Path | None = None,
           paragraph_nll: Sequence[float] | np.ndarray | None = None) -> list[Result]:
    """Add `result` to the table, replacing an earlier row of the same model; return the table as saved.

    `paragraph_nll` (the model's nats on each test paragraph, the units of :func:`bootstrap_bpc`)
    is kept in :func:`paragraph_nll_path`, for paired comparisons. The files are rewritten
    atomically, so an interrupted run never leaves half a table, and under a lock, so two notebooks
    recording at once keep both rows.
    """
    path = Path(path) if path else results_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(path):
        if paragraph_nll is not None:
            _save_paragraph_nll(result.model, paragraph_nll, path)
        rows = load_results(path)
        names = [r.model for r in rows]
        if result.model in names:
            rows[names.index(result.model)] = result
        else:
            rows.append(result)
        handle = io.StringIO()
        writer = csv.DictWriter(handle, fieldnames=_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            values = asdict(row)
            for key in ("test_perplexity", "bits_per_char", "bpc_ci_low", "bpc_ci_high"):
                values[key] = "" if math.isnan(values[key]) else f"{values[key]:.6g}"
            values["train_seconds"] = f"{values['train_seconds']:.2f}"
            writer.writerow(values)
        atomic_write_text(path, handle.getvalue())
        return load_results(path)


RESULT_HEADERS = {"model": "model", "family": "family", "tokenization": "tokens", "parameters": "params",
                  "test_perplexity": "test PPL", "bits_per_char": "bpc", "bpc_ci_low": "bpc low",
                  "bpc_ci_high": "bpc high", "train_seconds": "train s", "chapter": "ch."}


def chapter_order(label: str) -> tuple[int, str]:
    """Sort key for chapter labels in book order: "2" < "3a" < "3b" < "10"."""
    match = re.fullmatch(r"(\d+)([a-z]*)", label.strip())
    if not match:
        raise ValueError(f"chapter label {label!r} is not a number with an optional letter, like '3' or '3b'")
    return int(match.group(1)), match.group(2)


def results_table(path: Path | None = None, up_to: str | None = None):
    """The results table as a pandas DataFrame with short column headers (see `RESULT_HEADERS`),
    worst bits per character first, ready to display in a notebook.

    `up_to="3a"` keeps the rows of chapters up to 3a, so a chapter shows what the reader has seen so
    far even when later chapters have already recorded their models."""
    import pandas as pd  # only the notebooks need pandas

    results = load_results(path)
    if up_to is not None:
        last = chapter_order(up_to)
        results = [r for r in results if r.chapter and chapter_order(r.chapter) <= last]
    rows = [asdict(r) for r in results]
    table = pd.DataFrame(rows, columns=_COLUMNS)
    table = table.sort_values("bits_per_char", ascending=False, kind="stable").reset_index(drop=True)
    return table.rename(columns=RESULT_HEADERS)


def style_results(table: Any, seconds_decimals: int = 0) -> Any:
    """A results table (or some of its rows) ready to show in a notebook: perplexity to one
    decimal, bits per character and its interval to three ("–" where no interval was measured),
    parameters with thousands separators, no index.

    Text is HTML-escaped, so a tokenization such as "min count 2, <unk>" shows as written rather
    than being swallowed by the browser as an unknown tag."""
    formats = {"test PPL": "{:.1f}", "bpc": "{:.3f}", "bpc low": "{:.3f}", "bpc high": "{:.3f}",
               "train s": f"{{:.{seconds_decimals}f}}", "params": "{:,}"}
    formats = {column: f for column, f in formats.items() if column in table.columns}
    return table.style.format(formats, escape="html", na_rep="–").hide(axis="index")


def show_results(path: Path | None = None, up_to: str | None = None, seconds_decimals: int = 0) -> None:
    """Display the results table in a notebook as one table per tokenization, each under its name, in
    the order the chapters introduced them: models are ranked only against models that read the same
    tokens (the results page says why)."""
    from IPython.display import Markdown, display  # only the notebooks need IPython

    table = results_table(path, up_to)
    order = sorted(table["tokens"].unique(), key=lambda t: min(chapter_order(c) for c in table.loc[table["tokens"] == t, "ch."]))
    for tokenization in order:
        display(Markdown(f"**{tokenization}**"))
        display(style_results(table[table["tokens"] == tokenization], seconds_decimals))
