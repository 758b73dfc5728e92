"""The one bridge between ``lmcourse`` models and Hugging Face checkpoints: tables of names.

Private to ``lmcourse`` (imports nothing else from it). Every model family follows one pattern,
and its ``lmcourse/<family>/hf.py`` is the only place where checkpoint names appear:

- ``config_from_hf(hf_config) -> Config``: a ``transformers`` config object, its ``config.json``
  as a dict, that file or its folder (:func:`read_hf_config` reads any of them). Settings the
  model does not implement are refused with a reason, never silently ignored.
- ``config_to_hf(config)``: the ``transformers`` config of the same model, where a twin is needed.
- ``weight_table(...) -> list[Weight]``: the declarative map, one :class:`Weight` row per tensor
  of ours: its name, the checkpoint name(s) it is made of, whether it is stored transposed, and
  which config field each dimension comes from (for error messages). Per-layer rows are written
  once with ``{i}`` and expanded by :func:`per_layer`.
- ``from_hf_state_dict(state_dict, config_or_model) -> model``: normalise the names (prefixes,
  legacy buffers, tied copies), then :func:`load_weights`, which checks everything first (missing,
  unexpected and misshapen tensors, all listed in one ``ValueError``) and only then copies, so a
  failed load leaves the model as it was.
- ``to_hf_state_dict(model) -> dict``: :func:`export_weights`, the same table read backwards.

Several checkpoint names in a row are stacked along dimension 0 of our tensor (BERT's separate
query, key and value matrices in our one ``in_proj``); ``transpose`` marks a checkpoint that
stores ``(in, out)`` where ``nn.Linear`` stores ``(out, in)`` (GPT-2's ``Conv1D``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["Weight", "per_layer", "read_hf_config", "read_safetensors", "load_weights", "export_weights",
           "listed"]

PathLike = str | os.PathLike


@dataclass(frozen=True)
class Weight:
    """One row of a weight table: our tensor and the checkpoint tensor(s) it is made of."""

    ours: str  # our state-dict name, e.g. "blocks.{i}.attn.in_proj.weight"
    hf: tuple[str, ...]  # the checkpoint's name(s); several are stacked along our dimension 0
    transpose: bool = False  # the checkpoint stores each piece transposed, (in, out)
    dims: tuple[str, ...] = ()  # the config field behind each checkpoint dimension (for messages)


def per_layer(rows: Iterable[Weight], num_layers: int) -> list[Weight]:
    """Rows written with ``{i}`` in their names, once per layer ``0 .. num_layers - 1``.

    >>> [w.hf for w in per_layer([Weight("h.{i}.w", ("layer.{i}.w",))], 2)]
    [('layer.0.w',), ('layer.1.w',)]
    """
    rows = list(rows)
    return [replace(w, ours=w.ours.format(i=i), hf=tuple(h.format(i=i) for h in w.hf))
            for i in range(num_layers) for w in rows]


def read_hf_config(source: Any, family: str) -> dict[str, Any]:
    """A ``config.json`` as a dict, from a dict, a ``transformers`` config object (its
    ``to_dict()``), the file's path or the folder holding it."""
    if isinstance(source, Mapping):
        return dict(source)
    if callable(getattr(source, "to_dict", None)):
        return dict(source.to_dict())
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"give a config.json as a dict, a transformers config, its path or its folder, "
                        f"got {type(source).__name__}")
    path = Path(source)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"no {family} config at {path}: expected a Hugging Face config.json")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); expected a Hugging Face config.json") from None


def read_safetensors(source: Mapping[str, torch.Tensor] | PathLike) -> dict[str, torch.Tensor]:
    """A state dict, or the tensors of a safetensors file (or of ``model.safetensors`` in a folder).
    Pickled checkpoints (``.bin``, ``.pt``) are refused: opening one can run code."""
    if isinstance(source, Mapping):
        return dict(source)
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"give a safetensors file, its folder or a state dict, got {type(source).__name__}")
    path = Path(source)
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: expected a safetensors file (model.safetensors) "
                                f"or the folder that holds it")
    if path.suffix in (".bin", ".pt", ".pth", ".ckpt"):
        raise ValueError(f"{path.name} looks like a pickle (torch.save), which can run code when opened; "
                         f"only safetensors files are read. Convert it where you trust it, or use "
                         f"model.safetensors")
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    try:
        return load_file(path)
    except SafetensorError as err:
        raise ValueError(f"{path} is not a readable safetensors file ({err})") from None


