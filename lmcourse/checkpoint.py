r"""Training checkpoints: one safetensors file that holds everything needed to resume a run.

Chapter 3b (Recurrent language models) uses it; every later chapter that trains does too,
usually through ``TrainConfig(checkpoint=...)`` and ``train(..., resume_from=...)`` in
:mod:`lmcourse.train`, which calls :func:`save_checkpoint` and :func:`load_checkpoint`.

**The format.** A checkpoint is a plain safetensors file: a little-endian 8-byte header length,
a JSON header, then the raw tensor bytes. The tensors are the model's weights (``model.<name>``),
early stopping's best weights (``best.<name>``), the optimizer's moments
(``optimizer.<param id>.<name>``), the recurrent state carried into the next chunk
(``state.<i>``) and the torch and NumPy random states (``rng.torch``, ``rng.numpy``). Everything
else is JSON in the header's string metadata: the format name and version, the step, the model's
class and config, the :class:`~lmcourse.trainstate.TrainConfig`, the optimizer's hyper-parameters,
the scheduler, the position in the data (:class:`~lmcourse.trainstate.LoopState`), the
:class:`~lmcourse.trainstate.History` and the Python and NumPy RNG states. Any safetensors reader
can open it; ``safetensors.torch.load_file`` gives the tensors.

**Why safetensors and never pickle.** ``torch.save`` writes a pickle, and unpickling a file can
run arbitrary code: a downloaded ``.pt`` file is a program. A safetensors file is only data, so
opening one is safe, and reading a tensor does not need the class that wrote it.

**Atomic writes.** :func:`save_checkpoint` writes a temporary file beside the target, flushes it
to disk and renames it over the target; a crash or Ctrl-C mid-save leaves the previous checkpoint
intact and no stray file behind.

**What is refused**, always before anything is changed: a missing path or a directory; a file
that is not safetensors (pickles included, with a hint), is damaged, or is safetensors but not an
lmcourse checkpoint (:class:`CheckpointError`); tensors that do not fit the model, or optimizer
state for another optimizer (``ValueError`` listing the mismatches); overwriting an existing file
that is not an lmcourse checkpoint (``FileExistsError``); and, when :func:`~lmcourse.train.train`
resumes (:func:`resume_checkpoint`), a checkpoint trained with another ``batch_size``, ``bptt`` or
training stream.

What a run keeps lives in :mod:`lmcourse.trainstate`, which both this module and the loop import.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.torch
import torch
from torch import nn

from lmcourse._io import atomic_path
from lmcourse._torch import model_device
from lmcourse.trainstate import History, LoopState, PathLike, TrainConfig, check_language_model

__all__ = ["Checkpoint", "CheckpointError", "LoopState", "save_checkpoint", "load_checkpoint",
           "resume_checkpoint", "check_save_target"]


# ---------------------------------------------------------------------------------------------
# What a checkpoint holds

_FORMAT = "lmcourse.train checkpoint"  # the name the first files were written with; keep it
_VERSION = "1"


class CheckpointError(ValueError):
    """A file that lmcourse will not read as a checkpoint (not safetensors, or not ours)."""


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` read besides the tensors it loaded into the model/optimizer."""

    path: Path
    step: int
    loop: LoopState
    history: History
    train_config: dict | None  # TrainConfig as a dict, if saved
    model_config: dict | None  # the model's config as a dict, if it has a dataclass config
    model_class: str
    best_weights: dict[str, torch.Tensor] | None  # kept for early stopping


# ---------------------------------------------------------------------------------------------
# Files that are refused

