"""The small drawing kit every diagram shares: one palette, boxes, circles, arrows, a legend, and
byte-reproducible SVG output.

Coordinates are in *units* of half an inch, so that a box of the same size has the same text size in
every diagram; a canvas 14 units wide is 7 inches, about the width of the book's text column. The
figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot), so drawing them leaves
no global state behind.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Patch

from lmcourse._io import atomic_write_bytes

UNIT = 0.5  # inches per unit
FONT, SMALL = 9, 8  # box text, annotations (points)
EDGE, NOTE = "#4d4d4d", "#555555"
LEGEND_STRIP = 0.7  # units kept free at the bottom of every canvas for the legend

# One colour per kind of thing, the same in every diagram of the book.
PALETTE = {
    "input": ("#ffffff", "tokens and other inputs"),
    "embed": ("#cde5c9", "embeddings"),
    "attn": ("#c9dcf0", "attention"),
    "mlp": ("#fbdcb8", "feed-forward layers"),
    "norm": ("#e2d4ec", "normalisation"),
    "add": ("#fff3bf", "sums and products"),
    "state": ("#e3e3e3", "states and caches"),
    "out": ("#f6c9c9", "outputs"),
    "other": ("#f4f1ea", "other operations"),
}


@dataclass(frozen=True)
class Box:
    """Where a drawn box is, so that arrows can start and end on its sides."""

    x: float
    y: float
    w: float
    h: float

    @property
    def top(self) -> tuple[float, float]:
        return self.x, self.y + self.h / 2

    @property
    def bottom(self) -> tuple[float, float]:
        return self.x, self.y - self.h / 2

    @property
    def left(self) -> tuple[float, float]:
        return self.x - self.w / 2, self.y

    @property
    def right(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y


def canvas(width: float, height: float) -> tuple[Figure, Axes]:
    """An empty figure `width` x `height` units, plus the legend strip below, with data coordinates in units."""
    total = height + LEGEND_STRIP
    fig = Figure(figsize=(width * UNIT, total * UNIT))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set(xlim=(0, width), ylim=(-LEGEND_STRIP, height))
    ax.axis("off")
    return fig, ax


def box(ax: Axes, x: float, y: float, text: str, kind: str, w: float = 2.4, h: float = 0.6,
        size: float = FONT, bold: bool = False) -> Box:
    """A rounded box of colour `kind` centred at (x, y), with `text` in it."""
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0,rounding_size=0.1",
                                facecolor=PALETTE[kind][0], edgecolor=EDGE, linewidth=1.6 if bold else 0.8,
                                zorder=2))
    ax.text(x, y, text, ha="center", va="center", fontsize=size, zorder=3)
    return Box(x, y, w, h)


def circle(ax: Axes, x: float, y: float, symbol: str, kind: str = "add", r: float = 0.22) -> Box:
    """A small circle for an element-wise operation (+, ×) centred at (x, y)."""
    ax.add_patch(Circle((x, y), r, facecolor=PALETTE[kind][0], edgecolor=EDGE, linewidth=0.8, zorder=2))
    ax.text(x, y, symbol, ha="center", va="center", fontsize=FONT + 1, zorder=3)
    return Box(x, y, 2 * r, 2 * r)


def arrow(ax: Axes, *points: tuple[float, float], style: str = "-", colour: str = EDGE, width: float = 0.9,
          head: bool = True) -> None:
    """A polyline through `points` with an arrow head at the last one (`style` '--' for dashed)."""
    xs, ys = zip(*points)
    if len(points) > 2:
        ax.plot(xs[:-1], ys[:-1], linestyle=style, color=colour, linewidth=width, zorder=1,
                solid_capstyle="butt")
    ax.add_patch(FancyArrowPatch(points[-2], points[-1], arrowstyle="-|>" if head else "-",
                                 mutation_scale=9, linestyle=style, color=colour, linewidth=width,
                                 shrinkA=0, shrinkB=0, zorder=1))


def note(ax: Axes, x: float, y: float, text: str, size: float = SMALL, **kwargs: Any) -> None:
    """An annotation in grey: shapes, weights, what a part is called."""
    kwargs = {"ha": "center", "va": "center", "color": NOTE, **kwargs}
    ax.text(x, y, text, fontsize=size, **kwargs)


def title(ax: Axes, x: float, y: float, text: str) -> None:
    """A panel's title, in bold."""
    ax.text(x, y, text, ha="center", va="center", fontsize=FONT + 1, weight="bold")


def legend(ax: Axes, kinds: Iterable[str]) -> None:
    """The colour key of the kinds of thing a diagram uses, in the strip at the bottom."""
    handles = [Patch(facecolor=PALETTE[k][0], edgecolor=EDGE, linewidth=0.8, label=PALETTE[k][1]) for k in kinds]
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.0), ncol=len(handles),
              fontsize=SMALL, frameon=False, handlelength=1.4, columnspacing=1.2, borderaxespad=0.1)


def svg_bytes(fig: Figure) -> bytes:
    """The figure as SVG, the same bytes on every run: fixed ids, no date, text drawn as paths."""
    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "lmcourse", "svg.fonttype": "path", "svg.id": None}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def save(fig: Figure, path: str | Path) -> Path:
    """Write `fig` to `path` as reproducible SVG; return the path."""
    path = Path(path)
    atomic_write_bytes(path, svg_bytes(fig))
    return path


def relabel(ax: Axes, labels: list[str]) -> None:
    """Give the legend's entries the names they have in one diagram (the colours stay the book's)."""
    for text, label in zip(ax.get_legend().texts, labels):
        text.set_text(label)
