"""Figures for Problem 1 (VAE): learning curves, reconstructions, the sample grid, t-SNE and a latent walk
strip (the static stand-in of the interactive explorer, :func:`hw3lib.widgets.vae_explorer`)."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch

from hw3lib.data import FaceSet
from hw3lib.data.transforms import to_unit
from hw3lib.plots import plt
from matplotlib.figure import Figure


def _img(x: torch.Tensor) -> np.ndarray:
    """[3,H,W] float in [0, 1] or uint8 → HWC numpy for imshow."""
    x = x.detach().cpu()
    x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
    return x.clamp(0, 1).permute(1, 2, 0).numpy()


def learning_curves(history: Mapping[str, list]) -> Figure:
    """Two panels: KL divergence and reconstruction MSE ([0, 1] scale), train (per logged step and per
    epoch) and test (per epoch), against epochs."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    steps = np.asarray(history.get("step", []), dtype=float)
    epochs = np.asarray(history.get("epoch", []), dtype=float)
    # Steps → epochs, from the epoch marks (epoch e ends at step e * steps_per_epoch).
    per_epoch = None
    if len(epochs) and len(history.get("step", [])):
        per_epoch = max(1.0, max(steps.max(), 1.0) / max(epochs.max(), 1e-9))
    for ax, key, scale, title in ((axes[0], "kld", 1.0, "KL divergence (nats / image)"),
                                  (axes[1], "mse", 0.25, "Reconstruction MSE ([0, 1] pixel scale)")):
        if history.get(key) and per_epoch:
            ax.plot(steps / per_epoch, np.asarray(history[key]) * scale, color="tab:blue", alpha=0.35, lw=1,
                    label="train (per step)")
        for split, color in (("train", "tab:blue"), ("test", "tab:orange")):
            values = history.get(f"{split}_{key}")
            if values:
                ax.plot(epochs[:len(values)], np.asarray(values) * scale, "o-", color=color, ms=4,
                        label=f"{split} (per epoch)")
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if history.get("kld"):
        axes[0].set_yscale("log")
    fig.tight_layout()
    return fig


def reconstructions(originals: torch.Tensor, recons: torch.Tensor, mses: Sequence[float],
                    names: Sequence[str] | None = None, per_row: int = 5) -> Figure:
    """Test images over their reconstructions, the MSE beneath each column; blocks of ``per_row`` like the
    course report (10 images → two blocks of 5)."""
    n = len(originals)
    blocks = (n + per_row - 1) // per_row
    fig, axes = plt.subplots(2 * blocks, per_row, figsize=(1.6 * per_row, 3.9 * blocks), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i in range(n):
        b, c = divmod(i, per_row)
        top, bottom = axes[2 * b, c], axes[2 * b + 1, c]
        top.imshow(_img(originals[i]))
        bottom.imshow(_img(recons[i]))
        if names is not None:
            top.set_title(str(names[i]), fontsize=7)
        bottom.text(0.5, -0.08, f"MSE {float(mses[i]):.5f}", transform=bottom.transAxes, ha="center",
                    va="top", fontsize=8)
        if c == 0:
            top.text(-0.08, 0.5, "test", transform=top.transAxes, rotation=90, ha="right", va="center")
            bottom.text(-0.08, 0.5, "recon.", transform=bottom.transAxes, rotation=90, ha="right", va="center")
    fig.tight_layout()
    return fig


def grid_figure(images: torch.Tensor, nrow: int = 8, title: str | None = None) -> Figure:
    """A make_grid of [N,3,H,W] [0, 1] images as a figure (for display; the file itself is written with
    torchvision ``save_image``)."""
    from torchvision.utils import make_grid

    g = make_grid(images.detach().cpu().float(), nrow=nrow, padding=2)
    rows = (len(images) + nrow - 1) // nrow
    fig, ax = plt.subplots(figsize=(1.1 * nrow, 1.1 * rows + (0.3 if title else 0)))
    ax.imshow(_img(g))
    ax.axis("off")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def tsne_panels(embedding: np.ndarray, labels: Mapping[str, np.ndarray]) -> Figure:
    """One scatter panel per attribute: t-SNE points coloured by has/hasn't."""
    fig, axes = plt.subplots(1, len(labels), figsize=(4.6 * len(labels), 4.2), squeeze=False)
    for ax, (name, y) in zip(axes[0], labels.items()):
        y = np.asarray(y).astype(bool)
        neg = "Female" if name == "Male" else f"not {name}"
        for mask, color, label in ((~y, "tab:red", neg), (y, "tab:blue", name)):
            ax.scatter(embedding[mask, 0], embedding[mask, 1], s=7, alpha=0.7, c=color, label=label,
                       linewidths=0)
        ax.set_title(f"t-SNE of test latent means: {name}")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=8, markerscale=2)
    fig.tight_layout()
    return fig


@torch.no_grad()
def _decode01(model, z: torch.Tensor) -> torch.Tensor:
    model.eval()
    dev = next(model.parameters()).device
    return to_unit(model.decode(z.to(dev))).float().cpu()


@torch.no_grad()
def _mu(model, images: torch.Tensor) -> torch.Tensor:
    from hw3lib.data.transforms import to_signed

    model.eval()
    dev = next(model.parameters()).device
    return model.encode(to_signed(images.to(dev)))[0].float().cpu()


def latent_walk(model, test: FaceSet, direction: torch.Tensor, *, a: int = 0, b: int = 1, steps: int = 8,
                attribute: str = "Smiling", max_scale: float = 1.5) -> Figure:
    """Static strip: row 1 decodes (1-t) mu(a) + t mu(b) for t in [0, 1]; row 2 decodes
    mu(a) + s * direction for s in [0, ``max_scale``] (``direction`` = attribute mean difference)."""
    mu = _mu(model, test.images[[a, b]])
    t = torch.linspace(0, 1, steps).unsqueeze(1)
    interp = _decode01(model, (1 - t) * mu[0] + t * mu[1])
    s = torch.linspace(0, max_scale, steps).unsqueeze(1)
    walk = _decode01(model, mu[0] + s * direction.float().cpu())
    fig, axes = plt.subplots(2, steps + 1, figsize=(1.3 * (steps + 1), 3.0))
    for ax in axes.flat:
        ax.axis("off")
    axes[0, 0].imshow(_img(test.images[a]))
    axes[0, 0].set_title("input a", fontsize=8)
    axes[1, 0].imshow(_img(test.images[b]))
    axes[1, 0].set_title("input b", fontsize=8)
    for i in range(steps):
        axes[0, i + 1].imshow(_img(interp[i]))
        axes[0, i + 1].set_title(f"t={float(t[i]):.2f}", fontsize=7)
        axes[1, i + 1].imshow(_img(walk[i]))
        axes[1, i + 1].set_title(f"a {'+' if s[i] >= 0 else ''}{float(s[i]):.2f}·{attribute}", fontsize=7)
    fig.tight_layout()
    return fig
