"""LoRA, low-rank adaptation (Hu et al., 2021), written from scratch (Chapter 8).

Fine-tuning changes a pretrained weight ``W (out, in)`` by some ``dW``. LoRA bets that ``dW`` has
low rank and learns it as a product ``B @ A`` of two thin matrices, ``A (r, in)`` and ``B (out, r)``,
while ``W`` stays frozen::

    y = x W^T + (alpha / r) * x A^T B^T

``B`` starts at zero, so a freshly wrapped model computes exactly what the base model did; ``A``
starts as PyTorch initialises an ``nn.Linear`` (Kaiming-uniform with ``a = sqrt(5)``), as in the
LoRA reference code and ``peft``. For SmolLM2-135M's ``576 x 576`` attention output, rank 8 trains
``8 (576 + 576) = 9,216`` numbers instead of ``331,776``. After training, :func:`merge` folds
``(alpha / r) B @ A`` into ``W``: the adapted model then costs nothing extra at inference.

- :class:`LoRALinear`: a frozen ``nn.Linear`` plus the trainable ``A`` and ``B``;
- :func:`apply_lora`: wrap chosen linear layers of any ``nn.Module`` by name (``"out_proj"``,
  ``"mlp.up"``; the book's Llama calls its layers ``attn.in_proj`` (W_Q, W_K, W_V packed),
  ``attn.out_proj``, ``mlp.gate``, ``mlp.up``, ``mlp.down``), freezing everything else. An adapter
  on the packed ``in_proj`` shares one ``A`` among queries, keys and values, so it is not ``peft``'s
  three adapters on ``q_proj``, ``k_proj`` and ``v_proj``;
- :func:`merge` / :func:`unmerge`, :func:`trainable_parameters`;
- :func:`save_adapter` / :func:`load_adapter`: only ``A`` and ``B`` (kilobytes, not the model),
  in a safetensors file whose metadata records ``r``, ``alpha`` and the targets.

The tests check all of it against ``peft``. Left out: LoRA for embeddings and convolutions,
several adapters on one model, per-layer ranks, bias training, and variants (DoRA, rsLoRA's
``alpha / sqrt(r)`` scale, QLoRA's quantised base weights).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from lmcourse._checks import check_float, check_positive_int
from lmcourse._io import atomic_write_bytes

__all__ = ["LoRALinear", "apply_lora", "merge", "unmerge", "lora_layers", "trainable_parameters",
           "save_adapter", "load_adapter"]

_FORMAT = "lmcourse-lora"  # the safetensors metadata's "format": what load_adapter accepts


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable rank-`r` update: ``base(x) + (alpha / r) x A^T B^T``.

    >>> layer = LoRALinear(nn.Linear(6, 4), r=2, alpha=4)
    >>> tuple(layer.A.shape), tuple(layer.B.shape), layer.scale  # A (r, in), B (out, r)
    ((2, 6), (4, 2), 2.0)
    >>> x = torch.randn(3, 6)
    >>> torch.equal(layer(x), layer.base(x))  # B = 0: the base layer's output, exactly
    True
    """

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0) -> None:
        super().__init__()
        _check_hyperparameters(r, alpha, dropout)
        _check_rank(r, base)
        self.base = base.requires_grad_(False)  # W (out, in) and its bias: frozen
        self.r, self.alpha, self.scale = r, alpha, alpha / r
        w = base.weight
        self.A = nn.Parameter(torch.empty(r, base.in_features, dtype=w.dtype, device=w.device))
        self.B = nn.Parameter(torch.zeros(base.out_features, r, dtype=w.dtype, device=w.device))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))  # nn.Linear's own initialisation, as peft's
        self.dropout = nn.Dropout(dropout)
        self.merged = False  # True while (alpha / r) B @ A is inside base.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (..., in) -> (..., out)``; only ``base(x)`` once the update is merged into it."""
        if self.merged:
            return self.base(x)
        h = F.linear(self.dropout(x), self.A)  # (..., in) @ (in, r) -> (..., r)
        return self.base(x) + F.linear(h, self.B) * self.scale  # (..., r) @ (r, out) -> (..., out)

    @property
    def weight(self) -> torch.Tensor:
        """The effective weight ``W + (alpha / r) B @ A``, for code that reads ``.weight`` instead of
        calling the layer (the book's attention splits its packed ``in_proj`` weight into W_Q, W_K and
        W_V); gradients reach ``A`` and ``B`` through it. LoRA's dropout does not act on this path."""
        return self.base.weight if self.merged else self.base.weight + self.delta_weight()

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base.bias

    def delta_weight(self) -> torch.Tensor:
        """The update to ``W``: ``(alpha / r) B @ A``, ``(out, r) @ (r, in) -> (out, in)``."""
        return (self.B @ self.A) * self.scale

    def merge(self) -> None:
        """``W += (alpha / r) B @ A``: the forward then costs one matrix product, as before LoRA."""
        if self.merged:
            raise RuntimeError("this LoRA layer is already merged; unmerge it first")
        with torch.no_grad():
            self.base.weight += self.delta_weight()
        self.merged = True

    def unmerge(self) -> None:
        """``W -= (alpha / r) B @ A``: the frozen base weight again (up to float rounding)."""
        if not self.merged:
            raise RuntimeError("this LoRA layer is not merged")
        with torch.no_grad():
            self.base.weight -= self.delta_weight()
        self.merged = False

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha}, merged={self.merged}"


