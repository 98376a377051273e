"""Figures of Problem 2 (DCGAN): training curves, fixed-noise progression, VAE-vs-GAN samples, attribute rates,
worst samples, and the static stand-ins of the explorers (latent interpolation, nearest real faces). Every
function returns a matplotlib Figure (``hw3lib.plots.show`` saves and displays it)."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torchvision.utils import make_grid

from hw3lib.plots import plt
from matplotlib.figure import Figure


def _grid(images: torch.Tensor, nrow: int, padding: int = 2) -> np.ndarray:
    """uint8 [N,3,H,W] → HWC uint8 array of one grid (white padding)."""
    g = make_grid(images.cpu(), nrow=nrow, padding=padding, pad_value=255)
    return g.permute(1, 2, 0).numpy()


def _smooth(y: np.ndarray, k: int) -> np.ndarray:
    if k <= 1 or len(y) < k:
        return y
    return np.convolve(y, np.ones(k) / k, mode="valid")


def training_curves(history: dict, smooth: int = 5) -> Figure:
    """Left: D and G losses per logged step. Right: mean D(x), D(G(z)) before (z1) and after (z2) D's update."""
    steps = np.asarray(history["step"])
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.6))
    for ax, keys in ((a, (("loss_D", "D loss"), ("loss_G", "G loss"))),
                     (b, (("D_x", "D(x), real"), ("D_G_z1", "D(G(z)) before D step"),
                          ("D_G_z2", "D(G(z)) after D step")))):
        for key, label in keys:
            y = np.asarray(history[key])
            line, = ax.plot(steps, y, alpha=0.25, marker="o" if len(y) < 20 else None, markersize=3)
            ys = _smooth(y, smooth)
            ax.plot(steps[len(steps) - len(ys):], ys, color=line.get_color(), label=label)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    a.set_ylabel("BCE")
    a.set_title("losses")
    b.set_ylabel("mean probability")
    b.set_ylim(0, 1)
    b.set_title("discriminator outputs")
    fig.tight_layout()
    return fig


def progression(snapshots: dict, rows: int = 8, per_row: int = 8) -> Figure:
    """Fixed-noise samples at up to ``rows`` snapshot steps (step 0 = before training), one row each."""
    steps, images = list(snapshots["step"]), snapshots["images"]
    pick = np.unique(np.linspace(0, len(steps) - 1, min(rows, len(steps))).round().astype(int))
    fig, axes = plt.subplots(len(pick), 1, figsize=(per_row * 0.9, len(pick) * 0.95 + 0.2), squeeze=False)
    for ax, i in zip(axes[:, 0], pick):
        ax.imshow(_grid(images[i][:per_row], nrow=per_row))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(f"step {steps[i]}", rotation=0, ha="right", va="center", fontsize=9)
    fig.tight_layout(h_pad=0.2)
    return fig


def sample_grids(panels: Mapping[str, torch.Tensor], nrow: int = 8, n: int = 32) -> Figure:
    """Side-by-side uint8 sample grids [N,3,64,64], one panel per entry (title → images), left to right."""
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.2), squeeze=False)
    for ax, (title, images) in zip(axes[0], panels.items()):
        ax.imshow(_grid(images[:n], nrow=nrow))
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    return fig


def vae_vs_gan(vae: torch.Tensor, gan: torch.Tensor, nrow: int = 8, n: int = 32) -> Figure:
    """Side-by-side uint8 sample grids: VAE (left) and DCGAN (right)."""
    return sample_grids({"VAE (Problem 1)": vae, "DCGAN": gan}, nrow=nrow, n=n)


def attribute_rates(table: pd.DataFrame) -> Figure:
    """Grouped bars (seaborn): fraction of faces with each attribute (rows of ``table``), one bar per set
    (columns of ``table``, e.g. real test labels, DCGAN, VAE)."""
    import seaborn as sns

    long = (table.rename_axis("attribute").reset_index()
            .melt(id_vars="attribute", var_name="set", value_name="fraction"))
    long["attribute"] = long["attribute"].str.replace("_", " ")
    fig, ax = plt.subplots(figsize=(12, 3.8))
    sns.barplot(long, x="attribute", y="fraction", hue="set", hue_order=[str(c) for c in table.columns],
                errorbar=None, ax=ax)
    ax.tick_params(axis="x", rotation=30)
    plt.setp(ax.get_xticklabels(), ha="right", rotation_mode="anchor")
    ax.set_xlabel("")
    ax.set_ylabel("fraction predicted present")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, ncol=min(len(table.columns), 3), title=None)
    fig.tight_layout()
    return fig


def worst_samples(images: torch.Tensor, distance: torch.Tensor, d_score: torch.Tensor, ncol: int = 8) -> Figure:
    """Samples with their manifold distance (d) and discriminator probability (D) as titles."""
    n = len(images)
    rows = (n + ncol - 1) // ncol
    fig, axes = plt.subplots(rows, ncol, figsize=(ncol * 1.3, rows * 1.8), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < n:
            ax.imshow(images[k].permute(1, 2, 0).cpu().numpy())
            ax.set_title(f"d={float(distance[k]):.2f}\nD={float(d_score[k]):.2f}", fontsize=7)
    fig.tight_layout()
    return fig


def latent_interpolation(rows: Mapping[str, torch.Tensor], ts: Sequence[float]) -> Figure:
    """One row per entry of ``rows`` (label → uint8 faces [T,3,64,64], e.g. one per truncation ψ), one column
    per interpolation point ``t`` (titles on the first row)."""
    n = len(ts)
    fig, axes = plt.subplots(len(rows), n, figsize=(1.15 * n + 0.6, 1.25 * len(rows) + 0.3), squeeze=False)
    for r, (label, images) in enumerate(rows.items()):
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(images[c].permute(1, 2, 0).cpu().numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if r == 0:
                ax.set_title(f"t={float(ts[c]):.2f}", fontsize=8)
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    fig.tight_layout(w_pad=0.1, h_pad=0.2)
    return fig


def nearest_real_figure(samples: torch.Tensor, neighbours: torch.Tensor, distances: torch.Tensor,
                        space: str = "pixels") -> Figure:
    """Each generated face (first column, uint8 [Q,3,64,64]) beside its nearest real training faces
    (``neighbours`` uint8 [Q,k,3,64,64], nearest first) with their L2 distances in ``space``."""
    q, k = neighbours.shape[:2]
    fig, axes = plt.subplots(q, k + 1, figsize=(1.2 * (k + 1), 1.35 * q + 0.3), squeeze=False)
    for i in range(q):
        axes[i, 0].imshow(samples[i].permute(1, 2, 0).cpu().numpy())
        axes[i, 0].set_title("generated" if i == 0 else "", fontsize=8)
        for j in range(k):
            axes[i, j + 1].imshow(neighbours[i, j].permute(1, 2, 0).cpu().numpy())
            axes[i, j + 1].set_title(f"d={float(distances[i, j]):.2f}", fontsize=7)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle(f"nearest real training faces ({space} L2)", fontsize=9)
    fig.tight_layout()
    return fig


def show_png(path: str | Path, name: str, caption: str) -> None:
    """Display a PNG written by another tool (e.g. torchvision ``save_image``) with the report's caption style."""
    from IPython.display import Image, Markdown, display

    display(Image(filename=str(path)))
    display(Markdown(f"*Figure ({name}). {caption}*"))
