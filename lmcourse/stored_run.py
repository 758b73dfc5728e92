"""A finished training run kept as one file, so that a chapter can show a run longer than its
default budget without the reader waiting for it.

Chapter 6's GPT is trained for 6,400 steps (about 14 minutes on one CPU thread), and passes the
trigram it is compared with only late in the run. By default the chapter trains the first eighth of
that run live, with the same recipe (``TrainConfig(stop_after=...)``: the same schedule, so the same
first steps), loads the full run's weights from the book's copy of this file, and checks the recipe,
the first eighth and the final validation loss against the stored history. ``FULL_RUN = True``
trains all of it and writes a new file with :func:`save_stored_run`. Chapter 11's GPT is kept the
same way. Chapter 8's LoRA fine-tuning and DPO runs keep only what they trained, the adapter
(``trainable_only=True``), and are checked against their training examples with
:meth:`StoredRun.check_examples`, as Chapter 9b's translator and Chapter 5's two pre-trainings of its
tiny BERT are (their history an ``MLMHistory``, loaded through `history_class`).

The file is safetensors: the model's weights (a tied matrix once, through
``safetensors.torch.save_model``) and, as JSON in its header, the run's :class:`TrainConfig`, its
:class:`History`, the model's class and config, the machine it ran on, and *measurements* made with
the run's intermediate checkpoints (a test score at each, samples), which its final weights alone
could not give back. It holds no optimizer state: it is a result to read, not a run to resume.

>>> import tempfile, torch
>>> from lmcourse.gpt import GPT, GPTConfig
>>> torch.manual_seed(0)  # doctest: +ELLIPSIS
<torch._C.Generator object at ...>
>>> model = GPT(GPTConfig.tiny(vocab_size=16))
>>> path = Path(tempfile.mkdtemp()) / "run.safetensors"
>>> _ = save_stored_run(path, model, History(train_loss=[2.5, 2.0]), TrainConfig(max_steps=2), {"bpc": 1.5})
>>> fresh = GPT(GPTConfig.tiny(vocab_size=16))
>>> run = load_stored_run(path, fresh)
>>> run.history.train_loss, run.measurements, torch.equal(fresh.decoder.weight, model.decoder.weight)
([2.5, 2.0], {'bpc': 1.5}, True)
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch
from torch import nn

from lmcourse._io import DATA_DIR, atomic_path
from lmcourse.checkpoint import CheckpointError
from lmcourse.data import cache_dir
from lmcourse.runtimes import machine_name
from lmcourse.train import evaluate
from lmcourse.trainstate import History, TrainConfig

__all__ = ["StoredRun", "book_run_path", "new_run_path", "save_stored_run", "load_stored_run"]

FORMAT = "lmcourse-stored-run"
VERSION = "1"
_NOT_RECIPE = ("checkpoint", "checkpoint_every", "resume", "stop_after", "progress")  # how a run was watched, not trained


@dataclass
class StoredRun:
    """What :func:`load_stored_run` read besides the weights it loaded into the model."""

    path: Path
    history: History
    train_config: dict[str, Any]
    model_config: dict[str, Any] | None
    measurements: dict[str, Any]
    machine: str

    def check(self, recipe: TrainConfig, live: History, model: nn.Module, valid_stream: torch.Tensor,
              tolerance: float = 0.02) -> str:
        """Check this run against what the reader can redo: it was trained with `recipe` (the same settings,
        so the same schedule; how it was watched, such as checkpoints and the progress bar, may differ),
        `live` (its first steps, trained here with ``stop_after``) began with the same losses (within 1e-3
        over its first 10 steps: another seed differs more) and reached the stored validation loss within
        `tolerance` nats (other CPUs round differently), and the weights loaded into `model` give the stored
        final validation loss on `valid_stream`. Raises ``ValueError`` naming the check that failed; returns
        a one-line report. The steps in between are taken on trust."""
        stored_recipe = self._check_start(recipe, live, loss_tolerance=1e-3)
        steps = live.steps
        stored_valid = dict(zip(self.history.eval_steps, self.history.valid_loss))
        if not live.eval_steps or live.eval_steps[-1] != steps or steps not in stored_valid:
            raise ValueError(f"the stored run has no validation loss after step {steps}: stop at a multiple of "
                             f"eval_every={stored_recipe.eval_every}")
        gap = abs(live.valid_loss[-1] - stored_valid[steps])
        if gap >= tolerance:
            raise ValueError(f"after {steps} steps the validation loss is {live.valid_loss[-1]:.4f} here and "
                             f"{stored_valid[steps]:.4f} in the stored run: not the same run")
        final = evaluate(model, valid_stream, batch_size=stored_recipe.eval_batch_size, bptt=stored_recipe.bptt).loss
        if abs(final - self.history.valid_loss[-1]) >= 1e-4:
            raise ValueError(f"the loaded weights give a validation loss of {final:.5f}, the stored history ends at "
                             f"{self.history.valid_loss[-1]:.5f}: these are not the run's final weights")
        return (f"trained here: the first {steps} steps in {live.train_seconds:.0f} s, validation loss "
                f"{live.valid_loss[-1]:.4f}; the stored run (made on {self.machine}) after step {steps}: "
                f"{stored_valid[steps]:.4f}; its final weights give its final validation loss, {final:.4f}")

    def check_examples(self, recipe: TrainConfig, live: History, measured: float, loss_tolerance: float = 0.02, *,
                       measurement: str = "valid_loss", label: str | None = None) -> str:
        """:meth:`check` for a run trained on separate examples (:func:`lmcourse.train.train_on_examples`,
        as fine-tuning is), whose history holds no validation losses: the same `recipe`, the `live` steps
        trained here with the stored run's learning rates, their first 10 losses each within
        `loss_tolerance` nats of the stored ones (batches of other examples differ by far more; a model
        of hundreds of millions of parameters rounds differently on another CPU), and `measured`, what the
        loaded weights give here on held-out data, equal to ``measurements[measurement]`` within 1e-4 (a
        validation loss for SFT; Chapter 8's DPO runs store the mean probability of ending the turn on
        their held-out questions), named `label` in the messages. That last comparison is also what
        catches a model prepared differently in ways the loader cannot see (another LoRA ``alpha``,
        other base weights): see :func:`load_stored_run`."""
        self._check_start(recipe, live, loss_tolerance)
        stored = self.measurements.get(measurement)
        if not isinstance(stored, (int, float)):
            raise ValueError(f"{self.path.name} has no number measurements[{measurement!r}] to compare the loaded "
                             f"weights with (it has {sorted(self.measurements)})")
        label = label or ("validation loss" if measurement == "valid_loss" else measurement.replace("_", " "))
        if abs(measured - stored) >= 1e-4:
            raise ValueError(f"the loaded weights give {label} = {measured:.5f}, the stored run measured "
                             f"{stored:.5f}: these are not the run's final weights, or not its held-out data")
        gap = max(abs(a - b) for a, b in zip(live.train_loss, self.history.train_loss))
        same = "the same as" if gap == 0 else f"within {gap:.1e} of"
        return (f"trained here: the first {live.steps} steps in {live.train_seconds:.0f} s, their losses {same} the "
                f"stored run's (made on {self.machine}); its final weights give its {label}, {measured:.4f}")

    def _check_start(self, recipe: TrainConfig, live: History, loss_tolerance: float) -> TrainConfig:
        """The checks shared by :meth:`check` and :meth:`check_examples`: the recipe, the learning rates of
        the live steps, and their first losses (up to 10; `loss_tolerance`). Returns the stored recipe."""
        stored_recipe = TrainConfig(**self.train_config)
        changed = {k: (v, getattr(recipe, k)) for k, v in asdict(stored_recipe).items()
                   if k not in _NOT_RECIPE and v != getattr(recipe, k)}
        if changed:
            raise ValueError(f"{self.path.name} was trained with another recipe (stored, given): {changed}")
        steps = live.steps
        if not steps:
            raise ValueError("no steps were trained here: train the first steps with stop_after, then check")
        if steps > len(self.history.lr):
            raise ValueError(f"{steps} steps were trained here, more than the stored run's {len(self.history.lr)}")
        if not all(math.isclose(a, b, rel_tol=1e-12) for a, b in zip(live.lr, self.history.lr[:steps])):
            raise ValueError(f"the learning rates of the first {steps} steps differ from the stored run's")
        first = min(10, steps)
        if max(abs(a - b) for a, b in zip(live.train_loss[:first], self.history.train_loss[:first])) >= loss_tolerance:
            raise ValueError(f"the first {first} training losses differ from the stored run's: another initialisation "
                             "(seed the model as the chapter does) or other data")
        return stored_recipe


def book_run_path(name: str) -> Path:
    """The book's copy of a stored run: ``data/runs/<name>.safetensors`` in the repository."""
    return DATA_DIR / "runs" / f"{name}.safetensors"


