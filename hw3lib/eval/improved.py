"""Problem 4, "Improved UDA": GTA (the course report's choice, kept faithful) and the modern methods against DANN and the
bounds — the comparison table, what each method closes of the lower→upper gap, what choosing checkpoints without
target labels costs, and the discussion, all from this run's numbers.

``summary`` is :func:`hw3lib.eval.uda.summarize` of every run; ``results`` maps (method, src, tgt, seed) to runs
whose ``metrics`` hold the reported accuracy (``target_acc``: the primary validator's pick) and each validator's,
the oracle's and the last checkpoint's (``acc@im``, ``acc@snd``, ``acc@src_acc``, ``acc@oracle``, ``acc@last``).
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from hw3lib import methods as registry
from hw3lib.models import validators
from hw3lib.eval.uda import (HANDIN, COURSE_REPORT, _pairs_in, cell_text, gap_closed, mean_over_pairs, pair_key,
                             pair_label, row_label, row_order)
PICKS = {f"acc@{v}": f"{v} pick" for v in validators.VALIDATORS} | {"acc@last": "last step", "acc@oracle":
                                                                     "oracle (target labels: not available)"}


def comparison_table(summary: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Rows: every method (and derived row) in ``summary``, in the registry's order; columns: pairs (``mean ± std``
    %, this run), the mean over pairs, and the course report's figures on the real data (its own column, ``—`` where it
    has none)."""
    pairs = _pairs_in(summary)
    rows = {}
    for m in row_order(summary):
        row = {pair_label(*p): (cell_text(c) if (c := summary[m].get(pair_key(*p))) else "—")
               for p in pairs}
        mean = mean_over_pairs(summary, m)
        row["mean over pairs"] = f"{mean:.2f}" if mean is not None else "—"
        ref = COURSE_REPORT.get(m)
        row["course report (real data)"] = " / ".join(f"{ref[pair_key(*p)]:.2f}" for p in pairs) if ref else "—"
        rows[row_label(m)] = row
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "target-test accuracy (%)"
    return df


def gap_table(summary: Mapping[str, Mapping[str, Any]], methods: Iterable[str]) -> pd.DataFrame:
    """Per method: the share (%) of the lower→upper gap closed on each pair and on the mean over pairs, and the
    difference to DANN in points."""
    rows = {}
    pairs = _pairs_in(summary)
    for m in methods:
        if m not in summary:
            continue
        closed = gap_closed(summary, m)
        row = {f"gap closed, {pair_label(*p)}": (f"{closed[pair_key(*p)]:.1f} %" if closed.get(pair_key(*p)) is not None
                                                 else "—") for p in pairs}
        mean_gap, vs_dann = gap_over_pairs(summary, m), versus_dann(summary, m)
        row["gap closed, mean over pairs"] = f"{mean_gap:.1f} %" if mean_gap is not None else "—"
        if vs_dann is not None:
            row["vs DANN (points, mean over pairs)"] = f"{vs_dann:+.2f}"
        rows[row_label(m)] = row
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "method"
    return df


def gap_over_pairs(summary: Mapping[str, Mapping[str, Any]], method: str) -> float | None:
    """The share (%) of the lower→upper gap ``method`` closes on the mean over pairs."""
    m, lo, up = (mean_over_pairs(summary, k) for k in (method, registry.lower(), registry.upper()))
    return round((m - lo) / (up - lo) * 100, 1) if None not in (m, lo, up) and up - lo > 1e-9 else None


def versus_dann(summary: Mapping[str, Mapping[str, Any]], method: str) -> float | None:
    """``method`` − DANN on the mean over pairs (points); None for DANN itself or without either."""
    dann = registry.baseline()
    if method == dann or dann not in summary or method not in summary:
        return None
    return round(mean_over_pairs(summary, method) - mean_over_pairs(summary, dann), 2)


def selection_summary(results: Mapping[tuple[str, str, str, int], Any], methods: Iterable[str]
                      ) -> dict[str, dict[str, dict[str, float]]]:
    """``{method: {pair_key: {acc@im, acc@snd, acc@src_acc, acc@last, acc@oracle}}}`` means over seeds (%)."""
    acc: dict[str, dict[str, dict[str, list[float]]]] = {}
    for (m, src, tgt, _), r in results.items():
        if m not in methods or "acc@oracle" not in (r.metrics or {}):
            continue
        cell = acc.setdefault(m, {}).setdefault(pair_key(src, tgt), {})
        for k in PICKS:
            cell.setdefault(k, []).append(float(r.metrics[k]))
    return {m: {p: {k: round(float(np.mean(v)), 2) for k, v in c.items()} for p, c in cells.items()}
            for m, cells in acc.items()}


def selection_table(selection: Mapping[str, Mapping[str, Mapping[str, float]]]) -> pd.DataFrame:
    """One row per (method, pair): target-test accuracy of the checkpoint each validator picks, of the last one and
    of the best one (the oracle, which needs target labels), and what the primary validator's pick costs."""
    rows = []
    for m, cells in selection.items():
        for p in _pairs_in({m: cells}):
            c = cells[pair_key(*p)]
            row = {"method": row_label(m), "pair": pair_label(*p)}
            row.update({PICKS[k]: round(c[k], 2) for k in PICKS if k in c})
            row[f"cost of the {validators.PRIMARY} pick"] = round(c["acc@oracle"] - c[f"acc@{validators.PRIMARY}"], 2)
            rows.append(row)
    return pd.DataFrame(rows).set_index(["method", "pair"]) if rows else pd.DataFrame()


def best_method(summary: Mapping[str, Mapping[str, Any]], candidates: Iterable[str]) -> str | None:
    """The candidate with the highest mean over pairs in this run's table (reporting only: which to show)."""
    scored = [(mean_over_pairs(summary, m), m) for m in candidates if m in summary]
    return max(scored)[1] if scored else None


def label_free_choice(results: Mapping[tuple[str, str, str, int], Any], candidates: Iterable[str], seed: int
                      ) -> dict[str, str]:
    """Per pair, the run a user would deploy without target labels: among ``candidates`` (seed ``seed``), the one
    whose selected checkpoint has the highest primary-validator score. ``{pair_key: run folder (absolute)}``."""
    best: dict[str, tuple[float, str]] = {}
    for (m, src, tgt, sd), r in results.items():
        h = r.history
        if m not in candidates or sd != seed or not h.get(validators.PRIMARY) or not h.get("selected_step"):
            continue
        n = len(h[validators.PRIMARY])
        steps = h["eval_step"][-n:]
        score = h[validators.PRIMARY][steps.index(h["selected_step"][-1])]
        k = pair_key(src, tgt)
        if k not in best or score > best[k][0]:
            best[k] = (score, str(r.run_dir.resolve()) if r.run_dir else r.config.name)
    return {k: v[1] for k, v in best.items()}


def choice_note(selected: Mapping[str, str], results: Mapping[tuple[str, str, str, int], Any],
                candidates: Iterable[str], seed: int, handin: Mapping[str, float] | None = None) -> str:
    """A finding, not the hand-in: what choosing the *method* by the primary validator's score would have handed in
    (per pair, :func:`label_free_choice`'s run of seed ``seed``), against the best candidate by target labels and
    against the development protocol's hand-in (``handin``: pair key → its accuracy, same seed). Markdown."""
    candidates = list(candidates)
    runs = {(src, tgt): {} for (_, src, tgt, _) in results}
    for (m, src, tgt, sd), r in results.items():
        if sd == seed and m in candidates:
            runs[(src, tgt)][m] = r
    lines, diffs = [], []
    for (src, tgt), by_method in runs.items():
        chosen = next((m for m, r in by_method.items()
                       if r.run_dir and str(r.run_dir.resolve()) == selected.get(pair_key(src, tgt))), None)
        if chosen is None:
            continue
        best = max(by_method, key=lambda m: by_method[m].metrics["target_acc"])
        acc, top = by_method[chosen].metrics["target_acc"], by_method[best].metrics["target_acc"]
        tail = ("the best candidate by target labels too" if chosen == best else
                f"{top - acc:.2f} points below {row_label(best)}, the best by target labels")
        if handin and pair_key(src, tgt) in handin:
            diffs.append(acc - handin[pair_key(src, tgt)])
            tail += f"; {diffs[-1]:+.2f} points against the hand-in"
        lines.append(f"{pair_label(src, tgt)}: {row_label(chosen)} ({acc:.2f} %, {tail})")
    if not lines:
        return ""
    text = (f"**Choosing the method by the {validators.PRIMARY} score instead** (per pair, the method whose "
            f"reported checkpoint has the highest {validators.PRIMARY} score, seed {seed}) would hand in: "
            + "; ".join(lines) + ".")
    if diffs:
        text += (f" That rule is below the hand-in on {sum(d < 0 for d in diffs)} of {len(diffs)} pairs "
                 f"(mean {float(np.mean(diffs)):+.2f} points).")
    return text


def _development_rows(key: str, entry: Mapping[str, Any], summary: Mapping[str, Mapping[str, Any]]) -> list[dict]:
    """One row per single candidate and per ensemble of a course pair's development task."""
    src, tgt = key.split("_", 1)
    chosen = entry["choice"]["label"]
    rows = []
    for sc in [*entry["scores"], *entry.get("ensembles", [])]:
        is_choice = sc["label"] == chosen
        single = "members" not in sc
        course = summary.get(HANDIN, {}).get(key) if is_choice else (
            summary.get(sc["method"], {}).get(key) if single and not sc.get("knobs") else None)
        stopped = sc.get("stopped_at")
        rows.append({"course pair": pair_label(src, tgt), "candidate": sc["label"],
                     "development task": pair_label(*entry["development_task"].split("_", 1)),
                     "development accuracy (%)": sc["accuracy"], "n": len(sc.get("values") or []),
                     "stopped at step": stopped if stopped else "—",
                     "chosen": "✓" if is_choice else "",
                     "course pair target-test (%), this report": cell_text(course) if course else "—"})
    return rows


def development_table(record: Mapping[str, Any], summary: Mapping[str, Mapping[str, Any]], *,
                      within: float | None = None) -> pd.DataFrame:
    """The development protocol's table: per course pair, every candidate's accuracy on its development task's
    held-out split (mean over the development seeds, the validator's checkpoint; a candidate the successive halving
    stopped shows its score at that rung), the hand-in's ensemble (each member at its validator's pick, a stopped
    member at its rung), the choice, and —
    where the candidate also ran on the course pair in this report — its target-test accuracy there (for reading
    the protocol; it chose nothing). ``within``: only the choice, its members and the candidates that finished within
    that many points of the choice's score (the body of the report; the whole table goes to its appendix)."""
    rows = []
    for key, entry in (record.get("pairs") or {}).items():
        top = entry["choice"].get("accuracy", 0.0)
        members = {m["label"] for m in entry["choice"].get("members") or []}
        rows += [r for r in _development_rows(key, entry, summary)
                 if within is None or r["chosen"] or r["candidate"] in members
                 or (r["stopped at step"] == "—" and r["development accuracy (%)"] >= top - within)]
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    # each score's own n (its development seeds): the course pair's column has another (this report's seeds)
    df["development accuracy (%)"] = [f"{v:.2f} (n = {n})" if n else f"{v:.2f}"
                                      for v, n in zip(df["development accuracy (%)"], df.pop("n"))]
    if (df["stopped at step"] == "—").all():
        df = df.drop(columns=["stopped at step"])
    return df.set_index(["course pair", "candidate"])


def handin_note(record: Mapping[str, Any], source: str, summary: Mapping[str, Mapping[str, Any]],
                members: Mapping[str, Iterable[float]] | None = None) -> str:
    """What Problem 4 hands in and why, from the choices and this run's numbers (``members``: per pair, the
    target-test accuracy of each member of a chosen ensemble, first seed). Markdown."""
    p = record.get("protocol") or {}
    rungs = p.get("rungs") or []
    halving = (f"; successive halving kept {', then '.join(f'{r[1]:.0%}' for r in rungs)} of the candidates at "
               f"scored checkpoint{'s' if len(rungs) > 1 else ''} {', '.join(str(r[0]) for r in rungs)}"
               if rungs else "")
    k = p.get("handin_methods")
    rule = (f"; the hand-in: the mean-probability ensemble of the {k} best methods on the task, each at its best "
            f"candidate's knobs" if k else "")
    lines = [f"**The hand-in, chosen on development tasks** ({source}; {len(p.get('seeds') or [])} development "
             f"seed(s), {len(p.get('candidates') or [])} candidates per pair{halving}{rule}):", ""]
    parts = []
    for key, entry in (record.get("pairs") or {}).items():
        src, tgt = key.split("_", 1)
        ch = entry["choice"]
        text = (f"**{pair_label(src, tgt)}**: {ch['label']} ({ch['accuracy']:.2f} % on {entry.get('held_out', '?')} "
                f"held-out images of {pair_label(*entry['development_task'].split('_', 1))})")
        hand, dann = summary.get(HANDIN, {}).get(key), summary.get(registry.baseline(), {}).get(key)
        if hand and dann:
            text += (f", {hand['mean']:.2f} % on the course pair's target test against DANN's {dann['mean']:.2f} % "
                     f"({hand['mean'] - dann['mean']:+.2f} points)")
        accs = list((members or {}).get(key) or [])
        if len(accs) > 1:
            text += f"; its members alone: {', '.join(f'{a:.2f} %' for a in accs)}"
        parts.append(text)
    return "\n".join([*lines, *(f"- {part}." for part in parts)])  # a list: one pair a line


def discussion(summary: Mapping[str, Mapping[str, Any]], selection: Mapping[str, Any], n_seeds: int,
               improved: Iterable[str] = ()) -> str:
    """Problem 4's verdict in markdown, every sentence from this run's numbers: per pair the best method and its
    margin over DANN and the runner-up, the best improved method over the pairs and the gap it closes, where GTA (the
    course report's method) stands among the improved methods, and what choosing checkpoints without target labels
    cost. ``improved``: the improved methods to compare (default: every one of the registry in ``summary``)."""
    improved = [m for m in (improved or registry.improved()) if m in summary]
    lower, dann, upper, own = registry.lower(), registry.baseline(), registry.upper(), registry.own_recipe()
    lines = [f"Target-test accuracy of each method's reported model (its checkpoint picked by the "
             f"**{validators.PRIMARY}** validator; {n_seeds} seed{'s' if n_seeds != 1 else ''} per cell):", ""]
    contenders = [m for m in (dann, *improved) if m in summary]
    for p in _pairs_in(summary):
        k = pair_key(*p)
        scores = {m: summary[m][k]["mean"] for m in contenders if k in summary.get(m, {})}
        if not scores:
            continue
        winner = max(scores, key=scores.get)
        others = sorted((v, m) for m, v in scores.items() if m != winner)
        runner = others[-1] if others else None
        lo, up = summary.get(lower, {}).get(k, {}).get("mean"), summary.get(upper, {}).get(k, {}).get("mean")
        share = f", {(scores[winner] - lo) / (up - lo) * 100:.0f} % of the lower→upper gap" \
            if lo is not None and up is not None and up - lo > 1e-9 else ""
        vs = f"{scores[winner] - scores[dann]:+.2f} over DANN; " if dann in scores and winner != dann else ""
        lines.append(f"- **{pair_label(*p)}**: {row_label(winner)} is best with {scores[winner]:.2f} %"
                     + (f" ({vs}runner-up {row_label(runner[1])} {runner[0]:.2f} %)" if runner else "") + share + ".")
    best = best_method(summary, improved)
    if best and dann in summary:
        b, d = mean_over_pairs(summary, best), mean_over_pairs(summary, dann)
        lo, up = mean_over_pairs(summary, lower), mean_over_pairs(summary, upper)
        pairs = _pairs_in(summary)
        ahead = [p for p in pairs if pair_key(*p) in summary[best] and pair_key(*p) in summary[dann]
                 and summary[best][pair_key(*p)]["mean"] > summary[dann][pair_key(*p)]["mean"]]
        lines += ["", f"Best improved method over the pairs: **{row_label(best)}**, {b:.2f} % against DANN's "
                  f"{d:.2f} % ({b - d:+.2f} points), ahead of DANN on {len(ahead)} of {len(pairs)} pairs"
                  + (f"; it closes {(b - lo) / (up - lo) * 100:.1f} % of the lower→upper gap on the mean over pairs "
                     f"(DANN {(d - lo) / (up - lo) * 100:.1f} %)." if None not in (lo, up) and up - lo > 1e-9 else ".")]
        if own in summary and best != own:
            g = mean_over_pairs(summary, own)
            rank = 1 + sum(mean_over_pairs(summary, m) > g for m in improved if m != own)
            lines += ["", f"{row_label(own)}, the course report's method, averages {g:.2f} % ({g - d:+.2f} points "
                      f"against DANN, {g - b:+.2f} against {row_label(best)}): number {rank} of the {len(improved)} improved "
                      "methods here."]
        elif best == own:
            lines += ["", f"{row_label(own)}, the course report's method, is the best improved method here."]
    costs = [(c["acc@oracle"] - c[f"acc@{validators.PRIMARY}"], m, k) for m, cells in selection.items()
             for k, c in cells.items()]
    if costs:
        worst = max(costs)
        per = {m: float(np.mean([c["acc@oracle"] - c[f"acc@{validators.PRIMARY}"] for c in cells.values()]))
               for m, cells in selection.items()}
        others = {v: float(np.mean([c["acc@oracle"] - c[f"acc@{v}"] for cells in selection.values()
                                    for c in cells.values()])) for v in validators.VALIDATORS}
        lines += ["", "What choosing checkpoints without target labels costs (oracle − validator's pick, mean over "
                  "pairs): " + ", ".join(f"{row_label(m)} {v:.2f}" for m, v in per.items())
                  + f" points for the {validators.PRIMARY} validator; the largest single cost is {worst[0]:.2f} "
                  f"points ({row_label(worst[1])}, {pair_label(*worst[2].split('_', 1))}). Averaged over every method "
                  "and pair, the validators would have cost "
                  + ", ".join(f"{v} {c:.2f}" for v, c in others.items()) + " points."]
    return "\n".join(lines)