def _sniff(path: Path) -> None:
    """Raise CheckpointError unless the file starts like safetensors (8-byte length + JSON)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(9)
    header_len = int.from_bytes(head[:8], "little") if len(head) >= 8 else -1
    if len(head) < 9 or not 0 < header_len <= size - 8 or head[8:9] != b"{":
        # a zip (torch.save) or a raw pickle; tested only now, since a safetensors header's length
        # may itself start with the byte 0x80
        pickle_like = head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"
        hint = " (it looks like a torch.save / pickle file)" if pickle_like else ""
        raise CheckpointError(
            f"{path} is not a safetensors checkpoint{hint}. lmcourse reads checkpoints only in the "
            "safetensors format and does not load pickles (torch.save .pt/.pth files), because "
            "unpickling can run arbitrary code. Write checkpoints with "
            "lmcourse.checkpoint.save_checkpoint or TrainConfig(checkpoint=...).")


def _read(path: PathLike) -> tuple[Path, dict[str, torch.Tensor], dict[str, str]]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, "no checkpoint file at this path", str(path))
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "checkpoint path is a directory; give the "
                                ".safetensors file itself", str(path))
    _sniff(path)
    try:
        with safetensors.safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:  # SafetensorError: damaged or truncated file
        raise CheckpointError(f"{path} is not a readable safetensors checkpoint ({err}); "
                              "lmcourse does not load pickles") from err
    if meta.get("format") != _FORMAT:
        raise CheckpointError(
            f"{path} is a safetensors file but not an lmcourse checkpoint (its metadata has no "
            f"format={_FORMAT!r}); for bare weights use safetensors.torch.load_model")
    if meta.get("version") != _VERSION:
        raise CheckpointError(f"{path} is checkpoint format version {meta.get('version')!r}; "
                              f"this lmcourse reads version {_VERSION}")
    return path, tensors, meta


def _is_our_checkpoint(path: Path) -> bool:
    """Whether `path` is an lmcourse checkpoint, from its header alone (no tensors read)."""
    try:
        _sniff(path)
        with safetensors.safe_open(str(path), framework="pt") as f:
            return (f.metadata() or {}).get("format") == _FORMAT
    except Exception:
        return False


def check_save_target(path: Path) -> None:
    """Refuse a directory, or an existing file that is not an lmcourse checkpoint."""
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "checkpoint path is a directory; give a file name "
                                "such as run.safetensors", str(path))
    if path.exists() and not _is_our_checkpoint(path):
        raise FileExistsError(errno.EEXIST, "a file that is not an lmcourse checkpoint exists here; "
                              "refusing to overwrite it (choose another checkpoint path)", str(path))


# ---------------------------------------------------------------------------------------------
# Saving

def _json(obj: Any) -> str:
    def default(o: Any) -> Any:
        if isinstance(o, os.PathLike):
            return os.fspath(o)
        if isinstance(o, (np.integer, np.floating, np.bool_)):
            return o.item()
        if isinstance(o, torch.Tensor) and o.numel() == 1:
            return o.item()
        raise TypeError(f"cannot store {type(o).__name__} in checkpoint metadata (JSON)")
    return json.dumps(obj, default=default)


def _config_dict(model: nn.Module) -> dict | None:
    config = getattr(model, "config", None)
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return json.loads(_json(asdict(config)))
    return config if isinstance(config, dict) else None


def _cpu_copy(t: torch.Tensor) -> torch.Tensor:
    """A detached, contiguous CPU copy: tied weights must not share memory on disk."""
    return t.detach().cpu().contiguous().clone()


def _flatten_state(state: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Recurrent state -> JSON structure (null, key string, or list), tensors under "state.i"."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        key = f"state.{len([k for k in tensors if k.startswith('state.')])}"
        tensors[key] = _cpu_copy(state)
        return key
    if isinstance(state, (tuple, list)):
        return [_flatten_state(s, tensors) for s in state]
    raise TypeError(f"cannot checkpoint a recurrent state of type {type(state).__name__}")


def save_checkpoint(
    path: PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    *,
    step: int = 0,
    history: History | None = None,
    config: TrainConfig | None = None,
    loop: LoopState | None = None,
    best_weights: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write one safetensors file holding everything needed to resume training exactly.

    Tensors: ``model.<name>``, ``best.<name>`` (early stopping's best weights),
    ``optimizer.<param id>.<name>`` (e.g. AdamW's ``exp_avg``), ``state.<i>`` (the carried
    recurrent state), ``rng.torch`` (the CPU generator's ByteTensor) and ``rng.numpy``. Metadata
    (JSON strings): ``format``, ``version``, ``step``, ``model_class``, ``model_config``,
    ``train_config``, ``optimizer`` (class, param_groups, non-tensor state such as SGD's missing
    momentum buffers), ``scheduler`` (its state_dict), ``loop`` (epoch, row offset, the state's
    structure, early-stopping counter, data hash), ``history`` and ``rng`` (Python and NumPy).

    The file is written beside `path` and renamed over it, so a crash mid-save keeps the old
    checkpoint. An existing file that is not an lmcourse checkpoint is never overwritten.
    """
    path = Path(path)
    check_save_target(path)
    loop = loop or LoopState()
    tensors: dict[str, torch.Tensor] = {}
    for k, v in model.state_dict().items():
        tensors[f"model.{k}"] = _cpu_copy(v)
    for k, v in (best_weights or {}).items():
        tensors[f"best.{k}"] = _cpu_copy(v)
    opt_meta = _optimizer_meta(optimizer, tensors) if optimizer is not None else None
    structure = _flatten_state(loop.state, tensors)
    rng_meta = _rng_meta(tensors)
    meta = {
        "format": _FORMAT,
        "version": _VERSION,
        "step": str(int(step)),
        "model_class": type(model).__qualname__,
        "model_config": _json(_config_dict(model)),
        "train_config": _json(asdict(config) if config is not None else None),
        "optimizer": _json(opt_meta),
        "scheduler": _json(scheduler.state_dict() if scheduler is not None else None),
        "loop": _json({"epoch": loop.epoch, "offset": loop.offset, "state": structure,
                       "bad_evals": loop.bad_evals, "data_sha256": loop.data_sha256}),
        "history": _json(asdict(history or History())),
        "rng": _json(rng_meta),
    }
    _write(path, tensors, meta)
    return path