def new_run_path(name: str) -> Path:
    """Where ``FULL_RUN`` writes a new stored run: ``$LMCOURSE_CACHE/runs/<name>.safetensors``, never over
    the book's copy (copy it into ``data/runs/`` by hand to make it the book's)."""
    return cache_dir() / "runs" / f"{name}.safetensors"


def _model_config(model: nn.Module) -> dict[str, Any] | None:
    """The model's dataclass config as JSON would give it back (tuples as lists, paths as strings)."""
    config = getattr(model, "config", None)
    return json.loads(json.dumps(asdict(config), default=str)) if is_dataclass(config) else None


def save_stored_run(path: Path, model: nn.Module, history: History, config: TrainConfig,
                    measurements: Mapping[str, Any], *, trainable_only: bool = False) -> Path:
    """Write `model`'s weights with the run's config, history and `measurements` (anything JSON can
    hold) to `path`, atomically. A file there that is not a stored run is never overwritten.
    ``trainable_only=True`` stores only the parameters that train (a LoRA adapter: Chapter 8 keeps
    8.7 MB instead of SmolLM2's 540); loading it needs the model prepared as it was for training."""
    path = Path(path)
    if path.resolve().is_relative_to(book_run_path("_").resolve().parent):
        raise ValueError(f"{path} is in the book's data/runs/: write new runs elsewhere (new_run_path) and copy "
                         "one there by hand to make it the book's")
    if path.exists() and _stored_run_header(path) is None:
        raise FileExistsError(f"{path} exists and is not a stored run: choose another path")
    if not isinstance(history, History) or not isinstance(config, TrainConfig):
        raise TypeError("save_stored_run needs the run's History and TrainConfig")
    metadata = {"format": FORMAT, "version": VERSION, "model_class": type(model).__qualname__,
                "model_config": json.dumps(_model_config(model)), "train_config": json.dumps(asdict(config), default=str),
                "history": json.dumps(asdict(history)), "measurements": json.dumps(dict(measurements)),
                "machine": machine_name(), "tensors": "trainable" if trainable_only else "all"}
    with atomic_path(path) as tmp:
        if trainable_only:
            trained = {name: p.detach().cpu().contiguous() for name, p in model.named_parameters() if p.requires_grad}
            if not trained:
                raise ValueError("trainable_only=True, but no parameter of the model requires a gradient")
            safetensors.torch.save_file(trained, str(tmp), metadata=metadata)
        else:
            safetensors.torch.save_model(model, str(tmp), metadata=metadata)
    return path


