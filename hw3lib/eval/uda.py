"""Evaluation of the digit-adaptation runs (Problems 3-4): t-SNE features, the tables
and the discussion text of the report, all computed from this run's numbers.

Accuracies are percentages on the *target test* split of the model after the last training step.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn

from hw3lib import methods
from hw3lib.checkpoint import capture_rng, restore_rng
from hw3lib.data import digits, domains
from hw3lib.data.batches import in_order
from hw3lib.data.layout import UDA_PAIRS
from hw3lib.data.sets import DigitSet
from hw3lib.device import seed_everything
# The predictions live below training (which scores checkpoints with them); re-exported here for the notebooks.
from hw3lib.models.inference import (EVAL_BATCH, accuracy, model_device, predict_labels,  # noqa: F401
                                     predict_logits, target_bn_statistics)
from hw3lib.runtime import eval_mode

ADABN = "source-only+bn"  # diagnostic: the source-only model with target BatchNorm statistics
WARM = "-warm"            # "<method>-warm": a method's model at the end of its warm start (source labels only)
HANDIN = "hand-in"        # Problem 4's hand-in: per pair, the development protocol's choice


def row_label(key: str) -> str:
    """The table label of a summary row: a registered method's label, or a derived row's (AdaBN, warm starts)."""
    if key == ADABN:
        return "Source only + target BN statistics (AdaBN, diagnostic)"
    if key == HANDIN:
        return "Hand-in: the development protocol's choice per pair"
    if key.endswith(WARM) and key[:-len(WARM)] in methods.REGISTRY:
        return f"{methods.label(key[:-len(WARM)])}'s warm start (source labels only)"
    return methods.label(key)


def row_order(keys: Iterable[str]) -> list[str]:
    """Summary rows in the registry's table order; a derived row beside its method (AdaBN after source-only, a warm
    start before its method), unknown keys last."""
    def rank(key: str) -> tuple[float, str]:
        base, offset = key, 0.0
        if key == ADABN:
            base, offset = methods.lower(), 0.5
        elif key == HANDIN:
            base, offset = methods.upper(), -0.5
        elif key.endswith(WARM):
            base, offset = key[:-len(WARM)], -0.5
        return (methods.REGISTRY[base].order + offset if base in methods.REGISTRY else float("inf"), key)
    return sorted(keys, key=rank)


# The course report's own accuracies (%), measured on the real course data; never mixed with this run's numbers.
# ``{method: {"S_T": %}}``, declared with each course pair's source domain (hw3lib.data.domains).
COURSE_REPORT = domains.COURSE_REPORT
REFERENCE_LABEL = "reference: course report on the real course data"


def pair_key(src: str, tgt: str) -> str:
    """``usps_mnistm`` (metrics.json key)."""
    return f"{src}_{tgt}"


def pair_label(src: str, tgt: str) -> str:
    """``usps → mnistm`` (table column)."""
    return f"{src} → {tgt}"


def adabn_summary(results: Mapping[tuple[str, str, str, int], Any], data_root: Any
                  ) -> dict[str, dict[str, dict[str, Any]]]:
    """``{"source-only+bn": cells}``: the source-only models with their BatchNorm statistics re-estimated on the
    target train images (:func:`target_bn_statistics`), target-test accuracy — a diagnostic that separates what
    DANN's target statistics give from what its adversarial alignment gives. Models are copied, not changed."""
    import copy

    out, lower = {}, methods.lower()
    for (method, src, tgt, seed), r in results.items():
        if method != lower:
            continue
        classifier = copy.deepcopy(r.classifier)
        # The statistics are gathered in training mode (dropout on, as in DANN's own re-estimation); seeding
        # from the run makes the diagnostic independent of how many runs were evaluated before it.
        state = capture_rng()
        try:
            seed_everything(seed)
            target_bn_statistics(classifier, digits(data_root, tgt, "train").images)
        finally:
            restore_rng(state)
        acc = accuracy(classifier, digits(data_root, tgt, "test"))
        out[(ADABN, src, tgt, seed)] = dataclasses.replace(r, metrics={"target_acc": acc})
    return summarize(out) if out else {}


# -- t-SNE -------------------------------------------------------------------------------------------------
@torch.no_grad()
def extract_features(classifier: nn.Module, images: torch.Tensor, *, batch_size: int = 1000) -> np.ndarray:
    """Feature-extractor outputs [N,D] (DANN: 800-d; GTA: netF's 128-d) as float32 numpy."""
    device = model_device(classifier)
    with eval_mode(classifier):
        out = [classifier.features(x.to(device)) for (x,) in in_order(images, batch_size=batch_size)]
    return torch.cat(out).float().cpu().numpy()


