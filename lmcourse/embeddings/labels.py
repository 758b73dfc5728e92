"""Labels for a scatter of words that do not cover each other (Chapter 3a's PCA pictures).

Words that the vectors put close together, the point of the picture, get labels that overlap when
each sits at a fixed offset. :func:`place_labels` instead tries, for each point in turn, a list of
offsets (nearest first, in eight directions) and keeps the first whose text box overlaps no label
already placed and no marker; a label moved away from its point gets a thin leader line. The
placement is greedy and deterministic (no randomness, no extra package such as adjustText); it
assumes the figure's size and the axes' limits are final, since it measures text in pixels.
Left out: optimising all labels jointly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["place_labels"]

# Offsets to try, in points: right, up, left, down and the diagonals, at growing distances.
_DIRECTIONS = [(1, 0.2), (1, 1), (-1, 0.2), (0, 1), (0, -1), (1, -1), (-1, 1), (-1, -1)]
_RADII = (4, 12, 22, 34, 48, 64)


def _overlaps(box: np.ndarray, others: list[np.ndarray]) -> bool:
    """Whether the box (x0, y0, x1, y1) intersects any of the others."""
    return any(box[0] < o[2] and o[0] < box[2] and box[1] < o[3] and o[1] < box[3] for o in others)


def _box(ax: Any, renderer: Any, xy: np.ndarray, offset: tuple[float, float], text: str, fontsize: float) -> np.ndarray:
    """The text's box in pixels when anchored at the point plus an offset in points."""
    dx, dy = offset
    probe = ax.annotate(text, xy, xytext=(dx, dy), textcoords="offset points", fontsize=fontsize,
                        ha="left" if dx >= 0 else "right", va="bottom" if dy >= 0 else "top")
    extent = probe.get_window_extent(renderer)
    probe.remove()
    return np.array([extent.x0, extent.y0, extent.x1, extent.y1])


def place_labels(ax: Any, xy: np.ndarray, labels: Sequence[str], fontsize: float = 8,
                 marker_px: float = 4.0) -> list[Any]:
    """Label each point ``xy[i]`` (data coordinates) with ``labels[i]`` so that labels do not
    overlap each other or the markers; returns the annotations.

    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> _, ax = plt.subplots()
    >>> _ = ax.scatter([0, 0.001], [0, 0])
    >>> [a.get_text() for a in place_labels(ax, np.array([[0, 0], [0.001, 0]]), ["one", "two"])]
    ['one', 'two']
    """
    xy = np.asarray(xy, dtype=float)
    ax.get_xlim(), ax.get_ylim()  # settle pending autoscaling, so that data -> pixels is final
    renderer = ax.figure.canvas.get_renderer()
    points = ax.transData.transform(xy)  # (N, 2) pixels
    taken = [np.array([x - marker_px, y - marker_px, x + marker_px, y + marker_px]) for x, y in points]
    annotations = []
    for i, text in enumerate(labels):
        candidates = [(r * dx, r * dy) for r in _RADII for dx, dy in _DIRECTIONS]
        chosen, box = candidates[0], None
        for offset in candidates:
            box = _box(ax, renderer, xy[i], offset, text, fontsize)
            if not _overlaps(box, taken):
                chosen = offset
                break
        else:  # nowhere free: keep the nearest place
            box = _box(ax, renderer, xy[i], chosen, text, fontsize)
        taken.append(box)
        far = max(abs(chosen[0]), abs(chosen[1])) > _RADII[1]
        annotations.append(ax.annotate(
            text, xy[i], xytext=chosen, textcoords="offset points", fontsize=fontsize,
            ha="left" if chosen[0] >= 0 else "right", va="bottom" if chosen[1] >= 0 else "top",
            arrowprops=dict(arrowstyle="-", lw=0.5, color="0.5", shrinkA=0, shrinkB=3) if far else None))
    return annotations
