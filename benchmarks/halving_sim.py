"""Successive halving simulated on exhaustive development runs (#38 item 2; the rules, written before any run was
read: docs/NOTES.md, "Ensembles and successive halving in the development protocol").

    python -m benchmarks.halving_sim --runs runs/quick/p4_uda --data data [--profile quick]

Needs every candidate of the profile's development protocol finished on every task (an exhaustive protocol: the
runs ``hw3 runs train`` trains where no recorded choice fits, e.g. with the shipped choices removed). A paused run
ends bit-identical to one trained in one go (``tests/test_develop.py``), so the development protocol run with
halving on these finished runs makes exactly the choices halving would have made: each rule's candidates stop at
their rung (their score there read from the run's history), the survivors' final scores and ensembles are the
runs' own. Prints per task the exhaustive choice (ensembles over every candidate) and each rule's, with their
development scores, the candidate-steps each rule trains, and whether the adoption rule holds (same choice, or
within 0.5 development points). Written to the ``halving-sim`` section of ``benchmarks/RESULTS.md``.
"""
from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from unittest import mock

from benchmarks import write_section

ROOT = Path(__file__).resolve().parents[1]
RULES = {"A": ((1, 3 / 8), (2, 3 / 16)), "B": ((1, 1 / 2), (2, 1 / 4))}   # docs/NOTES.md, written before the runs
TOLERANCE = 0.5   # development points (the adoption rule)


def _steps_share(rule, n: int, rungs: list[int], total: int) -> float:
    """Candidate-steps a rule trains, as a share of every candidate to the end."""
    from hw3lib.train.uda import develop

    with mock.patch.object(develop, "RUNGS", rule):
        kept = [n] + [develop.kept(n, share) for _, share in rule]
    edges = [0, *rungs, total]
    return sum(k * (b - a) for k, a, b in zip(kept, edges, edges[1:])) / (n * total)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "quick" / "p4_uda")
    ap.add_argument("--data", type=Path, default=ROOT / "data")
    ap.add_argument("--profile", default="quick")
    args = ap.parse_args(argv)

    from hw3lib.data.layout import UDA_PAIRS
    from hw3lib.report.build import plan_report
    from hw3lib.report.develop import development_setup
    from hw3lib.train.uda import develop

    plan = plan_report(args.profile, "report", "cpu", only="p4")
    base, names, p = development_setup(plan, args.data)
    kw = dict(names=names, pairs=UDA_PAIRS, seeds=p["dev_seeds"], holdout=p["dev_holdout"], knobs=p["knobs"] or {},
              grid=p["dev_grid"])
    records = {"exhaustive": develop.develop(base, args.data, args.runs, halve=False, **kw)}
    for name, rule in RULES.items():
        with mock.patch.object(develop, "RUNGS", rule):
            records[name] = develop.develop(base, args.data, args.runs, halve=True, **kw)
    n = len(develop.candidates(names, p["dev_grid"]))
    lines = [f"Simulated on the exhaustive development runs in `{args.runs}` ({dt.date.today()}, profile "
             f"{args.profile}, {n} candidates × {len(p['dev_seeds'])} development seeds per task; ensembles of "
             f"{', '.join(map(str, develop.ENSEMBLE_SIZES))}). Development accuracy (%) on the held-out split.", "",
             "| task (course pair) | exhaustive choice | " + " | ".join(f"rule {r}: choice" for r in RULES) + " |",
             "|---|---|" + "---|" * len(RULES)]
    ok = {r: True for r in RULES}
    for key, entry in records["exhaustive"]["pairs"].items():
        ex = entry["choice"]
        cells = []
        for r in RULES:
            ch = records[r]["pairs"][key]["choice"]
            same = ch["label"] == ex["label"]
            holds = same or abs(ch["accuracy"] - ex["accuracy"]) <= TOLERANCE
            ok[r] &= holds
            cells.append(f"{ch['label']} {ch['accuracy']:.2f}" + (" (same)" if same else
                                                                  f" ({ch['accuracy'] - ex['accuracy']:+.2f})"))
        lines.append(f"| {entry['development_task'].replace('_', ' → ')} ({key.replace('_', ' → ')}) | "
                     f"{ex['label']} {ex['accuracy']:.2f} | " + " | ".join(cells) + " |")
    rungs = records["A"]["pairs"][next(iter(records["A"]["pairs"]))]["rung_steps"]
    total = base.total_steps(1, 1)
    lines += ["", "| rule | candidate-steps (share of exhaustive) | adoption rule (same choice or within "
              f"{TOLERANCE} points on every task) |", "|---|---|---|"]
    for r, rule in RULES.items():
        lines.append(f"| {r} {[(i, round(s, 4)) for i, s in rule]} | {_steps_share(rule, n, rungs, total):.2%} | "
                     f"{'holds' if ok[r] else 'fails'} |")
    adopted = next((r for r in RULES if ok[r]), None)
    lines += ["", f"Adopted: rule {adopted} (the cheapest that holds)." if adopted else
              "Adopted: none (every rule changed a choice by more than the tolerance): the protocol stays exhaustive."]
    return write_section(ROOT / "benchmarks" / "RESULTS.md", "halving-sim", "\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
