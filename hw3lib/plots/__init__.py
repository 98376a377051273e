"""Plot helpers shared by the problems. Plot functions return matplotlib Figures; notebooks pass them to
:func:`show`, which saves the PNG under ``figures/`` with a stable name and displays it with a caption.

Importing this package sets the one seaborn theme of all figures (:mod:`hw3lib.plots.theme`).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

from hw3lib.checkpoint import atomic_path

if not matplotlib.get_backend().lower().startswith(("module://matplotlib_inline", "module://ipykernel")):
    matplotlib.use("Agg")  # scripts and tests: never open windows

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from hw3lib.plots.theme import apply_theme, theme_active  # noqa: E402

apply_theme()

DPI = 150


def save(fig: Figure, figures_dir: str | Path | None, name: str) -> Path | None:
    """Save ``fig`` as ``figures_dir/name.png`` atomically; ``None`` dir saves nothing."""
    if figures_dir is None:
        return None
    path = Path(figures_dir) / f"{name}.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    return path


def show(fig: Figure, name: str, caption: str, figures_dir: str | Path | None = None) -> Path | None:
    """Save ``fig`` (see :func:`save`), display it, then display ``caption`` beneath it; closes the figure.

    Re-applies the theme when a cell reset matplotlib's settings, so the figures after this one match again."""
    from IPython.display import Markdown, display

    if not theme_active():
        apply_theme(force=True)

    path = save(fig, figures_dir, name)
    display(fig)
    plt.close(fig)
    display(Markdown(f"*Figure ({name}). {caption}*"))
    return path
