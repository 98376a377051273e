"""The one look of every figure: a seaborn theme set once, when :mod:`hw3lib.plots` is first imported.

Seaborn's "paper" context (fonts sized for the report's page width) with a white grid and the colour-blind-safe
palette; image panels (``imshow``) are unaffected apart from their frame. ``apply_theme()`` is idempotent;
``apply_theme(force=True)`` re-applies it after a notebook changed matplotlib's settings.
"""
from __future__ import annotations

import matplotlib

STYLE = "whitegrid"
CONTEXT = "paper"
PALETTE = "colorblind"
FONT_SCALE = 1.1
RC = {
    "grid.alpha": 0.6,
    "legend.frameon": False,
}

_applied = False


def apply_theme(force: bool = False) -> None:
    """Set the seaborn theme (style, context, palette, :data:`RC`) on matplotlib's global settings, once."""
    global _applied
    if _applied and not force:
        return
    import seaborn as sns

    sns.set_theme(context=CONTEXT, style=STYLE, palette=PALETTE, font_scale=FONT_SCALE, rc=RC)
    _applied = True


def theme_active() -> bool:
    """Whether matplotlib's settings still carry the theme (a notebook may have reset them)."""
    return _applied and all(matplotlib.rcParams.get(k) == v for k, v in RC.items())
