"""Seaborn figures of Problems 3-4: the t-SNE of a feature extractor (class as colour, domain as marker), the
confusion matrix of target-test predictions, and the worst-classified target images. Every function returns a
Figure (``hw3lib.plots.show`` saves and displays it).

:func:`tsne_figure` takes the same arguments as :func:`hw3lib.plots.uda.tsne_figure`, so switching is an import.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.figure import Figure

from hw3lib.plots import plt

CLASSES: tuple[int, ...] = tuple(range(10))


def tsne_frame(points: Mapping[str, np.ndarray], domain_names: Sequence[str] = ("source", "target")) -> pd.DataFrame:
    """``{"xy": [N,2], "label": [N], "domain": [N] (0/1)}`` → columns ``x``, ``y``, ``digit`` (str), ``domain``
    (its name)."""
    xy = np.asarray(points["xy"], dtype=float)
    names = np.asarray(list(domain_names), dtype=object)
    return pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "digit": np.asarray(points["label"]).astype(int).astype(str),
                         "domain": names[np.asarray(points["domain"]).astype(int)]})


def tsne_figure(points: Mapping[str, np.ndarray], title: str = "",
                domain_names: tuple[str, str] = ("source", "target")) -> Figure:
    """Two panels of the same embedding: left, colour = digit class and marker = domain; right, colour = domain
    (with the number of points of each)."""
    df = tsne_frame(points, domain_names)
    digits = [str(c) for c in CLASSES if str(c) in set(df["digit"])]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    sns.scatterplot(df, x="x", y="y", hue="digit", hue_order=digits, palette="tab10", style="domain",
                    style_order=list(domain_names), markers=["o", "X"], s=14, alpha=0.8, linewidth=0, ax=axes[0])
    counts = df["domain"].value_counts()
    df["domain (n)"] = [f"{d} ({counts[d]})" for d in df["domain"]]
    sns.scatterplot(df, x="x", y="y", hue="domain (n)",
                    hue_order=[f"{d} ({counts[d]})" for d in domain_names if d in counts],
                    palette=["tab:blue", "tab:red"][:len(counts)], s=10, alpha=0.6, linewidth=0, ax=axes[1])
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
