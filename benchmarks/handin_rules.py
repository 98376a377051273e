"""Hand-in rules compared on the development tasks alone (#38; the rules and the decision, written before this ran:
docs/NOTES.md, "The hand-in rule, chosen again on development tasks only").

    python -m benchmarks.handin_rules --runs runs/quick/p4_uda --data data --record report/choices/FILE.json

A rule turns one development task's record entry (its candidates' scores, as the protocol saw them, halving
included) into members; the hand-in is their mean-probability ensemble. The failure a rule must avoid is a ranking
learnt on S → X that does not hold on S → T, and the development tasks show it without any course pair: choose on
task A, then score the choice on another task B with the chosen candidates' own runs on B (each at its validator's
checkpoint, on B's held-out split; an ensemble per development seed, then the mean over the seeds). Needs every
candidate finished on every task (the exhaustive runs ``benchmarks/halving_sim.py`` reads). No test split and no
course pair's run is read. Written to the ``handin-rules`` section of ``benchmarks/RESULTS.md``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
from pathlib import Path

import numpy as np
import torch

from benchmarks import write_section

ROOT = Path(__file__).resolve().parents[1]


def _method_best(entry):
    """Each method's best candidate, best first (a method's score: its best candidate's; ties: the earlier)."""
    from hw3lib.train.uda.develop import Candidate

    order = sorted(range(len(entry["scores"])), key=lambda i: (-float(entry["scores"][i]["accuracy"]), i))
    out = {}
    for i in order:
        out.setdefault(entry["scores"][i]["method"], Candidate.from_dict(entry["scores"][i]))
    return list(out.values())


def rule_members(name: str, entry) -> tuple:
    """The members rule ``name`` hands in from a task's record entry (docs/NOTES.md lists the rules)."""
    from hw3lib.train.uda.develop import Candidate, Choice

    if name == "single":
        i = max(range(len(entry["scores"])), key=lambda i: (float(entry["scores"][i]["accuracy"]), -i))
        return (Candidate.from_dict(entry["scores"][i]),)
    if name == "v2":  # a version-2 record's own choice: the best of singles and ensembles of the 2-3 best
        return Choice.from_dict(entry["v2_choice"]).members
    kind, _, k = name.partition("-")
    if kind == "methods":
        return tuple(_method_best(entry)[:int(k)])
    if kind == "paper":
        return tuple(Candidate(c.method) for c in _method_best(entry)[:int(k)])
    if name == "all":
        return tuple(dict.fromkeys(Candidate(s["method"]) for s in entry["scores"]))
    raise KeyError(name)


RULES = ("single", "v2", "methods-2", "methods-3", "methods-4", "paper-2", "paper-3", "paper-4", "all")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "quick" / "p4_uda")
    ap.add_argument("--data", type=Path, default=ROOT / "data")
    ap.add_argument("--record", type=Path, required=True,
                    help="the development record whose scores the rules read (a version-2 record also gives v2)")
    ap.add_argument("--profile", default="quick")
    args = ap.parse_args(argv)

    from hw3lib.data import digits
    from hw3lib.data.layout import UDA_PAIRS
    from hw3lib.report.build import plan_report
    from hw3lib.report.develop import development_setup
    from hw3lib.train import folders
    from hw3lib.train.uda import develop, runs

    plan = plan_report(args.profile, "report", "cpu", only="p4")
    base, names, p = development_setup(plan, args.data)
    record = json.loads(args.record.read_text())
    rules = [r for r in RULES if r != "v2" or record.get("version") == 2]
    for entry in record["pairs"].values():
        entry["v2_choice"] = entry["choice"]
        assert record.get("version") == 2 or list(develop.handin(entry["scores"]).members) == \
            list(rule_members(f"methods-{develop.HANDIN_METHODS}", entry))  # the benchmark's rule is the code's
    cands, seeds = develop.candidates(names, p["dev_grid"]), [int(s) for s in p["dev_seeds"]]
    tasks = {f"{s}_{t}": "_".join(develop.development_task(s, t)) for s, t in UDA_PAIRS}
    probs, labels = {}, {}
    torch.set_num_threads(1)
    for key, task_name in tasks.items():
        s, x = task_name.split("_")
        t = develop.task(base, args.runs, s, x, cands=cands, seeds=seeds, holdout=p["dev_holdout"],
                         knobs=p["knobs"] or {}, n_source=len(digits(args.data, s, "train")),
                         n_x=len(digits(args.data, x, "train")), halve=False)
        for c in cands:
            for i, (cfg, f) in enumerate(zip(t.configs[c], t.folders[c])):
                bound = runs.configs.bind_data(cfg.validate(), args.data, (s, x))
                if folders.finished_checkpoint(folders.config_folder(f, cfg.kind, bound, say=False), cfg.kind,
                                               bound) is None:
                    raise SystemExit(f"handin_rules: no finished run of {c.label} (seed {seeds[i]}) in {f}")
                held = runs.target_sets(bound, args.data)[1]
                probs[(task_name, c, i)] = runs.mean_probabilities(
                    [runs.selected_classifier(cfg, args.data, f)], held.images)
                labels[task_name] = held.labels.cpu()
    combos = list(itertools.permutations(tasks, 2))
    acc = {}
    for name in rules:
        for a, b in combos:
            members, tb = rule_members(name, record["pairs"][a]), tasks[b]
            acc[(name, a, b)] = float(np.mean([
                float((torch.stack([probs[(tb, m, i)] for m in members]).mean(0).argmax(1) == labels[tb])
                      .double().mean()) * 100 for i in range(len(seeds))]))
    head = [f"{tasks[a].replace('_', ' → ')} ⇒ {tasks[b].replace('_', ' → ')}" for a, b in combos]
    lines = [f"Development tasks only ({dt.date.today()}, profile {args.profile}, data `{args.data}`, runs "
             f"`{args.runs}`, scores read from `{args.record}`): each rule chooses on task A (its record entry) and is "
             f"scored on task B (A ⇒ B) with the chosen candidates' own runs on B, held-out accuracy (%), mean-"
             f"probability ensemble, mean over development seeds {seeds}.", "",
             "| rule | " + " | ".join(head) + " | mean | worst |", "|---|" + "---|" * (len(head) + 2)]
    means = {}
    for name in rules:
        v = [acc[(name, a, b)] for a, b in combos]
        means[name] = float(np.mean(v))
        lines.append(f"| {name} | " + " | ".join(f"{x:.2f}" for x in v) + f" | **{means[name]:.2f}** | {min(v):.2f} |")
    oracle = {tb: max(float(np.mean([float((probs[(tb, c, i)].argmax(1) == labels[tb]).double().mean()) * 100
                                     for i in range(len(seeds))])) for c in cands) for tb in tasks.values()}
    lines += ["", "Best single candidate on each task (its own labels: an oracle no rule has): " +
              ", ".join(f"{tb.replace('_', ' → ')} {v:.2f}" for tb, v in oracle.items()) + "."]
    best = max(means, key=means.get)
    lines.append(f"Highest mean: **{best}** ({means[best]:.2f}" +
                 (f", {means[best] - means['v2']:+.2f} against v2)." if "v2" in means else ")."))
    return write_section(ROOT / "benchmarks" / "RESULTS.md", "handin-rules", "\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
