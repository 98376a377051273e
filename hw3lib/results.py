"""``hw3 results [RUNS_ROOT]``: one line per finished run, read from the run folders' checkpoints.

    problem  method  pair           seed  metric              steps    threads  wall        run
    p3_dann  dann    usps → mnistm  0     target acc 71.20 %  300/300  1        1 min 02 s  p3_dann/dann_usps_mnistm_s0

Every ``checkpoint.pt`` below RUNS_ROOT (default ``$HW3_RUNS``, else ``runs/quick`` of the project) is read with
:func:`hw3lib.checkpoint.load`; missing fields show as ``—``. :func:`read_run` is also what ``hw3 report``'s
progress line uses to count finished runs.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from hw3lib import checkpoint, settings

_PROBLEM = re.compile(r"^p\d+_\w+$")
# History series shown when a run stores no target accuracy, first present wins (the last value).
HISTORY_METRICS = ("test_mse", "mse", "loss_G", "loss")


@dataclass
class RunRecord:
    path: Path                  # the checkpoint file
    problem: str                # p3_dann, from the nearest pN_xxx folder above the checkpoint ("—" if none)
    method: str                 # config["method"], else the checkpoint's kind
    pair: str                   # "usps → mnistm" or "—"
    seed: str
    metric: str                 # "target acc 71.20 %", "test_mse 0.0123", or "—"
    step: int | None
    total_steps: int | None
    finished: bool
    wall_s: float | None        # extra["wall_s"]
    threads: str = "—"          # extra["threads"]: intra-op threads it trained with ("2,1": resumed at another count)


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _metric(extra: dict, history: dict) -> str:
    metrics = extra.get("metrics") if isinstance(extra.get("metrics"), dict) else {}
    try:
        if metrics.get("target_acc") is not None:
            return f"target acc {float(metrics['target_acc']):.2f} %"
        for key in HISTORY_METRICS:
            values = history.get(key)
            if values:
                return f"{key} {float(values[-1]):.4g}"
    except (TypeError, ValueError):
        pass
    return "—"


def read_run(file: str | Path) -> RunRecord:
    """Summary of one checkpoint (``ValueError`` if it is not a readable hw3lib checkpoint)."""
    file = checkpoint.resolve(file)
    payload = checkpoint.load(file)
    config = payload.get("config") if isinstance(payload.get("config"), dict) else {}
    extra = payload.get("extra") if isinstance(payload.get("extra"), dict) else {}
    history = payload.get("history") if isinstance(payload.get("history"), dict) else {}
    problem = next((p for p in reversed(file.parent.parts) if _PROBLEM.match(p)), "—")
    src, tgt = config.get("source"), config.get("target")
    wall = extra.get("wall_s")
    threads = extra.get("threads")
    return RunRecord(
        path=file, problem=problem, method=str(config.get("method") or payload.get("kind") or "—"),
        pair=f"{src} → {tgt}" if src and tgt else "—",
        seed=str(config["seed"]) if config.get("seed") is not None else "—",
        metric=_metric(extra, history), step=_int(payload.get("step")), total_steps=_int(payload.get("total_steps")),
        finished=bool(payload.get("finished")), wall_s=float(wall) if isinstance(wall, (int, float)) else None,
        threads=",".join(map(str, threads)) if isinstance(threads, list) else str(threads or "—"))


def checkpoints(root: str | Path) -> list[Path]:
    """Every ``checkpoint.pt`` at or below ``root``, sorted."""
    root = Path(root)
    return sorted(root.rglob(checkpoint.CKPT_NAME)) if root.is_dir() else []


def fmt_seconds(s: float | None) -> str:
    """``"2 h 05 min"``, ``"1 min 02 s"``, ``"42 s"``, or ``"—"``."""
    if s is None:
        return "—"
    s = int(round(s))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"


def default_root() -> Path:
    """``$HW3_RUNS`` (relative: to the project root), else the project's ``runs/quick`` (:data:`settings.RUNS`)."""
    from hw3lib.project import project_root

    return project_root() / settings.RUNS.value


def table(records: list[RunRecord], root: Path) -> list[str]:
    """Aligned lines: a header, then one per record."""
    head = ("problem", "method", "pair", "seed", "metric", "steps", "threads", "wall", "run")
    rows = [head]
    for r in records:
        try:
            where = str(r.path.parent.relative_to(root)) if r.path.parent != root else "."
        except ValueError:
            where = str(r.path.parent)
        steps = f"{'?' if r.step is None else r.step}/{'?' if r.total_steps is None else r.total_steps}"
        rows.append((r.problem, r.method, r.pair, r.seed, r.metric, steps, r.threads, fmt_seconds(r.wall_s), where))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head) - 1)]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1] for row in rows]


def _cli_results(args) -> int:
    root = Path(args.root) if args.root else default_root()
    if not root.is_dir():
        raise ValueError(f"no run folder {root}: run 'make report' or 'hw3 report' first (or pass RUNS_ROOT)")
    records, unfinished, unreadable = [], 0, []
    for file in checkpoints(root):
        try:
            rec = read_run(file)
        except ValueError as exc:
            unreadable.append(f"{file}: {exc}")
            continue
        if rec.finished:
            records.append(rec)
        else:
            unfinished += 1
    if records:
        print("\n".join(table(records, root)))
    else:
        print(f"no finished runs under {root}")
    notes = [f"{unfinished} unfinished run(s) not listed"] if unfinished else []
    notes += [f"{len(unreadable)} unreadable checkpoint(s), e.g. {unreadable[0]}"] if unreadable else []
    if notes:
        print("(" + "; ".join(notes) + ")", file=sys.stderr)
    return 0


def register(groups) -> None:
    p = groups["root"].add_parser("results", help="list finished runs: problem, method, pair, seed, metric, time",
                                  description="One line per finished run below RUNS_ROOT, read from its "
                                              "checkpoint.pt (problem, method, pair, seed, metric, steps, "
                                              "threads it trained with, wall time, folder).")
    p.add_argument("root", nargs="?", default=None, metavar="RUNS_ROOT",
                   help="folder of run folders (default: $HW3_RUNS, else runs/quick of the project)")
    p.set_defaults(func=_cli_results)