def _optimizer_meta(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> dict:
    """The optimizer's class, groups and non-tensor state; its tensors go to ``optimizer.<id>.<name>``."""
    sd = optimizer.state_dict()
    other: dict[str, dict[str, Any]] = {}
    for pid, entries in sd["state"].items():
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{pid}.{name}"] = _cpu_copy(value)
            else:
                other.setdefault(str(pid), {})[name] = value
    return {"class": type(optimizer).__name__, "param_groups": sd["param_groups"], "state": other}


def _rng_meta(tensors: dict[str, torch.Tensor]) -> dict:
    """The Python and NumPy RNG states as JSON; the torch and NumPy key arrays go to `tensors`."""
    tensors["rng.torch"] = torch.get_rng_state()  # (5056,) uint8
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    tensors["rng.numpy"] = torch.from_numpy(np.asarray(np_keys, dtype=np.int64))  # (624,)
    py_version, py_state, py_gauss = random.getstate()
    return {"python": [py_version, list(py_state), py_gauss],
            "numpy": [np_name, int(np_pos), int(np_has_gauss), float(np_gauss)]}


def _write(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> None:
    """Write a temporary safetensors file beside `path`, flush it to disk, rename it over `path`."""
    with atomic_path(path) as tmp:
        safetensors.torch.save_file(tensors, str(tmp), metadata=meta)


# ---------------------------------------------------------------------------------------------
# Loading

def _unflatten_state(structure: Any, tensors: dict[str, torch.Tensor], device: torch.device) -> Any:
    if structure is None:
        return None
    if isinstance(structure, str):
        return tensors[structure].to(device)
    return tuple(_unflatten_state(s, tensors, device) for s in structure)


def _model_mismatches(tensors: dict[str, torch.Tensor], model: nn.Module) -> list[str]:
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    stored = {k[len("model."):]: tuple(v.shape) for k, v in tensors.items() if k.startswith("model.")}
    problems = [f"missing from the checkpoint: {k}" for k in expected if k not in stored]
    problems += [f"not in the model: {k}" for k in stored if k not in expected]
    problems += [f"shape of {k}: checkpoint {stored[k]} vs model {expected[k]}"
                 for k in expected if k in stored and stored[k] != expected[k]]
    return problems


def _optimizer_state(tensors: dict[str, torch.Tensor], opt_meta: dict, optimizer: torch.optim.Optimizer,
                     path: Path) -> dict:
    """Rebuild the optimizer's state_dict from tensors and metadata; check it fits `optimizer`."""
    if type(optimizer).__name__ != opt_meta["class"]:
        raise ValueError(f"{path} holds {opt_meta['class']} state, but the optimizer is "
                         f"{type(optimizer).__name__}; build the optimizer with the same TrainConfig")
    saved = [len(g["params"]) for g in opt_meta["param_groups"]]
    current = [len(g["params"]) for g in optimizer.param_groups]
    if saved != current:
        raise ValueError(f"{path}: optimizer parameter groups have sizes {saved}, "
                         f"this optimizer's have {current}")
    state: dict[int, dict[str, Any]] = {}
    for pid, entries in opt_meta["state"].items():
        state.setdefault(int(pid), {}).update(entries)
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
    groups = [{k: tuple(v) if isinstance(v, list) and k != "params" else v for k, v in g.items()}
              for g in opt_meta["param_groups"]]
    return {"state": state, "param_groups": groups}


def _apply(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, str], model: nn.Module,
           optimizer: torch.optim.Optimizer | None, scheduler: Any, restore_rng: bool) -> Checkpoint:
    """Check everything first, then load: a refused checkpoint changes nothing."""
    problems = _model_mismatches(tensors, model)
    if problems:
        shown = "\n  - ".join(problems[:5])
        more = f"\n  ... and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise ValueError(
            f"checkpoint {path} does not fit this model ({len(problems)} mismatches):\n  - {shown}{more}\n"
            f"checkpoint: {meta.get('model_class')} with config {json.loads(meta['model_config'])}\n"
            f"this model: {type(model).__qualname__} with config {_config_dict(model)}")
    opt_meta = json.loads(meta["optimizer"])
    opt_state = None
    if optimizer is not None:
        if opt_meta is None:
            raise ValueError(f"{path} has no optimizer state (it was saved with optimizer=None)")
        opt_state = _optimizer_state(tensors, opt_meta, optimizer, path)
    sched_state = json.loads(meta["scheduler"])
    if scheduler is not None and sched_state is None:
        raise ValueError(f"{path} has no scheduler state (it was saved with scheduler=None)")

    device = model_device(model)
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    if optimizer is not None:
        optimizer.load_state_dict(opt_state)
    if scheduler is not None:
        scheduler.load_state_dict(sched_state)
    if restore_rng:
        torch.set_rng_state(tensors["rng.torch"])
        py, npy = json.loads(meta["rng"]).values()
        random.setstate((py[0], tuple(py[1]), py[2]))
        np.random.set_state((npy[0], tensors["rng.numpy"].numpy().astype(np.uint32), *npy[1:]))
    loop_meta = json.loads(meta["loop"])
    loop = LoopState(loop_meta["epoch"], loop_meta["offset"],
                     _unflatten_state(loop_meta["state"], tensors, device),
                     loop_meta["bad_evals"], loop_meta["data_sha256"])
    history_fields = {f.name for f in dataclasses.fields(History)}
    history = History(**{k: v for k, v in json.loads(meta["history"]).items() if k in history_fields})
    best = {k[len("best."):]: v.to(device) for k, v in tensors.items() if k.startswith("best.")}
    return Checkpoint(path, int(meta["step"]), loop, history, json.loads(meta["train_config"]),
                      json.loads(meta["model_config"]), meta["model_class"], best or None)