def _check_hyperparameters(r: int, alpha: float, dropout: float) -> None:
    check_positive_int("r", r)
    check_float("alpha", alpha, 0.0, low_open=True)
    check_float("dropout", dropout, 0.0, 1.0, high_open=True)


def _check_rank(r: int, base: nn.Module, name: str = "") -> None:
    if not isinstance(base, nn.Linear):
        raise TypeError(f"LoRALinear wraps an nn.Linear, got {type(base).__name__}")
    limit = min(base.in_features, base.out_features)
    if r > limit:
        where = f" {name!r}" if name else ""
        raise ValueError(f"r={r} is larger than the linear layer{where} ({base.out_features} x {base.in_features}) "
                         f"allows: B @ A has rank at most {limit}; choose r <= {limit}")


def _linear_layers(model: nn.Module) -> dict[str, nn.Linear]:
    """Every ``nn.Linear`` of `model` by its dotted name (those inside a LoRA layer excluded)."""
    inside = {f"{n}.base" for n, m in model.named_modules() if isinstance(m, LoRALinear)}
    return {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear) and n not in inside}


def _check_targets(targets: str | Sequence[str], linear: dict[str, nn.Linear]) -> list[str]:
    """The names of the linear layers that `targets` (names or name suffixes) choose, or a
    ``ValueError`` naming the available layers when a target chooses none."""
    targets = [targets] if isinstance(targets, str) else list(targets)
    if not targets or not all(isinstance(t, str) and t for t in targets):
        raise ValueError(f"targets must be a non-empty list of layer names or name suffixes, got {targets!r}")
    chosen: set[str] = set()
    for target in targets:
        found = {n for n in linear if n == target or n.endswith("." + target)}
        if not found:
            raise ValueError(f"target {target!r} matches no linear layer; the model's linear layers are: "
                             f"{', '.join(linear) or '(none)'}")
        chosen |= found
    return [n for n in linear if n in chosen]  # in the model's order


def _check_untied(model: nn.Module, names: list[str]) -> None:
    """Refuse a layer whose weight another module shares (a tied output layer): merging into it
    would change the embedding as well."""
    owners: dict[int, int] = {}
    for module in model.modules():
        for p in module.parameters(recurse=False):
            owners[id(p)] = owners.get(id(p), 0) + 1
    tied = [n for n in names if owners[id(model.get_submodule(n).weight)] > 1]
    if tied:
        raise ValueError(f"cannot adapt {', '.join(tied)}: its weight is shared with another module (tied "
                         f"embeddings), and merging would change both; choose other targets")


def apply_lora(model: nn.Module, targets: str | Sequence[str], r: int, alpha: float,
               dropout: float = 0.0) -> list[str]:
    """Replace each linear layer of `model` that `targets` names (a full dotted name, or a suffix:
    ``"out_proj"`` chooses every ``blocks.N.attn.out_proj``) by a :class:`LoRALinear`, in place,
    and freeze every other parameter. Returns the names of the wrapped layers.

    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> apply_lora(model, ["0", "2"], r=2, alpha=4)
    ['0', '2']
    >>> trainable_parameters(model)  # 2 (4 + 8) + 2 (8 + 2)
    44
    """
    _check_hyperparameters(r, alpha, dropout)
    if lora_layers(model):
        raise ValueError("this model already has LoRA layers; apply_lora once per model")
    linear = _linear_layers(model)
    names = _check_targets(targets, linear)
    _check_untied(model, names)
    for name in names:
        _check_rank(r, linear[name], name)
    model.requires_grad_(False)
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, LoRALinear(linear[name], r, alpha, dropout))
    return names


def lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    """The model's :class:`LoRALinear` layers by dotted name (empty before :func:`apply_lora`)."""
    return {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}


def _require_lora(model: nn.Module, who: str) -> dict[str, LoRALinear]:
    layers = lora_layers(model)
    if not layers:
        raise ValueError(f"{who}: the model has no LoRA layers; call apply_lora first")
    return layers


def merge(model: nn.Module) -> None:
    """Fold every LoRA update into its base weight (``W += (alpha / r) B @ A``), for inference."""
    layers = _require_lora(model, "merge")
    if any(layer.merged for layer in layers.values()):
        raise RuntimeError("merge: the model is already merged; unmerge it first")
    for layer in layers.values():
        layer.merge()


