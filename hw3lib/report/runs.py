"""``hw3 runs train``: the runs of a profile's plan trained before the report, by the local pool
(:mod:`hw3lib.report.pool`) or as Slurm jobs (:mod:`hw3lib.report.slurm`).

    hw3 runs train --profile quick [--data DIR] [--jobs N] [--threads T]
    hw3 runs train --profile full --data DIR --launcher slurm --partition gpu --time 240 --gpus 1
"""
from __future__ import annotations

import sys

from hw3lib import settings
from hw3lib.report import build
from hw3lib.report.pool import train_in_stages, train_planned


def profile_runs(profile, data=None, device: str = "auto", overrides=(), only=None):
    """``(runs, data folder, device)`` of a profile: the plan ``hw3 report`` would train (its data made when
    the profile has embedded data and none is there yet)."""
    plan = build.plan_report(profile, "report", device, overrides, only)
    found = build.resolve_data(plan.profile, data, plan.figures)
    return build.planned(plan, found.dir, found.sizes), found.dir, plan.device


def _cli_train(args) -> int:
    overrides = [tuple(p) for p in (args.param or [])]
    slurm = args.launcher == "slurm"
    # Slurm jobs run on the cluster's nodes: their device is chosen for them, not for this (login) machine.
    device = ("cuda" if args.gpus else "cpu") if slurm and args.device == "auto" else args.device
    _, data_dir, dev = profile_runs(args.profile, args.data, "cpu" if slurm else device, overrides, args.only)
    progress = settings.PROGRESS.value

    def plan():  # planned anew after each stage: the development protocol's rungs (hw3lib.report.pool)
        return profile_runs(args.profile, args.data, "cpu" if slurm else device, overrides, args.only)[0]

    try:
        if slurm:
            from hw3lib.report.slurm import SlurmOptions, train_on_slurm  # submitit: an optional extra

            opts = SlurmOptions(partition=args.partition, time_min=args.time, gpus=args.gpus,
                                threads=args.threads or 1, extra=dict(args.slurm or []))
            result = train_in_stages(plan, lambda runs: train_on_slurm(runs, data_dir, device, opts,
                                                                       progress=progress))
        else:
            result = train_in_stages(plan, lambda runs: train_planned(runs, data_dir, dev, jobs=args.jobs,
                                                                      threads=args.threads, progress=progress))
    except KeyboardInterrupt:
        print("hw3 runs: interrupted; every run in progress saved a checkpoint: the same command resumes",
              file=sys.stderr)
        return 130
    if not result.outcomes:
        print(f"hw3 runs: all {result.already} runs finished", file=sys.stderr)
    return result.exit_code


def register(groups) -> None:
    runs = groups["root"].add_parser("runs", help="train a profile's runs in parallel (before the report)",
                                     description="Train the runs a profile's report uses.")
    sub = runs.add_subparsers(dest="runs_command", metavar="WHAT")
    sub.required = True
    desc = ("Train every run of a profile's plan (`hw3 report --plan` lists them) that is not finished, in a "
            "pool of worker processes (default: one thread per run, one worker per core; on CUDA as many runs "
            "as the GPU's memory holds), or as Slurm jobs with --launcher slurm. Ctrl-C checkpoints every run "
            "in progress; the same command resumes. `hw3 report` then loads the finished runs.")
    p = sub.add_parser("train", help="train the profile's unfinished runs in parallel", description=desc)
    p.add_argument("--profile", default="quick", metavar="NAME|PATH.yaml", help="smoke, quick (default), full, "
                                                                                "or a profile YAML")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="data folder (default: the profile's data_dir, made with the embedded generator if absent)")
    p.add_argument("--device", default="auto", help="auto (default: cuda if available), cpu, cuda, cuda:N")
    p.add_argument("-p", "--param", nargs=2, action="append", metavar=("KEY", "VALUE"),
                   help="notebook parameter override, as for hw3 report (repeatable)")
    p.add_argument("--only", default=None, metavar="p1,p3", help="only these problems' runs")
    p.add_argument("--jobs", type=int, default=None, metavar="N", help="worker processes (default: from the "
                                                                       "cores and the device)")
    p.add_argument("--threads", type=int, default=None, metavar="T",
                   help="threads per run (default 1 on the CPU; a run's numbers depend on it)")
    p.add_argument("--launcher", choices=("local", "slurm"), default="local",
                   help="local: a pool on this machine (default); slurm: one Slurm job per run through submitit "
                        "(pip install hw3lib[cluster])")
    g = p.add_argument_group("slurm (with --launcher slurm)")
    g.add_argument("--partition", default=None, help="Slurm partition")
    g.add_argument("--time", type=int, default=240, metavar="MIN", help="time limit per job in minutes "
                                                                         "(default 240; a job that reaches it "
                                                                         "checkpoints and is requeued)")
    g.add_argument("--gpus", type=int, default=0, metavar="G", help="GPUs per job (default 0)")
    g.add_argument("--slurm", nargs=2, action="append", metavar=("KEY", "VALUE"),
                   help="any other sbatch option, e.g. --slurm account myproject --slurm mem 16G (repeatable)")
    p.set_defaults(func=_cli_train)
