"""Problem 4 (Generate To Adapt vs DANN): the runs, the tables and the discussion, from this run's numbers.

GTA is the registry's own-recipe method (:func:`hw3lib.methods.own_recipe`), DANN its baseline
(:func:`hw3lib.methods.baseline`); the names are the registry's, not written here.

The runs come from :func:`hw3lib.train.uda.gta_runs` and :func:`hw3lib.train.uda.baseline_runs`. Accuracies are percentages on the target test split of the model after the last step (no selection on
target labels).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from hw3lib import methods
from hw3lib.data.layout import UDA_PAIRS
from hw3lib.eval import uda
from hw3lib.eval.uda import (REFERENCE_LABEL, COURSE_REPORT, _pairs_in, cell_text, mean_over_pairs, pair_key, pair_label,
                             results_table, row_label, summarize, value_text)

Key = tuple[str, str, str, int]  # (method, source, target, seed)
# the summary key of the warm-start row ("gta-warm"): GTA's F, C after their source-only steps
WARM = methods.own_recipe() + uda.WARM


def _compared() -> tuple[str, str]:
    """The two methods this module weighs: the registry's baseline (DANN) and its own-recipe method (GTA)."""
    return methods.baseline(), methods.own_recipe()


def warm_start_summary(gta: Mapping[Key, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{"gta-warm": cells}``: target-test accuracy of GTA's F, C at the end of the warm start (runs that had
    one), summarised like :func:`hw3lib.eval.uda.summarize`; ``{}`` without warm starts."""
    warm = {(WARM, src, tgt, seed): dataclasses.replace(r, metrics={"target_acc": r.metrics["warm_target_acc"]})
            for (_, src, tgt, seed), r in gta.items() if "warm_target_acc" in (r.metrics or {})}
    return summarize(warm) if warm else {}


# -- tables ------------------------------------------------------------------------------------------------
def comparison_table(summary: Mapping[str, Mapping[str, Any]], gray_pairs: Iterable[Iterable[str]] = ()) -> pd.DataFrame:
    """Problem 4.1: rows source-only, DANN, (GTA's warm start,) GTA, target-only; columns pairs (+ the mean over
    pairs); ``mean ± std``."""
    own = methods.own_recipe()
    order = (methods.lower(), methods.baseline()) + ((WARM,) if WARM in summary else ()) + (own, methods.upper())
    df = results_table(summary, methods=order)
    means = {row_label(m): mean_over_pairs(summary, m) for m in order if m in summary}
    df["mean over pairs"] = [f"{means[i]:.2f}" if i in means and means[i] is not None else "—" for i in df.index]
    grays = [pair_label(*p) for p in gray_pairs]
    if grays and row_label(own) in df.index:
        df = df.rename(index={row_label(own): f"{row_label(own)} (luminance on {', '.join(grays)})"})
    return df


def gain_table(summary: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Per pair: DANN and GTA means, GTA − DANN (points), and both stds when the cells hold several seeds."""
    rows, (dann, gta) = {}, _compared()
    for p in _pairs_in(summary):
        k = pair_key(*p)
        if k in summary.get(dann, {}) and k in summary.get(gta, {}):
            d, g = summary[dann][k], summary[gta][k]
            rows[pair_label(*p)] = {"DANN": d["mean"], "GTA": g["mean"], "GTA − DANN": round(g["mean"] - d["mean"], 2)}
            if d.get("std") is not None and g.get("std") is not None:
                rows[pair_label(*p)].update({"DANN std": d["std"], "GTA std": g["std"]})
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "target-test accuracy (%)"
    return df


def reference_table() -> pd.DataFrame:
    """The course report's DANN and GTA figures (its Problem 4.1 table), labelled as such."""
    df = pd.DataFrame.from_dict(
        {row_label(m): {pair_label(*p): COURSE_REPORT[m][pair_key(*p)] for p in UDA_PAIRS} for m in _compared()},
        orient="index")
    df["mean over pairs"] = df.mean(axis=1).round(2)
    df.index.name = REFERENCE_LABEL
    return df


def summarize_gray(variants: Mapping[tuple[str, str, bool, int], Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{pair_key: {"gray": cell, "color": cell}}`` with cells as :func:`hw3lib.eval.uda.summarize`."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    gta = methods.own_recipe()
    for flag in (True, False):
        s = summarize({(gta, src, tgt, seed): r for (src, tgt, g, seed), r in variants.items() if g == flag})
        for k, cell in s.get(gta, {}).items():
            out.setdefault(k, {})["gray" if flag else "color"] = cell
    return out


def gray_table(gray_summary: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """GTA with luminance vs colour images (mean ± std, %) for each compared pair."""
    rows = {}
    for k, cells in gray_summary.items():
        src, tgt = k.split("_", 1)
        rows[f"GTA {pair_label(src, tgt)}"] = {
            ("luminance (gray, 3 ch)" if flag == "gray" else "colour"): cell_text(c)
            for flag, c in cells.items()}
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "target-test accuracy (%)"
    return df


def details_table(config, n_seeds: int, gray_pairs: Iterable[Iterable[str]] = ()) -> pd.DataFrame:
    """Problem 4.3 implementation details of this run."""
    k = config.knobs
    grays = ", ".join(pair_label(*p) for p in gray_pairs) or "none"
    rows = {
        "Networks": f"F (3 conv → {2 * k.ndf}-d), C (2 FC), G (5 transposed convs, 1×1 → 32×32), "
                    "D (4 conv blocks; real/fake + 10-class heads) — Generate_To_Adapt models.py",
        "Input": f"28×28 → {k.image_size}×{k.image_size} (bilinear); F sees (x − {k.in_mean:g})/{k.in_std:g} "
                 "(x ∈ [0, 1]), D's real images and G's outputs are in [−1, 1] (public main.py/trainer.py); usps "
                 f"repeated to 3 channels; luminance repeated to 3 channels on: {grays}",
        "G input": f"one-hot(10 classes + 'target') ‖ F embedding ({2 * k.ndf}) ‖ noise ({k.nz}) = "
                   f"{11 + 2 * k.ndf + k.nz} channels at 1×1",
        "(1) D update": "CE(D_c(x_s), y_s) + BCE(D_s(x_s), real) + BCE(D_s(G(s)), fake) + BCE(D_s(G(t)), fake)",
        "(2) G update": "CE(D_c(G(s)), y_s) + BCE(D_s(G(s)), real)",
        "(3) C update": "CE(C(F(x_s)), y_s)",
        "(4) F update": f"CE(C(F(x_s)), y_s) + {k.adv_weight:g}·CE(D_c(G(s)), y_s) + "
                        f"{k.adv_weight:g}·{k.alpha:g}·BCE(D_s(G(t)), real)",
        "Optimizer": f"Adam lr {config.lr:g}, β1 {k.beta1:g}, β2 0.999; D, F, C: lr/(1 + {k.lr_decay:g}·step); G constant",
        "Initialisation": "conv N(0, 0.02), BatchNorm N(1, 0.02), linear N(0, 0.1) (public utils.weights_init)",
        "Width": f"ndf = {k.ndf} (F and D), ngf = {k.ngf} (G)" + (
            "" if (k.ndf, k.ngf) == (64, 64) else " — narrower than the printouts' 64 to fit the CPU budget of this "
            "profile (same layers, fewer channels)"),
        "Batch": f"{config.batch_size} source + {config.batch_size} target images per step",
        "Warm start": (f"{config.warmup_steps} steps of F + C on the source labels alone (same optimizers), then the "
                       "GTA steps — not in the public code: this profile's GTA budget is a few hundred steps"
                       if config.warmup_steps else "none (as the public code)"),
        "Steps": f"{config.steps} GTA steps" + (f" after the {config.warmup_steps} warm-start steps"
                                                 if config.warmup_steps else ""),
        "Seeds": str(n_seeds),
        "Model selection": (f"the checkpoint ({config.evals} evenly spaced over the GTA steps, the last included) with "
                            "the best information-maximisation score on unlabelled target images; target labels "
                            "never used"),
    }
    return pd.DataFrame({"value": rows}).rename_axis("setting")


# -- discussion --------------------------------------------------------------------------------------------
def game_balance(gta: Mapping[Key, Any], tail: int = 5) -> dict[str, float]:
    """How the GAN game stood at the end of the runs: the mean over runs of D's logged "real" probability on real
    source images, on G(source) and on G(target), over each run's last ``tail`` log points; plus the GTA steps,
    warm-start steps and per-domain batch of the runs (the first run's config)."""
    runs = [r for r in gta.values() if r.history.get("d_real")]
    if not runs:
        return {}
    out = {k: float(np.mean([np.mean(r.history[k][-tail:]) for r in runs]))
           for k in ("d_real", "d_fake_src", "d_fake_tgt")}
    c = runs[0].config
    return {**out, "steps": int(c.steps), "warmup_steps": int(c.warmup_steps), "batch_size": int(c.batch_size),
            "runs": len(runs)}


def discussion(summary: Mapping[str, Mapping[str, Any]], gray_summary: Mapping[str, Mapping[str, Any]],
               n_seeds: int, balance: Mapping[str, float] | None = None) -> str:
    """Problem 4.5 text (markdown) built from this run's numbers (``balance``: :func:`game_balance` of the runs)."""
    lines = [f"Target-test accuracy of the reported model (the validator's pick), {n_seeds} "
             f"seed{'s' if n_seeds != 1 else ''} per cell:", ""]
    gains, wins, pairs = [], 0, 0
    dann, gta = _compared()
    for p in _pairs_in(summary):
        k = pair_key(*p)
        if k not in summary.get(dann, {}) or k not in summary.get(gta, {}):
            continue
        d, g = summary[dann][k], summary[gta][k]
        gain = g["mean"] - d["mean"]
        gains.append(gain)
        pairs += 1
        wins += gain > 0
        ref = COURSE_REPORT[gta][k] - COURSE_REPORT[dann][k]
        # the seeds per cell are said once, above: no "(n = 1)" after each number
        lines.append(f"- **{pair_label(*p)}**: DANN {value_text(d)} %, GTA {value_text(g)} % → GTA {gain:+.2f} points (course report on the real data: {ref:+.2f}).")
    if pairs:
        dm, gm = mean_over_pairs(summary, dann), mean_over_pairs(summary, gta)
        lines += ["", f"Over the pairs GTA averages {gm:.2f} % against DANN's {dm:.2f} % "
                  f"({np.mean(gains):+.2f} points) and is ahead on {wins} of {pairs} pairs."]
    if summary.get(WARM) and pairs:
        adds = [summary[gta][pair_key(*p)]["mean"] - summary[WARM][pair_key(*p)]["mean"]
                for p in _pairs_in(summary) if pair_key(*p) in summary[WARM] and pair_key(*p) in summary.get(gta, {})]
        lines += ["", f"GTA starts here from a warm start (F and C trained on the source labels alone), which reaches "
                  f"{mean_over_pairs(summary, WARM):.2f} % over the pairs; the GTA steps change that by "
                  f"{np.mean(adds):+.2f} points on average ({', '.join(f'{a:+.2f}' for a in adds)} per pair) — the part "
                  "of GTA's score its adversarial, generative alignment is responsible for."]
    if n_seeds > 1 and pairs:
        sd = {m: float(np.mean([summary[m][pair_key(*p)]["std"] for p in _pairs_in(summary)
                                if pair_key(*p) in summary.get(m, {})])) for m in (dann, gta)}
        steadier = "less" if sd[gta] < sd[dann] else "more"
        lines += ["", f"Run-to-run spread (mean std over pairs): GTA {sd[gta]:.2f} points, DANN {sd[dann]:.2f} "
                  f"points — GTA varies {steadier} from seed to seed here (the course report found GTA unstable: the "
                  "same number of steps could give different scores)."]
    elif pairs:
        lines += ["", "With a single seed the run-to-run spread is not measured; run the notebook with "
                  "`seeds = [0, 1, 2]` to see it (the course report found GTA unstable)."]
    for k, cells in gray_summary.items():
        if "gray" in cells and "color" in cells:
            src, tgt = k.split("_", 1)
            delta = cells["gray"]["mean"] - cells["color"]["mean"]
            better = "helps" if delta > 0 else "does not help"
            lines += ["", f"Luminance images on {pair_label(src, tgt)} (the course report's choice for the one pair with "
                      f"colour on both sides): {cells['gray']['mean']:.2f} % vs {cells['color']['mean']:.2f} % in colour "
                      f"({delta:+.2f} points) — it {better} here."]
    if balance:
        b = balance
        lines += ["", f"Budget and the state of the game: each GTA run here took {b['steps']} adversarial steps of "
                  f"{b['batch_size']}+{b['batch_size']} images after {b['warmup_steps']} warm-start steps (the public "
                  "code trains 100 epochs at batch 100). At the end of the runs D gave real source images a mean "
                  f"\"real\" probability of {b['d_real']:.2f}, G(source) {b['d_fake_src']:.2f} and G(target) "
                  f"{b['d_fake_tgt']:.2f} (mean of the last logged points over {b['runs']} runs)"
                  + (": below 0.2 for both kinds of G's images, so D still wins the game clearly."
                     if max(b["d_fake_src"], b["d_fake_tgt"]) < 0.2 else
                     ": at or above 0.2 for G's images, so G fools D part of the time and the game is being played.")]
        lines += ["", "Not this run's numbers: one GTA run at the public code's own budget and recipe on the embedded "
                  "usps → mnistm (700 steps at batch 100, widths 64, no warm start) picked a checkpoint at 31.1 % "
                  "(best of its 10 checkpoints 33.5 %) with D still ahead (G's images at 0.07–0.10); its trainer "
                  "matches the public `trainer.py` but for `retain_graph` semantics and checkpoint selection "
                  "(docs/NOTES.md, \"GTA against the public `trainer.py`\", with its conditions)."]
    return "\n".join(lines)


def metrics_dict(summary: Mapping[str, Any], gray_summary: Mapping[str, Any], config,
                 dann_config, seeds: list[int], gray_pairs: Iterable[Iterable[str]],
                 data: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every number the Problem 4 tables show, under readable keys (``run_dir/metrics.json``)."""
    cell = lambda c: {kk: c[kk] for kk in ("mean", "std", "n", "values", "seeds")}  # noqa: E731
    dann, gta = _compared()
    gains = {pair_key(*p): round(summary[gta][pair_key(*p)]["mean"] - summary[dann][pair_key(*p)]["mean"], 2)
             for p in _pairs_in(summary)
             if pair_key(*p) in summary.get(gta, {}) and pair_key(*p) in summary.get(dann, {})}
    return {
        "problem": 4,
        "seeds": [int(s) for s in seeds],
        "gray_pairs": [pair_key(*p) for p in gray_pairs],
        "config": {gta: dataclasses.asdict(config),
                   f"{gta}_knobs": dataclasses.asdict(config.knobs),
                   dann: dataclasses.asdict(dann_config)},
        "data": dict(data or {}),
        "target_accuracy": {m: {k: cell(c) for k, c in cells.items()} for m, cells in summary.items()},
        "mean_over_pairs": {m: mean_over_pairs(summary, m) for m in summary},
        f"{gta}_minus_{dann}": gains,
        "gray_vs_color": {k: {flag: cell(c) for flag, c in cells.items()} for k, cells in gray_summary.items()},
        "reference_course_report": {m: COURSE_REPORT[m] for m in (dann, gta)},
        "reference_mean_over_pairs": {m: round(float(np.mean(list(COURSE_REPORT[m].values()))), 2) for m in (dann, gta)},
    }