def _stored_run_header(path: Path) -> dict[str, str] | None:
    """The header's metadata if `path` is a stored run, else None (not safetensors, damaged, or another kind)."""
    try:
        with safetensors.safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
    except safetensors.SafetensorError:  # not safetensors at all
        return None
    return meta if meta.get("format") == FORMAT else None


def load_stored_run(path: Path, model: nn.Module, history_class: type[History] = History) -> StoredRun:
    """Load a :func:`save_stored_run` file's weights into `model` and return the rest, its history as a
    `history_class` (a subclass of :class:`History` with more fields, such as
    :class:`lmcourse.mlm.MLMHistory`, for a run that recorded them). Refuses, before changing the model: a
    missing file, a file that is not a stored run (a training checkpoint gets a pointer to
    :func:`lmcourse.checkpoint.load_checkpoint`), a model of another class or config, and a history with
    fields that `history_class` lacks."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no stored run at {path}: the book ships it in data/runs/; "
                                "set FULL_RUN = True to train the whole run instead")
    meta = _stored_run_header(path)
    if meta is None:
        raise CheckpointError(f"{path} is not a stored run, or is damaged (a training checkpoint is read with "
                              "lmcourse.checkpoint.load_checkpoint)")
    missing = [key for key in _KEYS if key not in meta]
    if missing or meta["version"] != VERSION:
        raise CheckpointError(f"{path} is a stored run of another version ({meta.get('version')!r}, expected "
                              f"{VERSION!r}; missing {missing}): write it again with this lmcourse")
    wanted, have = json.loads(meta["model_config"]), _model_config(model)
    if meta["model_class"] != type(model).__qualname__ or wanted != have:
        raise ValueError(f"{path} holds a {meta['model_class']} with config {wanted}; the model given is a "
                         f"{type(model).__qualname__} with config {have}: build the model the run trained")
    recorded = json.loads(meta["history"])
    unknown = sorted(set(recorded) - {f.name for f in fields(history_class)})
    if unknown:
        raise ValueError(f"{path}'s history records {unknown}, which {history_class.__name__} lacks: pass the "
                         "history class the run used, e.g. history_class=lmcourse.mlm.MLMHistory")
    if meta.get("tensors") == "trainable":
        _load_trained(path, model)
    else:
        trial = copy.deepcopy(model)  # a damaged tensor section fails here, with the model untouched
        safetensors.torch.load_model(trial, str(path), strict=True)
        model.load_state_dict(trial.state_dict())
    return StoredRun(path, history_class(**recorded), json.loads(meta["train_config"]), wanted,
                     json.loads(meta["measurements"]), meta["machine"])


def _load_trained(path: Path, model: nn.Module) -> None:
    """Copy a ``trainable_only`` file's tensors into `model`'s parameters of those names, which must be
    exactly its trainable ones, of the same shapes: all are read and checked before any is copied.
    Names and shapes are all a file of trained tensors can be checked against; the frozen weights
    they were trained on, and a LoRA layer's ``alpha``, are checked by the run's measurements
    (:meth:`StoredRun.check_examples`)."""
    tensors = safetensors.torch.load_file(str(path))  # a damaged file fails here, with the model untouched
    params = dict(model.named_parameters())
    trainable = {name for name, p in params.items() if p.requires_grad}
    if set(tensors) != trainable:
        missing, extra = sorted(trainable - set(tensors)), sorted(set(tensors) - trainable)
        raise ValueError(f"{path} holds the trained tensors of a model prepared another way: the model's trainable "
                         f"parameters it lacks {missing[:3]}, and tensors the model does not train {extra[:3]} "
                         "(prepare the model as the run did, e.g. the same LoRA layers and rank)")
    wrong = [name for name, t in tensors.items() if t.shape != params[name].shape]
    if wrong:
        raise ValueError(f"{path}: {wrong[0]} is {tuple(tensors[wrong[0]].shape)} in the file and "
                         f"{tuple(params[wrong[0]].shape)} in the model")
    with torch.no_grad():
        for name, tensor in tensors.items():
            params[name].copy_(tensor)


_KEYS = ("format", "version", "model_class", "model_config", "train_config", "history", "measurements", "machine")

