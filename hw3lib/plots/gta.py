"""Figures of Problem 4 (GTA): what the generator produces from source and target embeddings.

t-SNE figures reuse :func:`hw3lib.plots.uda.tsne_figure`. Every function returns a Figure.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import torch
from torchvision.utils import make_grid

import hw3lib.plots  # noqa: F401  (selects the non-interactive backend outside notebooks)
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from hw3lib.data.sets import DigitSet
from hw3lib.data.transforms import to_unit
from hw3lib.models.gta import GTAConfig, generate, prepare


def class_ordered(ds: DigitSet, per_class: int = 1) -> torch.Tensor:
    """Indices of the first ``per_class`` images of each digit 0-9, grouped by digit (a readable grid)."""
    idx = [torch.nonzero(ds.labels.cpu() == c).flatten()[:per_class] for c in range(10)]
    return torch.cat(idx) if idx else torch.empty(0, dtype=torch.long)


def generated_panels(nets: Mapping[str, torch.nn.Module], source: DigitSet, target: DigitSet, k: GTAConfig, *,
                     per_class: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    """Four image batches in [0,1] (what the networks see, 32x32): real source, G(source emb, class one-hot),
    real target, G(target emb, "target" code). Source images are ordered by class; target images are the
    same digits' positions in the target set (its labels only order the grid, they are never trained on)."""
    device = next(nets["netF"].parameters()).device
    si, ti = class_ordered(source, per_class), class_ordered(target, per_class)
    xs, ys, xt = source.images[si].to(device), source.labels[si].to(device), target.images[ti].to(device)
    return {
        "real source": to_unit(prepare(xs, k, for_d=True)).cpu(),
        "G(source embedding, class)": to_unit(generate(nets, xs, ys, k, seed=seed)).cpu(),
        "real target": to_unit(prepare(xt, k, for_d=True)).cpu(),
        "G(target embedding, 'target')": to_unit(generate(nets, xt, None, k, seed=seed + 1)).cpu(),
    }


def generated_figure(rows: Mapping[str, Mapping[str, torch.Tensor]], nrow: int = 10) -> Figure:
    """One row per pair (``rows[pair_label] = generated_panels(...)``), one column per panel."""
    n_rows = max(1, len(rows))
    n_cols = max((len(p) for p in rows.values()), default=1)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.2 * n_cols, 1.0 + 0.9 * n_rows * 2.2), squeeze=False)
    for r, (pair, panels) in enumerate(rows.items()):
        for c, (name, images) in enumerate(panels.items()):
            ax = axes[r, c]
            grid = make_grid(images, nrow=nrow, padding=1, pad_value=1.0)
            ax.imshow(np.transpose(grid.numpy(), (1, 2, 0)), interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=9)
            if c == 0:
                ax.set_ylabel(pair, fontsize=9)
        for c in range(len(panels), n_cols):
            axes[r, c].axis("off")
    fig.tight_layout()
    return fig


def losses_figure(histories: Mapping[str, Mapping[str, list]], keys: tuple[str, ...] = ("errD", "errG", "errC", "errF")
                  ) -> Figure:
    """GTA's four losses per logged step, one panel per loss, one line per labelled history.

    Series logged only during the GTA steps (after a warm start) belong to the last steps of ``h["step"]``.
    """
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3.0), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for name, h in histories.items():
            if h.get(key):
                ax.plot(h["step"][len(h["step"]) - len(h[key]):], h[key], label=name, lw=1.2)
        ax.set_title(key, fontsize=10)
        ax.set_xlabel("step")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig
