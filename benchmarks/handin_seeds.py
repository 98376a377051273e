"""Problem 4's hand-in over several seeds against DANN and each compared method (#38's check), from finished runs.

    python -m benchmarks.handin_seeds --root RUNS_ROOT --data DIR [--seeds 0 1 2] [--profile quick]

Loads (never trains: a missing run is an error naming it) Problem 3's DANN runs, the compared methods' runs and the
hand-in of each course pair as the recorded choices say (``report/choices/`` or ``RUNS_ROOT/p4_uda/choices.json``):
one run, or a mean-probability ensemble whose members' own accuracies are shown beside it. Target-test accuracy (%)
per pair and seed, the mean over pairs, and whether the hand-in is at least DANN's on every pair and seed. Written to
the ``handin-seeds`` section of ``benchmarks/RESULTS.md``.
"""
from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from unittest import mock

import numpy as np

from benchmarks import write_section

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", type=Path, default=ROOT / "runs" / "quick")
    ap.add_argument("--data", type=Path, default=ROOT / "data")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--section", default="handin-seeds", help="the RESULTS.md section to write")
    args = ap.parse_args(argv)

    from hw3lib.data.layout import UDA_PAIRS
    from hw3lib.project import recorded_choices
    from hw3lib.report.build import plan_report
    from hw3lib.report.develop import development_setup
    from hw3lib.train import folders
    from hw3lib.train.uda import develop, runs

    plan = plan_report(args.profile, "report", "cpu", only="p4")
    base, names, p = development_setup(plan, args.data)
    proto = develop.protocol(base, names, p["dev_seeds"], p["dev_holdout"], p["knobs"] or {}, p["dev_grid"],
                             p["dev_halving"])
    found = develop.recorded([*recorded_choices(), args.root / "p4_uda" / "choices.json"], args.data, proto)
    if found is None:
        raise SystemExit("handin_seeds: no recorded choices fit this data and protocol: run hw3 develop first")
    record = found[0]
    compared = develop.compared(names[1:], p["compare"], record)
    real = folders.train_or_load

    def only_load(kind, config, run_dir, *, train, load):  # a check reads finished runs; it never trains one
        if folders.finished_checkpoint(run_dir, kind, config) is None:
            raise SystemExit(f"handin_seeds: no finished run of this config in {run_dir}")
        return real(kind, config, run_dir, train=train, load=load)

    results = {}
    with mock.patch.object(folders, "train_or_load", only_load):
        for src, tgt in UDA_PAIRS:
            for m in ["dann", *compared]:
                root = args.root / ("p3_dann" if m == "dann" else "p4_uda")
                for s in args.seeds:
                    cfg = base.for_method(m, (p["knobs"] or {}).get(m), source=src, target=tgt, seed=s)
                    results[(m, src, tgt, s)] = runs.train_or_load(cfg, args.data, root / cfg.name)
        handin = develop.handin_runs(record, base, args.data, args.root / "p4_uda", seeds=args.seeds,
                                     knobs=p["knobs"] or {}, existing=results)
    rows = ["dann", *compared, "hand-in"]
    acc = {(m, src, tgt, s): float((handin[("hand-in", src, tgt, s)] if m == "hand-in" else results[(m, src, tgt, s)])
                                   .metrics["target_acc"]) for m in rows for src, tgt in UDA_PAIRS for s in args.seeds}
    pairs = [f"{s} → {t}" for s, t in UDA_PAIRS]
    lines = [f"Target-test accuracy (%), quick profile's recipe, seeds {args.seeds}, data `{args.data}` "
             f"({dt.date.today()}); the hand-in as `{found[1]}` chose it. Per pair: the seeds' values and their mean.",
             "", "| method | " + " | ".join(pairs) + " | mean over pairs (per seed) | mean |",
             "|---|" + "---|" * (len(pairs) + 2)]
    for m in rows:
        cells = [" / ".join(f"{acc[(m, s_, t_, s)]:.2f}" for s in args.seeds) +
                 f" (**{np.mean([acc[(m, s_, t_, s)] for s in args.seeds]):.2f}**)" for s_, t_ in UDA_PAIRS]
        per_seed = [np.mean([acc[(m, s_, t_, s)] for s_, t_ in UDA_PAIRS]) for s in args.seeds]
        label = "hand-in" if m == "hand-in" else m
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {' / '.join(f'{v:.2f}' for v in per_seed)} | "
                     f"**{np.mean(per_seed):.2f}** |")
    lines += ["", "The hand-in per pair, and its members' own accuracies (per seed):", ""]
    for src, tgt in UDA_PAIRS:
        ch = develop.choice(record, src, tgt)
        members = [handin[("hand-in", src, tgt, s)].metrics.get("member_acc") for s in args.seeds]
        detail = "; ".join(f"seed {s}: " + ", ".join(f"{a:.2f}" for a in ms) for s, ms in zip(args.seeds, members)
                           if ms)
        lines.append(f"- {src} → {tgt}: {ch.label}" + (f" — members alone: {detail}" if detail else ""))
    means = {m: np.mean([acc[(m, s_, t_, s)] for s_, t_ in UDA_PAIRS for s in args.seeds]) for m in rows}
    best = max(compared, key=lambda m: means[m])
    below = [(f"{s_} → {t_}", s) for s_, t_ in UDA_PAIRS for s in args.seeds
             if acc[("hand-in", s_, t_, s)] < acc[("dann", s_, t_, s)]]
    lines += ["", f"Hand-in mean {means['hand-in']:.2f} against the best single compared method ({best}) "
              f"{means[best]:.2f}: {means['hand-in'] - means[best]:+.2f} points; at least DANN's on every pair and "
              f"seed: {'yes' if not below else 'no, below on ' + ', '.join(f'{p} seed {s}' for p, s in below)}."]
    return write_section(ROOT / "benchmarks" / "RESULTS.md", args.section, "\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
