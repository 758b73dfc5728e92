"""Numbers computed in a chapter, glued into its prose: myst-nb's ``glue`` with NumPy scalars made
plain Python numbers first, since the book formats a glued value from its text (``76.5``, not
``np.float64(76.5)``, which it cannot read)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["glue"]


def glue(name: str, value: Any, display: bool = False) -> None:
    """Store `value` under `name` for ``{glue:text}`name:.1f``` in the chapter's text; shown in the
    cell's output only if `display`."""
    from myst_nb import glue as myst_glue

    myst_glue(name, value.item() if isinstance(value, np.generic) else value, display=display)
