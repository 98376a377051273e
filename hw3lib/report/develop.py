"""``hw3 develop``: Problem 4's development protocol on its own (:mod:`hw3lib.train.uda.develop`).

    hw3 develop --profile quick [--data DIR] [--fresh]

Trains (or loads) every candidate on every course pair's development task with the profile's Problem 4 recipe and
writes the choices to ``RUNS/p4_uda/choices.json``, which Problem 4, ``hw3_p4.sh`` and ``hw3 train uda --choices``
read. Without ``--fresh``, choices recorded on the same data with the same protocol are reused.
"""
from __future__ import annotations

from pathlib import Path

from hw3lib.report.build import notebook_parameters, plan_report, resolve_data


def development_params(plan, data_root: Path):
    """Problem 4's parameters (:class:`hw3lib.problems.p4_uda.Params`) as ``hw3 report`` passes them to its notebook
    (profile → ``-p`` overrides → the builder's paths), on the plan's device."""
    from hw3lib.problems import p4_uda

    values = notebook_parameters(plan, data_root)[p4_uda.KEY]
    return p4_uda.Params.of({**values, "device": str(plan.device)})


def development_setup(plan, data_root: Path):
    """``(base, names, p)`` for the plan's Problem 4, from its module: the shared recipe, the candidate methods (the
    baseline first) and its parameters as a dict (``p["dev_seeds"]``, ``p["knobs"]``...; the benchmarks read it)."""
    import dataclasses

    from hw3lib.problems import p4_uda

    p = development_params(plan, data_root)
    return p4_uda.base_config(p), p4_uda.candidates(p), dataclasses.asdict(p)


def run_develop(profile: str, data: str | None = None, overrides=(), device: str = "auto", *,
                fresh: bool = False) -> tuple[dict, str, Path]:
    """The choices for the profile's Problem 4 (developed here, or recorded), where they came from, and the file:
    :func:`hw3lib.problems.p4_uda.choose`, which the notebook calls too."""
    from hw3lib.problems import p4_uda
    from hw3lib.project import recorded_choices

    plan = plan_report(profile, "report", device, overrides, only=p4_uda.PROBLEM.short)
    root = resolve_data(plan.profile, data, plan.figures).dir
    p = development_params(plan, root)
    record, where = p4_uda.choose(p, () if fresh else recorded_choices())
    return record, where, Path(p.run_dir) / "choices.json"


def format_choices(record: dict) -> str:
    """One block per pair: the development task(s), every candidate's and ensemble's accuracy (with more than one
    task, the mean over them), the choice."""
    lines = []
    for key, entry in record["pairs"].items():
        src, tgt = key.split("_", 1)
        tasks = [" → ".join(t.split("_", 1)) for t in entry.get("development_tasks") or [entry["development_task"]]]
        lines.append(f"{src} → {tgt}: development task {tasks[0]}" if len(tasks) == 1 else
                     f"{src} → {tgt}: development tasks {', '.join(tasks)} (mean accuracy over them)")
        for sc in [*entry["scores"], *entry.get("ensembles", [])]:
            mark = "  ← chosen" if sc["label"] == entry["choice"]["label"] else ""
            at = sc.get("stopped_at")  # a step, or with several tasks {task: step}
            stop = "" if not at else f"  (stopped at step {at})" if not isinstance(at, dict) else \
                f"  (stopped on {', '.join(f'{t} at step {n}' for t, n in at.items())})"
            lines.append(f"  {sc['label']:<60} {sc['accuracy']:6.2f} %{stop}{mark}")
    return "\n".join(lines)


def _cli(args) -> int:
    record, where, file = run_develop(args.profile, args.data, [tuple(p) for p in (args.param or [])], args.device,
                                      fresh=args.fresh)
    print(format_choices(record))
    print(f"choices {where}; written to {file}")
    return 0


def register(groups) -> None:
    p = groups["root"].add_parser(
        "develop", help="choose Problem 4's hand-in (an ensemble of the best methods) on development tasks",
        description="For each course pair S → T, train every candidate (DANN and the methods on the shared recipe, "
                    "each knob of its grid) on the development task S → X, X the third domain, with successive "
                    "halving at its scored checkpoints (with more than three digit domains: on every such X, "
                    "averaged); score it on held-out labelled train images of X; hand in the mean-probability "
                    "ensemble of the 4 best methods (each at its best knobs), written per pair to "
                    "RUNS/p4_uda/choices.json. No label of T is read.")
    p.add_argument("--profile", default="quick", metavar="NAME|PATH.yaml", help="smoke, quick (default), full or a YAML")
    p.add_argument("--data", default=None, metavar="DIR", help="data folder (default: the profile's data_dir)")
    p.add_argument("-p", "--param", nargs=2, action="append", metavar=("KEY", "VALUE"),
                   help="a Problem 4 notebook parameter override (as hw3 report -p)")
    p.add_argument("--device", default="auto")
    p.add_argument("--fresh", action="store_true", help="develop here even if choices were recorded for this data")
    p.set_defaults(func=_cli)
