"""Figures of Problems 3-4: t-SNE of the feature extractor (class as colour, domain as marker), the domain
classifier's accuracy during DANN training, target-test accuracy curves, the confusion matrix of target-test
predictions and the worst-classified target images. Every function returns a Figure (``hw3lib.plots.show`` saves
and displays it)."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import seaborn as sns
import torch

import hw3lib.plots  # noqa: F401  (selects the non-interactive backend outside notebooks)
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

CLASSES: tuple[int, ...] = tuple(range(10))
CLASS_COLOURS: dict[str, tuple[float, float, float]] = {str(c): sns.color_palette("tab10", 10)[c] for c in CLASSES}
DOMAIN_COLOURS: tuple[str, str] = ("tab:blue", "tab:red")     # source, target
DOMAIN_MARKERS: tuple[str, str] = ("o", "X")


def _smooth(y: np.ndarray, k: int) -> np.ndarray:
    if k <= 1 or len(y) < k:
        return y
    return np.convolve(y, np.ones(k) / k, mode="valid")


def tsne_frame(points: Mapping[str, np.ndarray], domain_names: Sequence[str] = ("source", "target")) -> pd.DataFrame:
    """``{"xy": [N,2], "label": [N], "domain": [N] (0/1)}`` → columns ``x``, ``y``, ``digit`` (str), ``domain``
    (its name)."""
    xy = np.asarray(points["xy"], dtype=float)
    names = np.asarray(list(domain_names), dtype=object)
    return pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "digit": np.asarray(points["label"]).astype(int).astype(str),
                         "domain": names[np.asarray(points["domain"]).astype(int)]})


def tsne_figure(points: Mapping[str, np.ndarray], title: str = "",
                domain_names: tuple[str, str] = ("source", "target")) -> Figure:
    """Two panels of the same embedding (``points``: see :func:`tsne_frame`): left, colour = digit class and
    marker = domain; right, colour = domain (with the number of points of each). A class or a domain keeps its
    colour and marker in every figure, whichever classes or domains the points hold."""
    df = tsne_frame(points, domain_names)
    present = set(df["digit"])
    digits = [str(c) for c in CLASSES if str(c) in present]
    markers = dict(zip(domain_names, DOMAIN_MARKERS))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    sns.scatterplot(df, x="x", y="y", hue="digit", hue_order=digits, palette=CLASS_COLOURS, style="domain",
                    style_order=list(domain_names), markers=markers, s=14, alpha=0.8, linewidth=0, ax=axes[0])
    counts = df["domain"].value_counts()
    named = {d: f"{d} ({counts[d]})" for d in domain_names if d in counts}
    df["domain (n)"] = df["domain"].map(named)
    sns.scatterplot(df, x="x", y="y", hue="domain (n)", hue_order=list(named.values()),
                    palette={named[d]: c for d, c in zip(domain_names, DOMAIN_COLOURS) if d in named},
                    style="domain (n)", markers={named[d]: markers[d] for d in named}, s=10, alpha=0.6, linewidth=0,
                    ax=axes[1])
    axes[0].set_title("by class (marker: domain)")
    axes[1].set_title("by domain")
    sns.move_legend(axes[0], "upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, title=None, markerscale=1.2)
    axes[1].legend(fontsize=8, loc="best", markerscale=1.5)
    for ax in axes:
        ax.set(xticks=[], yticks=[], xlabel="", ylabel="")
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


def confusion_figure(y_true: Sequence[int] | torch.Tensor, y_pred: Sequence[int] | torch.Tensor, title: str = "",
                     *, labels: Sequence[int] = CLASSES, normalize: bool = True, ax=None) -> Figure:
    """Heatmap of the confusion matrix (rows: true digit, columns: predicted); ``normalize`` shows each row as
    % of that digit's images (the count is in the title), else raw counts. Overall accuracy in the title."""
    from sklearn.metrics import confusion_matrix

    y_true, y_pred = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    cm = confusion_matrix(y_true, y_pred, labels=list(labels))
    if normalize:
        rows = cm.sum(1, keepdims=True)
        values = np.divide(cm * 100.0, rows, out=np.zeros(cm.shape), where=rows > 0)
    else:
        values = cm
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.6, 4.8))
    else:
        fig = ax.figure
    sns.heatmap(values, annot=True, fmt=".0f", cmap="Blues", vmin=0, vmax=100 if normalize else None,
                xticklabels=list(labels), yticklabels=list(labels), square=True, linewidths=0.5, cbar=False,
                annot_kws={"fontsize": 7}, ax=ax)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    acc = float((y_true == y_pred).mean() * 100) if len(y_true) else float("nan")
    unit = "% of each row" if normalize else "counts"
    ax.set_title(f"{title + ': ' if title else ''}accuracy {acc:.1f} % of {len(y_true)} ({unit})", fontsize=9)
    fig.tight_layout()
    return fig


def worst_figure(images: torch.Tensor, y_true: Sequence[int], y_pred: Sequence[int], p_true: Sequence[float],
                 title: str = "", ncol: int = 8) -> Figure:
    """uint8 images [N,3,H,W] with ``true→predicted`` and the probability given to the true class as titles."""
    n = len(images)
    ncol = max(1, min(ncol, n))
    rows = max(1, (n + ncol - 1) // ncol)
    fig, axes = plt.subplots(rows, ncol, figsize=(ncol * 1.05, rows * 1.3 + (0.3 if title else 0)), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < n:
            ax.imshow(images[k].permute(1, 2, 0).cpu().numpy(), interpolation="nearest")
            ax.set_title(f"{int(y_true[k])}→{int(y_pred[k])}  p={float(p_true[k]):.2f}", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