def listed(names: Sequence[str], limit: int = 8) -> str:
    """The first `limit` names, comma-separated, then how many more."""
    more = f", ... and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _check_table(model: nn.Module, table: Sequence[Weight]) -> None:
    """A table must name every tensor of the model (a tied one under any of its names) and no other."""
    own = model.state_dict(keep_vars=True)
    named = {w.ours for w in table}
    unknown = sorted(named - set(own))
    covered = {id(own[n]) for n in named if n in own}
    uncovered = [n for n, t in own.items() if id(t) not in covered]
    if unknown or uncovered:
        parts = [f"{what} {listed(names)}" for what, names in (("unknown", unknown), ("not covered", uncovered))
                 if names]
        raise RuntimeError(f"the weight table of {type(model).__name__} does not fit it: {'; '.join(parts)}")


def _pieces(w: Weight, tensor: torch.Tensor) -> list[torch.Tensor]:
    """Our tensor cut into the checkpoint's tensors, each in the checkpoint's layout."""
    return [p.t() if w.transpose else p for p in tensor.chunk(len(w.hf))]  # (k*R, ...) -> k x (R, ...)


def _shape_problem(w: Weight, name: str, got: tuple[int, ...], want: tuple[int, ...],
                   sizes: Mapping[str, int], default_dim: str | None) -> str:
    text = f"checkpoint tensor {name!r} has shape {got}, but the model expects {want} for {w.ours!r}"
    if len(got) == 2 and got == want[::-1]:
        return text + ": it is stored transposed"
    differ = [d for d in range(max(len(got), len(want))) if d >= min(len(got), len(want)) or got[d] != want[d]]
    field = w.dims[differ[0]] if differ and differ[0] < len(w.dims) else default_dim
    if field is None or field not in sizes:
        return text
    return text + f": the config's {field} probably differs (the model has {field}={sizes[field]})"


def load_weights(model: nn.Module, table: Sequence[Weight], given: Mapping[str, Any], *,
                 sizes: Mapping[str, int], default_dim: str | None = None,
                 ignore: Callable[[str], bool] = lambda name: False,
                 problems: Sequence[str] = (),
                 advise: Callable[[list[str], list[str]], list[str]] = lambda missing, unexpected: []) -> None:
    """Copy the checkpoint tensors `given` into `model` by `table`, after checking all of them.

    Checked first, and reported together in one ``ValueError`` (with the caller's `problems`):
    entries that are not tensors, shapes that differ (naming the config field in `sizes` that
    probably differs: the row's ``dims``, else `default_dim`), tensors the model needs but the
    checkpoint lacks, and tensors the model has no place for (unless `ignore` says they may be
    left). `advise(missing, unexpected)` adds hints. Nothing is copied unless all is well.
    """
    _check_table(model, table)
    own = model.state_dict()
    found: list[str] = []
    missing = [h for w in table for h in w.hf if h not in given]
    for w in table:
        for name, want in zip(w.hf, _pieces(w, own[w.ours])):
            if name not in given:
                continue
            if not isinstance(given[name], torch.Tensor):
                found.append(f"checkpoint entry {name!r} is a {type(given[name]).__name__}, not a tensor")
            elif given[name].shape != want.shape:
                found.append(_shape_problem(w, name, tuple(given[name].shape), tuple(want.shape),
                                               sizes, default_dim))
    found += problems
    needed = {h for w in table for h in w.hf}
    unexpected = [n for n in given if n not in needed and not ignore(n)]
    if missing:
        found.append(f"the checkpoint lacks {len(missing)} tensor(s) the model needs: {listed(missing)}")
    if unexpected:
        found.append(f"the checkpoint has {len(unexpected)} tensor(s) the model has no place for: "
                     f"{listed(unexpected)}")
    if found:
        found += advise(missing, unexpected)
        raise ValueError("cannot load these weights into the model:\n- " + "\n- ".join(found))
    with torch.no_grad():
        for w in table:
            pieces = [given[h].t() if w.transpose else given[h] for h in w.hf]
            own[w.ours].copy_(torch.cat(pieces) if len(pieces) > 1 else pieces[0])  # k x (R, ...) -> (k*R, ...)


def export_weights(model: nn.Module, table: Sequence[Weight]) -> dict[str, torch.Tensor]:
    """`model`'s tensors under the checkpoint's names, by `table`, as new contiguous tensors."""
    _check_table(model, table)
    own = model.state_dict()
    out = {}
    for w in table:
        for name, piece in zip(w.hf, _pieces(w, own[w.ours])):
            out[name] = piece.detach().clone(memory_format=torch.contiguous_format)
    return out