def balanced_indices(n_source: int, n_target: int, per_domain: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The same number of random rows from each domain: ``min(per_domain, n_source, n_target)``."""
    n = min(per_domain, n_source, n_target)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_source, n, replace=False)), np.sort(rng.choice(n_target, n, replace=False))


def tsne_points(classifier: nn.Module, source: DigitSet, target: DigitSet, *, per_domain: int = 500,
                seed: int = 0) -> dict[str, np.ndarray]:
    """2-D t-SNE of feature-extractor outputs of source and target TEST images, domains balanced by subsampling.

    Returns ``{"xy": [2n,2], "label": [2n], "domain": [2n] (0 source, 1 target)}``.
    """
    import warnings

    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    si, ti = balanced_indices(len(source), len(target), per_domain, seed)
    feats = np.concatenate([extract_features(classifier, source.images[si]),
                            extract_features(classifier, target.images[ti])])
    n = len(si)
    if len(feats) > 50 and feats.shape[1] > 50:  # standard t-SNE practice: PCA to 50-d first (faster, denoised)
        feats = PCA(50, random_state=seed).fit_transform(feats)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        xy = TSNE(2, init="pca", learning_rate="auto", perplexity=min(30.0, max(2.0, (2 * n - 1) / 3)),
                  random_state=seed).fit_transform(feats)
    return {"xy": xy, "label": np.concatenate([source.labels[si].numpy(), target.labels[ti].numpy()]),
            "domain": np.r_[np.zeros(n, int), np.ones(n, int)]}


# -- tables ------------------------------------------------------------------------------------------------
def summarize(results: Mapping[tuple[str, str, str, int], Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{method: {pair_key: {"mean", "std", "n", "values", "seeds"}}}`` of target-test accuracy (%).

    ``std`` is the sample standard deviation over seeds; with one seed it is undefined (None).
    """
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for (method, src, tgt, seed), r in results.items():
        cell = out.setdefault(method, {}).setdefault(pair_key(src, tgt), {"values": [], "seeds": []})
        cell["values"].append(round(float(r.metrics["target_acc"]), 2))
        cell["seeds"].append(int(seed))
    for cells in out.values():
        for cell in cells.values():
            v = np.asarray(cell["values"], float)
            cell["n"] = len(v)
            cell["mean"] = round(float(v.mean()), 2)
            cell["std"] = round(float(v.std(ddof=1)), 2) if len(v) > 1 else None
    return out


def value_text(cell: Mapping[str, Any]) -> str:
    """``"mean ± std"`` over several seeds, ``"value"`` for one: for prose that says the number of seeds once."""
    if cell.get("n", 1) > 1 and cell.get("std") is not None:
        return f"{cell['mean']:.2f} ± {cell['std']:.2f}"
    return f"{cell['mean']:.2f}"


def cell_text(cell: Mapping[str, Any]) -> str:
    """A table cell: ``"mean ± std (n = k)"`` over several seeds, ``"value (n = 1)"`` for one (its spread is not
    measured, not zero)."""
    n = cell.get("n", 1) if cell.get("n", 1) > 1 and cell.get("std") is not None else 1
    return f"{value_text(cell)} (n = {n})"


def _pairs_in(summary: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str]]:
    keys = {k for cells in summary.values() for k in cells}
    ordered = [p for p in UDA_PAIRS if pair_key(*p) in keys]
    return ordered + [tuple(k.split("_", 1)) for k in sorted(keys) if k not in {pair_key(*p) for p in ordered}]


def _or_bounds(names: Iterable[str] | None) -> tuple[str, ...]:
    """``names``, else Problem 3's rows: the registry's bounds and baseline in table order."""
    return methods.bounds_and_baseline() if names is None else tuple(names)


def results_table(summary: Mapping[str, Mapping[str, Any]], methods: Iterable[str] | None = None) -> pd.DataFrame:
    """The course report's table shape: rows = ``methods`` (default: the registry's bounds and baseline, in table
    order), columns = pairs, cells :func:`cell_text` (%) of this run."""
    pairs = _pairs_in(summary)
    rows = {}
    for m in _or_bounds(methods):
        if m not in summary:
            continue
        rows[row_label(m)] = {
            pair_label(*p): (cell_text(c) if (c := summary[m].get(pair_key(*p))) else "—")
            for p in pairs}
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "target-test accuracy (%)"
    return df


def reference_table(methods: Iterable[str] | None = None) -> pd.DataFrame:
    """The course report's own accuracies, labelled as such (a separate table, never mixed with this run's);
    ``methods`` as :func:`results_table`."""
    df = pd.DataFrame.from_dict(
        {row_label(m): {pair_label(*p): COURSE_REPORT[m][pair_key(*p)] for p in UDA_PAIRS} for m in _or_bounds(methods)},
        orient="index")
    df.index.name = REFERENCE_LABEL
    return df