def method_configs(results: Mapping[tuple[str, str, str, int], Any]) -> dict[str, Any]:
    """``{method: config}``: the config of each method's first run (same recipe and knobs on every pair and seed)."""
    out: dict[str, Any] = {}
    for (m, *_), r in results.items():
        out.setdefault(m, r.config)
    return out


def _recipe(c) -> str:
    budget = f"{c.epochs:g} epochs over the larger training domain" if not c.steps else f"{c.steps} steps"
    warm = f" after {c.warmup_steps} warm-start steps on the source labels" if c.warmup_steps else ""
    opt = f"Adam lr {c.lr:g}" if c.optimizer == "adam" else f"SGD lr {c.lr:g} annealed"
    return f"{budget}{warm}, {c.batch_size} source + {c.batch_size} target images per step, {opt}"


def details_table(configs: Mapping[str, Any], n_seeds: int) -> pd.DataFrame:
    """How each method was trained in this run (``configs``: method → its runs' config, :func:`method_configs`):
    the recipes (methods sharing one are listed together, so the comparison's fairness shows), one row per method
    from its registry entry's description of its knobs, and the model selection."""
    ordered = [m for m in row_order(configs)]
    recipes: dict[str, list[str]] = {}
    for m in ordered:
        recipes.setdefault(_recipe(configs[m]), []).append(row_label(m))
    rows = {f"Recipe: {', '.join(labels)}": recipe for recipe, labels in recipes.items()}
    rows.update({row_label(m): registry.get(m).describe(configs[m].knobs) for m in ordered})
    evals = sorted({configs[m].evals for m in ordered if registry.get(m).adapts})
    rows["Model selection"] = (f"{'/'.join(map(str, evals))} checkpoints evenly spaced over each adapting run (the last "
                               "included) are scored, with their BatchNorm statistics re-estimated on 2000 unlabelled "
                               "target train images; the reported model is the best by the "
                               f"{validators.PRIMARY} validator (SND and source-validation accuracy shown beside it); "
                               "the bounds report their last step; target labels never choose")
    rows["Seeds"] = str(n_seeds)
    return pd.DataFrame({"value": rows}).rename_axis("setting")


def metrics_dict(summary: Mapping[str, Any], selection: Mapping[str, Any], configs: Mapping[str, Any], seeds: list[int],
                 selected_runs: Mapping[str, str], data: Mapping[str, Any] | None = None, *,
                 choices: Mapping[str, Any] | None = None, choices_source: str = "",
                 members: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every number Problem 4's tables show, under readable keys (``run_dir/metrics.json``); ``selected_runs``
    names, per pair, the hand-in's runs (the development protocol's choice, ``choices``: one run, or an ensemble's
    members, whose own target-test accuracies are ``members``) for ``hw3_p4.sh``."""
    import dataclasses

    cell = lambda c: {kk: c[kk] for kk in ("mean", "std", "n", "values", "seeds")}  # noqa: E731
    return {
        "problem": 4,
        "seeds": [int(s) for s in seeds],
        "config": {m: dataclasses.asdict(c) for m, c in configs.items()},
        "data": dict(data or {}),
        "primary_validator": validators.PRIMARY,
        "target_accuracy": {m: {k: cell(c) for k, c in cells.items()} for m, cells in summary.items()},
        "mean_over_pairs": {m: mean_over_pairs(summary, m) for m in summary},
        "gap_closed_percent": {m: gap_closed(summary, m) for m in summary
                               if m not in (registry.lower(), registry.upper())},
        "gap_closed_mean_percent": {m: gap_over_pairs(summary, m) for m in summary},
        "versus_dann_points": {m: versus_dann(summary, m) for m in summary},
        "selection": {m: {k: {**c, f"cost@{validators.PRIMARY}": round(c["acc@oracle"] - c[f"acc@{validators.PRIMARY}"], 2)}
                          for k, c in cells.items()} for m, cells in selection.items()},
        "selected_runs": dict(selected_runs),
        "handin": {k: {**(choices or {}).get("pairs", {}).get(k, {}).get("choice", {}),
                       "member_target_acc": (members or {}).get(k),
                       "target_acc": cell(summary[HANDIN][k]) if k in summary.get(HANDIN, {}) else None}
                   for k in (choices or {}).get("pairs", {})},
        "development": dict(choices or {}),
        "development_source": choices_source,
        "reference_course_report": {m: COURSE_REPORT[m] for m in COURSE_REPORT},
    }
