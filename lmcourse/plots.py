"""The book's heatmaps, drawn one way: attention maps on one shared colour scale with a colourbar,
and masks in one convention (allowed = dark blue, blocked = light grey) in every chapter.

Chapter 4a first uses them (attention weights, causal masks); Chapters 4b, 5 and 6 reuse them, so a
reader learns to read one picture once. Left out: interactive plots (the book is static HTML).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["ALLOWED_COLOR", "BLOCKED_COLOR", "show_mask", "attention_maps", "heatmap"]

ALLOWED_COLOR = "#1f4e8c"  # a position may attend
BLOCKED_COLOR = "#e3e3e3"  # a position is masked out


def _matrix(values: Any, name: str) -> np.ndarray:
    """A 2-D float array from a tensor or an array, refusing anything else."""
    if hasattr(values, "detach"):  # a torch tensor
        values = values.detach().float().cpu().numpy()
    array = np.asarray(values)
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(f"{name} must be a non-empty 2-D (queries, keys) matrix, got shape {array.shape}; "
                         "pick one batch element and head first, e.g. weights[0, head]")
    return array


def _tick_labels(ax: Any, labels: Sequence[str] | None, axis: str, size: int) -> None:
    """Label every row or column with its token when they fit; otherwise leave matplotlib's numbers."""
    if labels is None:
        return
    if len(labels) != size:
        raise ValueError(f"{len(labels)} {axis} labels for {size} {'columns' if axis == 'x' else 'rows'}")
    if size > 48:  # too many to read: keep the numeric ticks
        return
    fontsize = max(5.0, min(9.0, 240 / size))
    if axis == "x":
        ax.set_xticks(range(size), labels, rotation=90, fontsize=fontsize)
    else:
        ax.set_yticks(range(size), labels, fontsize=fontsize)


def show_mask(ax: Any, allowed: Any, labels: Sequence[str] | None = None, title: str | None = None,
              legend: bool = True) -> Any:
    """Draw a boolean "may attend" matrix (rows: queries, columns: keys) in the book's colours."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    mask = _matrix(allowed, "allowed").astype(bool)
    image = ax.imshow(mask, cmap=ListedColormap([BLOCKED_COLOR, ALLOWED_COLOR]), vmin=0, vmax=1)
    ax.set_xticks(np.arange(-0.5, mask.shape[1]), minor=True)
    ax.set_yticks(np.arange(-0.5, mask.shape[0]), minor=True)
    ax.grid(which="minor", color="white", linewidth=0.8)
    ax.tick_params(which="minor", length=0)
    _tick_labels(ax, labels, "x", mask.shape[1])
    _tick_labels(ax, labels, "y", mask.shape[0])
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query (attending)")
    if title:
        ax.set_title(title)
    if legend:
        ax.legend(handles=[Patch(color=ALLOWED_COLOR, label="may attend"), Patch(color=BLOCKED_COLOR, label="masked")],
                  loc="upper center", bbox_to_anchor=(0.5, -0.18 if labels is None else -0.32), ncol=2,
                  frameon=False, fontsize=8)
    return image


def _per_panel(labels: Any, count: int) -> list[Sequence[str] | None]:
    """One label list for every panel, or a list of lists, one per panel."""
    if labels is None or (len(labels) and isinstance(labels[0], str)):
        return [labels] * count
    if len(labels) != count:
        raise ValueError(f"got {len(labels)} label lists for {count} maps; give one list, or one per map")
    return list(labels)


def attention_maps(maps: Sequence[Any], titles: Sequence[str] | None = None, x_labels: Any = None,
                   y_labels: Any = None, *, ncols: int | None = None, vmin: float = 0.0, vmax: float | None = None,
                   cmap: str = "viridis", colorbar_label: str = "attention weight", panel_size: float = 2.6) -> Any:
    """Several (queries, keys) maps side by side on ONE colour scale with ONE colourbar.

    A shared scale lets the eye compare panels: the same colour is the same weight everywhere.
    `vmax` defaults to the largest value of all maps (pass 1 to show probabilities on [0, 1]).
    Labels are one list for every map or one list per map; y labels appear on the first column only.
    """
    import matplotlib.pyplot as plt

    arrays = [_matrix(m, f"maps[{i}]") for i, m in enumerate(maps)]
    if not arrays:
        raise ValueError("attention_maps needs at least one map")
    if titles is not None and len(titles) != len(arrays):
        raise ValueError(f"{len(titles)} titles for {len(arrays)} maps")
    ncols = min(ncols or len(arrays), len(arrays))
    nrows = -(-len(arrays) // ncols)
    top = max(float(a.max()) for a in arrays) if vmax is None else vmax
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_size * ncols + 1.0, panel_size * nrows + 0.4),
                             squeeze=False, constrained_layout=True)
    xs, ys = _per_panel(x_labels, len(arrays)), _per_panel(y_labels, len(arrays))
    for i, ax in enumerate(axes.flat):
        if i >= len(arrays):
            ax.set_visible(False)
            continue
        image = ax.imshow(arrays[i], cmap=cmap, vmin=vmin, vmax=top)
        _tick_labels(ax, xs[i], "x", arrays[i].shape[1])
        if i % ncols == 0:
            _tick_labels(ax, ys[i], "y", arrays[i].shape[0])
        else:
            ax.set_yticks([])
        if titles is not None:
            ax.set_title(titles[i], fontsize=10)
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.85, label=colorbar_label)
    return fig


def heatmap(ax: Any, matrix: Any, *, x_labels: Sequence[str] | None = None, y_labels: Sequence[str] | None = None,
            cmap: str = "viridis", vmin: float | None = None, vmax: float | None = None,
            colorbar_label: str | None = None, center: float | None = None) -> Any:
    """One matrix with its own colourbar; `center` makes the scale symmetric about a value (use a
    diverging `cmap` such as "RdBu_r" for signed numbers)."""
    array = _matrix(matrix, "matrix")
    if center is not None:
        reach = float(np.abs(array - center).max()) or 1.0
        vmin, vmax = center - reach, center + reach
    image = ax.imshow(array, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    _tick_labels(ax, x_labels, "x", array.shape[1])
    _tick_labels(ax, y_labels, "y", array.shape[0])
    ax.figure.colorbar(image, ax=ax, label=colorbar_label)
    return image