def mean_over_pairs(summary: Mapping[str, Mapping[str, Any]], method: str) -> float | None:
    """The mean over pairs of ``method``'s per-pair means (%), or None without cells."""
    cells = summary.get(method) or {}
    return round(float(np.mean([c["mean"] for c in cells.values()])), 2) if cells else None


def gap_closed(summary: Mapping[str, Mapping[str, Any]], method: str | None = None) -> dict[str, float | None]:
    """Per pair, the share (%) of the lower→upper-bound gap that ``method`` (default: the baseline, DANN) closes:
    (M − L) / (U − L) · 100."""
    out, rows = {}, (methods.lower(), method or methods.baseline(), methods.upper())
    for p in _pairs_in(summary):
        k = pair_key(*p)
        try:
            lo, d, up = (summary[m][k]["mean"] for m in rows)
        except KeyError:
            continue
        out[k] = round((d - lo) / (up - lo) * 100.0, 1) if up - lo > 1e-9 else None
    return out


def domain_acc_summary(results: Mapping[tuple[str, str, str, int], Any], method: str | None = None,
                       ) -> dict[str, dict[str, float]]:
    """Domain-classifier accuracy (%) during training of ``method`` (default: the baseline, DANN), per pair (mean
    over seeds): first 10 % and last 10 % of the logged steps, and the maximum."""
    acc: dict[str, list[tuple[float, float, float]]] = {}
    method = method or methods.baseline()
    for (m, src, tgt, _), r in results.items():
        series = r.history.get("domain_acc") or []
        if m != method or not series:
            continue
        k = max(1, len(series) // 10)
        acc.setdefault(pair_key(src, tgt), []).append(
            (100 * float(np.mean(series[:k])), 100 * float(np.mean(series[-k:])), 100 * float(np.max(series))))
    return {p: {name: round(float(np.mean([a[i] for a in v])), 1) for i, name in enumerate(("early", "late", "max"))}
            for p, v in acc.items()}


def details_table(config: Any, n_seeds: int) -> pd.DataFrame:
    """Implementation details of this run (Problem 3.5)."""
    opt = config.optimizer
    lr = config.lr
    rows = {
        "Network": "CNNModel (fungtion/DANN): 2 conv blocks → 800-d features; label and domain classifiers",
        "Input": "28×28 RGB scaled to [-1, 1]; grayscale (usps) repeated to 3 channels",
        "Loss": "NLL(source labels) + NLL(source domain = 0) + NLL(target domain = 1), one update per step",
        "Optimizer": (f"Adam, lr {lr:g} (constant)" if opt == "adam"
                      else f"SGD momentum 0.9, lr {lr:g}/(1+10p)^0.75"),
        "GRL coefficient λ": f"2/(1+exp(−{config.knobs.gamma:g}·p)) − 1, p = step/steps (0 → 1)",
        "Batch": f"{config.batch_size} source + {config.batch_size} target images per step",
        "BatchNorm across domains": ("one concatenated source+target batch per step" if config.bn == "joint"
                                     else "separate forward passes for source and target"),
        "BatchNorm statistics at test (DANN)": (
            "re-estimated on the unlabelled target train images after the last step (the normalisation the "
            "target pass had in training)" if config.bn_eval == "target"
            else "running averages over the source and target passes"),
        "Budget": (f"{config.epochs:g} epochs over the larger training domain" if config.epochs
                   else f"{config.steps} steps"),
        "Seeds": str(n_seeds),
        "Model selection": (f"DANN: {config.evals} checkpoints evenly spaced over the run are scored (BatchNorm "
                            "statistics re-estimated on unlabelled target images) and the information-maximisation "
                            "validator's best is reported; bounds: the last step; target labels never choose"),
        "Bounds": "source-only: label loss on source only; target-only: label loss on target train",
    }
    return pd.DataFrame({"value": rows}).rename_axis("setting")


# -- discussion --------------------------------------------------------------------------------------------
def discussion(summary: Mapping[str, Mapping[str, Any]], domain_acc: Mapping[str, Mapping[str, float]],
               n_seeds: int, *, bn: str = "separate", bn_eval: str = "target") -> str:
    """Problem 3.6 text (markdown): every sentence states a number of this run or a comparison of them; an earlier
    measurement is cited from docs/NOTES.md with its conditions. ``bn``/``bn_eval``: this run's BatchNorm settings."""
    closed = gap_closed(summary)
    lower, dann, upper = methods.lower(), methods.baseline(), methods.upper()
    lines = [f"Over {n_seeds} seed{'s' if n_seeds != 1 else ''} per cell (target-test accuracy of the reported model: "
             "for DANN the checkpoint its unsupervised validator picked, for the bounds the last one):", ""]
    wins = 0
    for p in _pairs_in(summary):
        k = pair_key(*p)
        if k not in closed:
            continue
        lo, d, up = (summary[m][k]["mean"] for m in (lower, dann, upper))
        wins += d > lo
        share = closed[k]
        verdict = (f"DANN closes {share:.1f} % of the lower→upper gap ({d - lo:+.2f} points)" if d >= lo and share
                   is not None else f"DANN is {lo - d:.2f} points below the lower bound")
        lines.append(f"- **{pair_label(*p)}**: source only {lo:.2f} %, DANN {d:.2f} %, target only {up:.2f} % — "
                     f"{verdict}.")
    total = len(closed)
    ref_gains = [COURSE_REPORT[dann][k] - COURSE_REPORT[lower][k] for k in COURSE_REPORT[dann]]
    lines += ["", f"DANN beats the source-only lower bound on {wins} of {total} pairs here; the course report (real "
              f"course data, same network) saw gains of {min(ref_gains):.1f} to {max(ref_gains):.1f} points."]
    if ADABN in summary:
        parts, ahead = [], 0
        for p in _pairs_in(summary):
            k = pair_key(*p)
            if k in summary[ADABN] and k in summary.get(dann, {}):
                a, d = summary[ADABN][k]["mean"], summary[dann][k]["mean"]
                ahead += d > a
                parts.append(f"{pair_label(*p)} {a:.2f} % (DANN {d - a:+.2f} points against it)")
        lines += ["", "Diagnostic — the source-only model given the target's BatchNorm statistics (AdaBN: no adversarial "
                  "term, only the target statistics DANN's model is evaluated with): " + "; ".join(parts)
                  + f". DANN is ahead of it on {ahead} of {len(parts)} pairs."]
    if domain_acc:
        parts = [f"{pair_label(*k.split('_', 1))}: {v['early']:.0f} % early → {v['late']:.0f} % late "
                 f"(max {v['max']:.0f} %)" for k, v in domain_acc.items()]
        top = max(v["max"] for v in domain_acc.values())
        late = max(domain_acc.items(), key=lambda kv: kv[1]["late"])
        lines += ["", "Domain-classifier accuracy during DANN training (Figure fig3_6_domain_acc; 50 % = the domains "
                  "cannot be told apart from the features): " + "; ".join(parts)
                  + f". Its highest value over the run is {top:.0f} %; at the end it is highest on "
                  f"{pair_label(*late[0].split('_', 1))} ({late[1]['late']:.0f} %)."]
    gaps = [(summary[upper][k]["mean"] - summary[lower][k]["mean"], k) for k in closed]
    if gaps:
        lines += ["", "The domain shift's price, target-only minus source-only on the same network: "
                  + ", ".join(f"{pair_label(*k.split('_', 1))} {g:.2f} points" for g, k in gaps)
                  + f"; it is largest on {pair_label(*max(gaps)[1].split('_', 1))}."]
    lines += ["", "How this run normalised the two domains: "
              + ("separate source and target forward passes" if bn == "separate" else "one concatenated batch")
              + ", and at test time BatchNorm statistics "
              + ("re-estimated on the unlabelled target train images" if bn_eval == "target" else
                 "averaged over training (both domains)")
              + ". docs/NOTES.md (\"DANN's BatchNorm across domains\") records the earlier measurements behind these "
              "defaults, on the embedded quick data (300 steps, batch 64): separate passes 44.0 % against 11.2 % for "
              "one concatenated batch on mnistm → svhn (seed 0), and target statistics 33.0 → 38.8 % on usps → mnistm "
              "(3 seeds) — numbers of those runs, not of this one."]
    return "\n".join(lines)


def metrics_dict(summary: Mapping[str, Any], domain_acc: Mapping[str, Any], config: Any, seeds: list[int],
                 data: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Everything the Problem 3 tables show, under readable keys (written to ``run_dir/metrics.json``)."""
    from dataclasses import asdict, is_dataclass

    return {
        "problem": 3,
        "seeds": [int(s) for s in seeds],
        "config": asdict(config) if is_dataclass(config) else dict(config),
        "data": dict(data or {}),
        "target_accuracy": {m: {k: {kk: c[kk] for kk in ("mean", "std", "n", "values", "seeds")}
                                for k, c in cells.items()} for m, cells in summary.items()},
        "gap_closed_percent": gap_closed(summary),
        "domain_acc_percent": dict(domain_acc),
        "reference_course_report": {m: COURSE_REPORT[m] for m in methods.bounds_and_baseline()},
    }