def unmerge(model: nn.Module) -> None:
    """Undo :func:`merge` (``W -= (alpha / r) B @ A``), to train the adapters further."""
    layers = _require_lora(model, "unmerge")
    if not all(layer.merged for layer in layers.values()):
        raise RuntimeError("unmerge: the model is not merged")
    for layer in layers.values():
        layer.unmerge()


def trainable_parameters(model: nn.Module) -> int:
    """How many numbers the optimiser updates (shared parameters counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def save_adapter(model: nn.Module, path: str | Path, overwrite: bool = False) -> Path:
    """Write only the adapters, ``<layer>.A`` and ``<layer>.B``, to a safetensors file, with ``r``,
    ``alpha``, ``dropout`` and the layer names as metadata. An existing file is replaced only
    with ``overwrite=True``."""
    from safetensors.torch import save

    layers = _require_lora(model, "save_adapter")
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    first = next(iter(layers.values()))
    if any((m.r, m.alpha) != (first.r, first.alpha) for m in layers.values()):
        raise ValueError("save_adapter expects one r and alpha for every LoRA layer (as apply_lora makes)")
    tensors = {}
    for name, layer in layers.items():
        tensors[f"{name}.A"] = layer.A.detach().cpu().contiguous()
        tensors[f"{name}.B"] = layer.B.detach().cpu().contiguous()
    metadata = {"format": _FORMAT, "r": str(first.r), "alpha": repr(float(first.alpha)),
                "dropout": repr(float(first.dropout.p)), "targets": json.dumps(list(layers))}
    atomic_write_bytes(path, save(tensors, metadata=metadata))
    return path


def _read_adapter(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    if not path.is_file():
        raise FileNotFoundError(f"no adapter file at {path}")
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if metadata.get("format") != _FORMAT or not {"r", "alpha", "targets"} <= metadata.keys():
        raise ValueError(f"{path} is not a LoRA adapter written by save_adapter (its metadata lacks "
                         f"format={_FORMAT!r}, r, alpha and targets)")
    return tensors, metadata


def _shapes(layers: dict[str, nn.Linear | LoRALinear], r: int) -> dict[str, tuple[int, ...]]:
    """The adapter tensors' names and shapes for these layers: ``A (r, in)``, ``B (out, r)``."""
    out = {}
    for name, layer in layers.items():
        base = layer.base if isinstance(layer, LoRALinear) else layer
        rank = layer.r if isinstance(layer, LoRALinear) else r
        out[f"{name}.A"], out[f"{name}.B"] = (rank, base.in_features), (base.out_features, rank)
    return out


def _check_fits(path: Path, tensors: dict[str, torch.Tensor], expected: dict[str, tuple[int, ...]]) -> None:
    """Refuse an adapter whose layer names or tensor shapes differ from what the model expects."""
    missing, extra = sorted(expected.keys() - tensors.keys()), sorted(tensors.keys() - expected.keys())
    if missing or extra:
        raise ValueError(f"adapter {path} does not fit this model: tensors missing from the file {missing[:4]}, "
                         f"tensors the model has no layer for {extra[:4]}")
    wrong = [f"{k} {tuple(tensors[k].shape)} != {shape}" for k, shape in expected.items()
             if tuple(tensors[k].shape) != shape]
    if wrong:
        raise ValueError(f"adapter {path} does not fit this model: shapes differ (file != model): "
                         f"{'; '.join(wrong[:4])}")


def load_adapter(model: nn.Module, path: str | Path) -> list[str]:
    """Load an adapter written by :func:`save_adapter` into `model`: onto its LoRA layers, or, on a
    plain base model, after :func:`apply_lora` with the file's ``r``, ``alpha`` and layer names.
    Everything is checked before anything is copied. Returns the adapted layers' names."""
    path = Path(path)
    tensors, meta = _read_adapter(path)
    targets, r, alpha = json.loads(meta["targets"]), int(meta["r"]), float(meta["alpha"])
    if not lora_layers(model):
        linear = _linear_layers(model)
        absent = [t for t in targets if t not in linear]
        if absent:
            raise ValueError(f"adapter {path} does not fit this model: it adapts {absent[:4]}, which the model "
                             f"lacks; the model's linear layers are: {', '.join(linear) or '(none)'}")
        _check_fits(path, tensors, _shapes({n: linear[n] for n in targets}, r))
        apply_lora(model, targets, r, alpha, float(meta.get("dropout", "0.0")))
    layers = lora_layers(model)
    _check_fits(path, tensors, _shapes(layers, r))
    scaled = [n for n, m in layers.items() if float(m.alpha) != alpha]
    if scaled:
        raise ValueError(f"adapter {path} does not fit this model: it was trained with alpha={alpha}, the "
                         f"model's LoRA layers {scaled[:4]} have another alpha")
    if any(layer.merged for layer in layers.values()):
        raise RuntimeError("load_adapter: the model is merged; unmerge it before loading new adapters")
    with torch.no_grad():
        for name, layer in layers.items():
            layer.A.copy_(tensors[f"{name}.A"])
            layer.B.copy_(tensors[f"{name}.B"])
    return list(layers)
