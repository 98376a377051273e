"""Figures of Problems 3-4: t-SNE of the feature extractor (by class and by domain), the domain classifier's
accuracy during DANN training, and target-test accuracy curves. Every function returns a Figure."""
from __future__ import annotations

from typing import Mapping

import numpy as np

import hw3lib.plots  # noqa: F401  (selects the non-interactive backend outside notebooks)
import matplotlib.pyplot as plt
from matplotlib.figure import Figure


def _smooth(y: np.ndarray, k: int) -> np.ndarray:
    if k <= 1 or len(y) < k:
        return y
    return np.convolve(y, np.ones(k) / k, mode="valid")


def tsne_figure(points: Mapping[str, np.ndarray], title: str = "", domain_names: tuple[str, str] = ("source", "target"),
                ) -> Figure:
    """Two panels of the same embedding: coloured by digit class (10 colours) and by domain."""
    xy, label, domain = points["xy"], points["label"], points["domain"]
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.8))
    cmap = plt.get_cmap("tab10")
    for c in range(10):
        sel = label == c
        axes[0].scatter(xy[sel, 0], xy[sel, 1], s=5, color=cmap(c), label=str(c), alpha=0.8, linewidths=0)
    axes[0].legend(markerscale=3, fontsize=7, ncol=2, title="digit", title_fontsize=8, loc="best")
    axes[0].set_title("by class")
    for d, (name, colour) in enumerate(zip(domain_names, ("tab:blue", "tab:red"))):
        sel = domain == d
        axes[1].scatter(xy[sel, 0], xy[sel, 1], s=5, color=colour, label=f"{name} ({sel.sum()})", alpha=0.6,
                        linewidths=0)
    axes[1].legend(markerscale=3, fontsize=8, loc="best")
    axes[1].set_title("by domain")
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def domain_acc_figure(histories: Mapping[str, Mapping[str, list]], smooth: int = 5) -> Figure:
    """Domain-classifier accuracy per logged step for each labelled DANN history, with λ on a second axis."""
    fig, ax = plt.subplots(figsize=(7.5, 4))
    lam_ax = ax.twinx()
    for i, (name, h) in enumerate(histories.items()):
        steps, acc = np.asarray(h.get("step", []), float), np.asarray(h.get("domain_acc", []), float) * 100
        if not len(acc):
            continue
        colour = plt.get_cmap("tab10")(i)
        ys = _smooth(acc, smooth)
        ax.plot(steps[len(steps) - len(ys):], ys, color=colour, label=name)
        if i == 0 and h.get("lam"):
            lam_ax.plot(steps, h["lam"], color="grey", ls=":", label="λ (GRL coefficient)")
    ax.axhline(50, color="black", lw=0.8, ls="--", label="chance (50 %)")
    ax.set_xlabel("training step")
    ax.set_ylabel("domain-classifier accuracy (%)")
    ax.set_ylim(0, 102)
    lam_ax.set_ylabel("λ")
    lam_ax.set_ylim(0, 1.02)
    lines = ax.get_legend_handles_labels()
    lam_lines = lam_ax.get_legend_handles_labels()
    ax.legend(lines[0] + lam_lines[0], lines[1] + lam_lines[1], fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def target_acc_figure(curves: Mapping[str, Mapping[str, list]]) -> Figure:
    """Target-test accuracy during training (plots only: never used to pick a model). ``curves``: label → history."""
    fig, ax = plt.subplots(figsize=(7.5, 4))
    for name, h in curves.items():
        if h.get("target_acc"):
            x = h.get("eval_step") or list(range(1, len(h["target_acc"]) + 1))
            ax.plot(x, h["target_acc"], marker="o", ms=3, label=name)
    ax.set_xlabel("training step")
    ax.set_ylabel("target-test accuracy (%)")
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    return fig




def selection_figure(curves: Mapping[str, Mapping[str, list]], ncols: int = 3) -> Figure:
    """One panel per pair: target-test accuracy (plot only) at every scored checkpoint of each method, a ring on
    the checkpoint its validator picked. ``curves``: ``"{method} {src} → {tgt}"`` → history."""
    by_pair: dict[str, dict[str, Mapping[str, list]]] = {}
    for name, h in curves.items():
        method, pair = name.rsplit(" ", 3)[0], " ".join(name.rsplit(" ", 3)[1:])
        if h.get("target_acc") and h.get("eval_step"):
            by_pair.setdefault(pair, {})[method] = h
    n = max(1, len(by_pair))
    cols = min(ncols, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.4 * rows), squeeze=False)
    for ax, (pair, hs) in zip(axes.flat, by_pair.items()):
        for i, (method, h) in enumerate(hs.items()):
            k = len(h["target_acc"])
            steps, acc = h["eval_step"][-k:], h["target_acc"]
            line, = ax.plot(steps, acc, marker="o", ms=3, lw=1.2, label=method, color=plt.get_cmap("tab10")(i))
            if h.get("selected_step") and h["selected_step"][-1] in steps:
                j = steps.index(h["selected_step"][-1])
                ax.plot(steps[j], acc[j], "o", ms=10, mfc="none", mec=line.get_color(), mew=1.6)
        ax.set_title(pair, fontsize=10)
        ax.set_xlabel("training step")
        ax.set_ylabel("target-test accuracy (%)")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(by_pair):]:
        ax.axis("off")
    fig.tight_layout()
    return fig
