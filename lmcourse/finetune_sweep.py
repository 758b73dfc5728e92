"""Full fine-tuning against LoRA at several ranks and on different layers, each scored on the
held-out extraction examples (Chapter 8, Section 8.6).

Every setup trains a fresh copy of the pretrained model with :func:`lmcourse.sft.train_sft` for the
same number of steps on the same batches (same seed), then scores the held-out set with
:func:`lmcourse.sft.greedy_matches`. All of them take about 35 minutes on one CPU thread, longer
than the chapter's default run may take, so ``python -m lmcourse.finetune_sweep`` runs them once and
writes ``finetune_sweep.csv`` (into the cache, ``$LMCOURSE_CACHE``; the book's copy is in ``data/``):
one row per setup, with its hits on each held-out example so that setups can be compared example by
example (:func:`lmcourse.intervals.paired_rate_difference`).
Its ``train_seconds`` column is each run's wall-clock training time; the stored file's were measured
on a shared, loaded machine, so they record the run rather than measure speed (the chapter times one
step of each setup on one fixed example instead).
The chapter reads that file, runs the same sweep when ``FULL_RUN`` is set, and checks the stored row
of its own recipe (LoRA at rank 8) against its run. Each run of the command also writes that setup's
adapter, history and validation loss as a stored run (:mod:`lmcourse.stored_run`,
``$LMCOURSE_CACHE/runs/lora-chapter8.safetensors``; the book's copy is ``data/runs/``), which the
chapter loads after training its first steps.
"""

from __future__ import annotations

import copy
import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lmcourse._io import atomic_write_text
from lmcourse.data import cache_dir, data_file
from lmcourse.lora import apply_lora, trainable_parameters
from lmcourse.sft import Encoded, greedy_matches, mean_example_loss, train_sft
from lmcourse.stored_run import new_run_path, save_stored_run
from lmcourse.train import TrainConfig

__all__ = ["ALL_LINEAR", "Setup", "SETUPS", "RECIPE", "STORED_RUN", "VALID_EXAMPLES", "SweepRow", "prepare", "sft_config",
           "run_setup", "run_sweep", "write_sweep", "load_sweep"]

ALL_LINEAR = ("attn.in_proj", "attn.out_proj", "mlp.gate", "mlp.up", "mlp.down")  # every linear layer of a block
SWEEP_FILE = "finetune_sweep.csv"
STORED_RUN = "lora-chapter8"  # the RECIPE's run as a stored run (lmcourse.stored_run), as the chapter loads it
VALID_EXAMPLES = 40  # the validation examples whose loss the chapter reports (the first 40)
_COLUMNS = ("name", "trainable", "lr", "steps", "train_seconds", "exact", "hits")


@dataclass(frozen=True)
class Setup:
    """What to train: LoRA of rank `rank` on the layers named `targets` (``alpha = 2 r``, a scale of
    2), or every weight when `targets` is None; `lr` is AdamW's peak learning rate."""

    name: str
    targets: tuple[str, ...] | None
    rank: int = 8
    lr: float = 2e-3


RECIPE = Setup("LoRA r=8, all linear", ALL_LINEAR, 8)  # the chapter's default run (Section 8.4)
SETUPS = (
    Setup("full fine-tuning, lr 5e-5", None, lr=5e-5),  # full fine-tuning needs far smaller steps than LoRA:
    Setup("full fine-tuning, lr 2e-4", None, lr=2e-4),  # two of them, as no single value is the right one
    Setup("LoRA r=1, all linear", ALL_LINEAR, 1),
    RECIPE,
    Setup("LoRA r=64, all linear", ALL_LINEAR, 64),
    Setup("LoRA r=8, attention only", ("attn.in_proj", "attn.out_proj"), 8),
    Setup("LoRA r=8, MLP only", ("mlp.gate", "mlp.up", "mlp.down"), 8),
)


@dataclass
class SweepRow:
    """One trained setup: its trainable parameters, training time, and held-out hits ``(N,)`` booleans."""

    name: str
    trainable: int
    lr: float
    steps: int
    train_seconds: float
    hits: np.ndarray

    @property
    def exact(self) -> float:
        """The share of held-out examples answered exactly."""
        return float(self.hits.mean())


def prepare(model: nn.Module, setup: Setup, seed: int = 0) -> nn.Module:
    """A deep copy of `model` in training mode, with LoRA applied as `setup` says (its ``A`` matrices
    drawn after ``torch.manual_seed(seed)``, so a setup starts the same in any session), or every
    weight trainable; `model` itself is not changed."""
    m = copy.deepcopy(model)
    if setup.targets is None:
        m.requires_grad_(True)
    else:
        torch.manual_seed(seed)
        apply_lora(m, list(setup.targets), r=setup.rank, alpha=2 * setup.rank)
    return m.train()


