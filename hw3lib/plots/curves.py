"""Training curves over several seeds: long-form data and seaborn line plots with a confidence band.

>>> histories = {(f"{m} {pair_label(s, t)}", sd): r.history for (m, s, t, sd), r in results.items()}
>>> fig = curves_over_seeds(histories, "eval_step", "target_acc", ylabel="target-test accuracy (%)")
"""
from __future__ import annotations

from typing import Any, Hashable, Mapping, Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from hw3lib.plots import plt


def long_form(histories: Mapping[tuple[Hashable, int], Mapping[str, Sequence]], x: str, y: str,
              hue: str = "run") -> pd.DataFrame:
    """``{(run, seed): history}`` → one row per logged point: columns ``hue``, ``"seed"``, ``x``, ``y``.

    ``history[x]`` and ``history[y]`` are paired point by point (the shorter one sets the length); a history
    without ``y`` adds no row. A key that is not a pair is taken as the run with seed 0.
    """
    frames = []
    for key, h in histories.items():
        run, seed = key if isinstance(key, tuple) and len(key) == 2 else (key, 0)
        ys = np.asarray(h.get(y) or [], dtype=float)
        xs = np.asarray(h.get(x) or [], dtype=float)
        n = min(len(xs), len(ys))
        if n:
            frames.append(pd.DataFrame({hue: [str(run)] * n, "seed": int(seed), x: xs[:n], y: ys[:n]}))
    if not frames:
        return pd.DataFrame(columns=[hue, "seed", x, y])
    return pd.concat(frames, ignore_index=True)


def curves_over_seeds(data: pd.DataFrame | Mapping[tuple[Hashable, int], Mapping[str, Sequence]], x: str, y: str,
                      hue: str = "run", *, errorbar: Any = ("ci", 95), title: str = "", xlabel: str | None = None,
                      ylabel: str | None = None, ax=None) -> Figure:
    """Mean of ``y`` against ``x`` per ``hue`` over the seeds, with a band (seaborn ``lineplot``).

    ``data``: long-form rows (``hue``, ``"seed"``, ``x``, ``y``) or ``{(run, seed): history}`` (see
    :func:`long_form`). ``errorbar``: seaborn's — ``("ci", 95)`` bootstrap interval of the mean (seeded, so the
    figure is reproducible), ``"sd"``, ``("pi", 50)`` or ``None``; a single seed draws no band.
    """
    df = data if isinstance(data, pd.DataFrame) else long_form(data, x, y, hue)
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 4))
    else:
        fig = ax.figure
    if len(df):
        sns.lineplot(df, x=x, y=y, hue=hue, errorbar=errorbar, seed=0, n_boot=1000, marker="o", markersize=3,
                     markeredgewidth=0, ax=ax)
        n_seeds = df.groupby(hue)["seed"].nunique()
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(handles, [f"{lab} ({n_seeds.get(lab, 1)} seed{'s' if n_seeds.get(lab, 1) > 1 else ''})"
                            for lab in labels], fontsize=7, ncol=2 if len(labels) > 4 else 1)
    else:
        ax.text(0.5, 0.5, f"no {y} logged", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel or y)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