def load_checkpoint(
    path: PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    *,
    restore_rng: bool = False,
) -> Checkpoint:
    """Load a :func:`save_checkpoint` file into `model` (and `optimizer`, `scheduler` if given).

    Refuses, before changing anything: a missing path (``FileNotFoundError``), a directory
    (``IsADirectoryError``), a file that is not an lmcourse safetensors checkpoint, pickles
    included (:class:`CheckpointError`), and tensors that do not fit the model (``ValueError``
    listing the first mismatches and both configs). ``restore_rng=True`` also sets the torch,
    Python and NumPy random states saved with it, as :func:`~lmcourse.train.train` does on resume.

    >>> import tempfile
    >>> class Unigram(nn.Module):  # the smallest model that follows the protocol
    ...     def __init__(self, bias=0.0):
    ...         super().__init__()
    ...         self.config, self.logits = None, nn.Parameter(torch.arange(4.0) * bias)
    ...     def nll(self, inputs, targets, state):
    ...         return -self.logits.log_softmax(0)[targets], None
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = save_checkpoint(f"{tmp}/run.safetensors", Unigram(bias=1.0), step=7)
    ...     fresh = Unigram()
    ...     info = load_checkpoint(path, fresh)
    >>> info.step, info.model_class, fresh.logits.tolist()
    (7, 'Unigram', [0.0, 1.0, 2.0, 3.0])
    """
    check_language_model(model)
    path, tensors, meta = _read(path)
    return _apply(path, tensors, meta, model, optimizer, scheduler, restore_rng)


def resume_checkpoint(path: PathLike, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                      config: TrainConfig, data_sha256: str) -> Checkpoint:
    """Load a checkpoint to continue training, as :func:`~lmcourse.train.train` does on resume:
    weights, optimizer, scheduler and RNG states. Refuses it first, changing nothing, if it was
    trained with another ``batch_size`` or ``bptt`` or on a training stream of another sha256."""
    path, tensors, meta = _read(path)
    saved = json.loads(meta["train_config"]) or {}
    for name in ("batch_size", "bptt"):
        if saved.get(name) is not None and saved[name] != getattr(config, name):
            raise ValueError(f"{path} was trained with {name}={saved[name]}, this config has "
                             f"{name}={getattr(config, name)}; resume with the same value")
    saved_sha = json.loads(meta["loop"])["data_sha256"]
    if saved_sha and saved_sha != data_sha256:
        raise ValueError(f"{path} was trained on a different training stream (sha256 "
                         f"{saved_sha[:12]}... vs {data_sha256[:12]}...); resume with the same tokens")
    return _apply(path, tensors, meta, model, optimizer, scheduler, restore_rng=True)