def sft_config(setup: Setup, steps: int, seed: int = 0) -> TrainConfig:
    """The chapter's SFT recipe: AdamW without weight decay, 3 warm-up steps then a cosine decay,
    batches of 4 examples, `steps` steps."""
    return TrainConfig(lr=setup.lr, weight_decay=0.0, schedule="cosine", warmup_steps=3, batch_size=4,
                       max_steps=steps, seed=seed)


def run_setup(model: nn.Module, setup: Setup, train: Sequence[Encoded], heldout: Sequence[Encoded],
              steps: int, store: tuple[Path, Sequence[Encoded]] | None = None) -> SweepRow:
    """Train a fresh copy of `model` as `setup` says for `steps` steps and score it on `heldout`. With
    ``store=(path, valid)``, also write the run (a LoRA setup's adapter) as a stored run at `path`, with
    its validation loss on `valid` (:func:`lmcourse.sft.mean_example_loss`) as the measurement to check."""
    m = prepare(model, setup)
    config = sft_config(setup, steps)
    history = train_sft(m, train, config)
    hits = greedy_matches(m.eval(), heldout).numpy()
    if store is not None:
        path, valid = store
        save_stored_run(path, m, history, config, {"valid_loss": mean_example_loss(m, valid)},
                        trainable_only=setup.targets is not None)
    return SweepRow(setup.name, trainable_parameters(m), setup.lr, history.steps, history.train_seconds, hits)


def run_sweep(model: nn.Module, train: Sequence[Encoded], heldout: Sequence[Encoded], steps: int = 30,
              setups: Sequence[Setup] = SETUPS, store: tuple[Path, Sequence[Encoded]] | None = None) -> list[SweepRow]:
    """:func:`run_setup` for each setup, one after the other (each on a fresh copy of `model`); `store`
    is passed to the run of the chapter's :data:`RECIPE`."""
    if not setups:
        raise ValueError("run_sweep needs at least one Setup")
    return [run_setup(model, setup, train, heldout, steps, store if setup == RECIPE else None) for setup in setups]


def write_sweep(rows: Sequence[SweepRow], path: str | Path | None = None) -> Path:
    """Write the rows as CSV (default ``data/finetune_sweep.csv``); ``hits`` as a string of 0s and 1s."""
    path = Path(path) if path is not None else data_file("README.md").parent / SWEEP_FILE
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_COLUMNS)
    for row in rows:
        writer.writerow([row.name, row.trainable, row.lr, row.steps, f"{row.train_seconds:.1f}", f"{row.exact:.4f}",
                         "".join("1" if h else "0" for h in row.hits)])
    atomic_write_text(path, out.getvalue())
    return path


def load_sweep(path: str | Path | None = None) -> dict[str, SweepRow]:
    """The rows of a file :func:`write_sweep` wrote, by setup name (default: the book's stored run)."""
    path = Path(path) if path is not None else data_file(SWEEP_FILE)
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != _COLUMNS:
            raise ValueError(f"{path} is not a sweep file: its columns are {reader.fieldnames}, expected "
                             f"{list(_COLUMNS)} (write it with lmcourse.finetune_sweep.write_sweep)")
        rows = {}
        for record in reader:
            hits = record["hits"]
            if not hits or set(hits) - {"0", "1"}:
                raise ValueError(f"{path}: the hits of {record['name']!r} must be a string of 0s and 1s")
            rows[record["name"]] = SweepRow(record["name"], int(record["trainable"]), float(record["lr"]),
                                            int(record["steps"]), float(record["train_seconds"]),
                                            np.array([c == "1" for c in hits]))
    return rows


def main() -> None:
    """Run the sweep as the chapter prepares its data (one thread, ``max_len`` 256) and write the table and
    the stored run of :data:`RECIPE` into the cache (to be copied into ``data/`` by hand)."""
    import time

    from lmcourse import instructions, sft
    from lmcourse.llama import load_smollm2

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model, tokenizer = load_smollm2()
    encoded = {split: sft.encode_examples(tokenizer, [ex["messages"] for ex in instructions.load_instructions(split)],
                                          max_len=256)[0] for split in ("train", "valid", "heldout")}
    start = time.perf_counter()
    store = (new_run_path(STORED_RUN), encoded["valid"][:VALID_EXAMPLES])
    rows = run_sweep(model, encoded["train"], encoded["heldout"], store=store)
    path = write_sweep(rows, cache_dir() / SWEEP_FILE)  # never over the book's copy: copy both into data/ by hand
    print(f"wrote the stored run of {RECIPE.name}: {store[0]}")
    for row in rows:
        print(f"{row.name:28} {100 * row.exact:5.1f}% exact, {row.train_seconds:.0f} s of training")
    print(f"wrote {path} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
