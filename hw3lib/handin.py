"""``hw3 handin p1|p2|p3|p4 ...``: the course's scripts (``hw3_p1.sh`` ... at the repository root) on the report's runs.

    hw3 handin p1 OUT.png                      # 32 VAE faces       (hw3 generate vae)
    hw3 handin p2 OUT.png                      # 32 DCGAN faces     (hw3 generate gan)
    hw3 handin p3 IMAGES_DIR TARGET OUT.csv    # Problem 3's DANN run for TARGET      (hw3 predict)
    hw3 handin p4 IMAGES_DIR TARGET OUT.csv    # Problem 4's selected run for TARGET  (hw3 predict)

The runs come from ``--runs DIR``, else ``$HW3_RUNS`` (e.g. ``runs/full``), else ``runs/quick`` — the folders
``make report`` fills (relative paths: to the project root, ``hw3lib.project.project_root``). For Problem 4,
``RUNS/p4_uda/metrics.json`` may name the run per pair (written by the P4 notebook)::

    {"selected_runs": {"usps_mnistm": "gta_usps_mnistm_s0", "mnistm_svhn": "/abs/path/run", ...}}

(a folder name under ``p4_uda`` or an absolute path); without it, ``hw3 predict``'s search under ``p4_uda`` picks
the run. No trained run: one error line naming the folder and the command that trains it.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from hw3lib import checkpoint, settings

DEFAULT_RUNS = settings.RUNS.default


def _problem(short: str):
    """The registered problem ``short`` (``p1``...) and its hand-in (:class:`hw3lib.problems.Handin`)."""
    from hw3lib import problems

    problem = problems.get(short)
    if problem.handin is None:
        raise ValueError(f"problem {problem.key} has no hand-in")
    return problem, problem.handin


def runs_root(runs: str | Path | None = None) -> Path:
    """``runs``, else ``$HW3_RUNS``, else ``runs/quick``; relative paths against the project root."""
    from hw3lib.project import project_root

    path = Path(runs).expanduser() if runs else settings.RUNS.value
    return path if path.is_absolute() else project_root() / path


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def train_hint(problem: str, root: Path) -> str:
    """The command that trains ``problem``'s runs into ``root`` (a profile's ``runs_root``)."""
    only = f"--only {problem}"
    if root.name == "quick":
        return f"run 'make report' or 'hw3 report {only}'"
    if root.name in ("smoke", "full"):
        return f"run 'hw3 report --profile {root.name} {only}'" + (" with --data DIR" if root.name == "full" else "")
    return f"run 'hw3 report --profile YOURS.yaml {only}' with runs_root: {root}"


def _missing(problem: str, folder: Path, root: Path, what: str = "") -> ValueError:
    name = _problem(problem)[1].what
    return ValueError(f"no trained {name}{what} in {_shown(folder)}: {train_hint(problem, root)}")


def _finished(file: Path, problem: str, folder: Path, root: Path, what: str = "") -> Path:
    """``file`` if it is a finished checkpoint (of an accepted kind), else the one-line 'no trained run' error."""
    if not file.is_file():
        raise _missing(problem, folder, root, what)
    payload = checkpoint.load(file)
    handin = _problem(problem)[1]
    if handin.kinds is not None and payload.get("kind") not in handin.kinds:
        raise ValueError(f"{_shown(file)} is a {payload.get('kind')!r} run, not a {handin.what} run")
    if not payload.get("finished"):
        raise ValueError(f"the {handin.what} run in {_shown(file.parent)} is unfinished (step "
                         f"{payload.get('step')}/{payload.get('total_steps')}): {train_hint(problem, root)} "
                         f"to finish it")
    return file


def selected_run(p4_dir: Path, source: str, target: str) -> list[Path] | None:
    """The checkpoints ``p4_dir/metrics.json`` selects for ``source_target`` — one run, or an ensemble's members —
    (None when it names none)."""
    metrics = p4_dir / "metrics.json"
    if not metrics.is_file():
        return None
    try:
        selected = json.loads(metrics.read_text()).get("selected_runs")
    except (ValueError, AttributeError):
        raise ValueError(f"{_shown(metrics)}: not a JSON object") from None
    if selected is None:
        return None
    key = f"{source}_{target}"
    value = selected.get(key, "") if isinstance(selected, dict) else None
    runs = [value] if isinstance(value, str) else value
    if not isinstance(runs, list) or not all(isinstance(r, str) for r in runs):
        raise ValueError(f"{_shown(metrics)}: selected_runs must map 'source_target' to a run folder or a list of "
                         f"them")
    runs = [r for r in runs if r]
    if not runs:
        return None
    return [checkpoint.resolve(Path(r) if Path(r).is_absolute() else p4_dir / r) for r in runs]


def find_checkpoints(problem: str, target: str | None = None, runs: str | Path | None = None) -> list[Path]:
    """The finished checkpoints the course script of ``problem`` uses — one, or Problem 4's ensemble members
    (``ValueError``: one line, what to run)."""
    from hw3lib.data.layout import UDA_PAIRS
    from hw3lib.predict import find_run

    entry, handin = _problem(problem)
    root = runs_root(runs)
    folder = root / entry.key
    if handin.output == "faces":
        return [_finished(checkpoint.resolve(folder), problem, folder, root)]
    source = next(s for s, t in UDA_PAIRS if t == target)
    what = f" for {source} → {target}"
    if handin.selected and (chosen := selected_run(folder, source, target)) is not None:
        for file in chosen:
            if not file.is_file():
                raise ValueError(f"{_shown(folder / 'metrics.json')}: selected_runs['{source}_{target}'] names "
                                 f"{_shown(file.parent)}, which holds no {checkpoint.CKPT_NAME}")
        return [_finished(file, problem, folder, root, what) for file in chosen]
    if not folder.is_dir():
        raise _missing(problem, folder, root, what)
    try:
        file = find_run(folder, target, handin.method)
    except ValueError:
        raise _missing(problem, folder, root, what) from None
    return [_finished(file, problem, folder, root, what)]


def find_checkpoint(problem: str, target: str | None = None, runs: str | Path | None = None) -> Path:
    """The one finished checkpoint of :func:`find_checkpoints` (the first member of an ensemble)."""
    return find_checkpoints(problem, target, runs)[0]


def _cli(args) -> int:
    from hw3lib.cli import main

    files = find_checkpoints(args.problem, getattr(args, "target", None), args.runs)
    shown = ", ".join(_shown(f.parent) for f in files)
    print(f"hw3 handin {args.problem}: using {shown}" + (f" (a mean-probability ensemble of {len(files)})"
                                                        if len(files) > 1 else ""), file=sys.stderr)
    handin = _problem(args.problem)[1]
    if handin.output == "faces":
        return main(["generate", handin.command, "--ckpt", str(files[0]), "--out", args.out, "--seed",
                     str(args.seed), "--device", args.device])
    return main(["predict", "--ckpt", *map(str, files), "--images", args.images, "--target", args.target,
                 "--out", args.out, "--device", args.device])


def register(groups) -> None:
    from hw3lib import problems
    from hw3lib.data.layout import DIGIT_DOMAINS

    desc = ("The course's hw3_p1.sh ... hw3_p4.sh: generate or predict with the report's runs (--runs, else "
            "$HW3_RUNS, else runs/quick).")
    h = groups["root"].add_parser("handin", help="the course scripts' jobs on the report's runs", description=desc)
    sub = h.add_subparsers(dest="problem", metavar="PROBLEM", parser_class=type(h))
    sub.required = True
    for problem in problems.ordered():  # one sub-command per registered problem with a hand-in
        if problem.handin is None:
            continue
        p = sub.add_parser(problem.short, help=problem.handin.help, description=problem.handin.help)
        if problem.handin.output == "faces":
            p.add_argument("out", metavar="OUT.png")
            p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
        else:
            p.add_argument("images", metavar="IMAGES_DIR")
            p.add_argument("target", metavar="TARGET", choices=DIGIT_DOMAINS, help=", ".join(DIGIT_DOMAINS))
            p.add_argument("out", metavar="OUT.csv")
    for p in sub.choices.values():
        p.add_argument("--runs", default=None, metavar="DIR",
                       help=f"folder holding p1_vae/ ... p4_uda/ (default: $HW3_RUNS, else {DEFAULT_RUNS})")
        p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
        p.set_defaults(func=_cli)
