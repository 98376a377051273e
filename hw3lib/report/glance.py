"""The report's first page: each problem's results at a glance, read from the ``metrics.json`` its notebook wrote
and put in words by its module (``Problem.headline``, :mod:`hw3lib.problems.headline`), beside the baseline or the
course report's figure the code has for it; and per problem its training time and runs, from the runs' own
checkpoints (:func:`training_record`).

>>> rows = glance_rows(["p3_dann"], {"p3_dann": "ok"}, Path("runs/quick"), "embedded")
>>> rows[2]["run"]     # ["usps → mnistm: source-only 29.10 · DANN 40.20 · target-only 90.00", ...]

A problem not in the report, failed, or without readable metrics gets a row that says so.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping

from hw3lib import problems
from hw3lib.report.profile import NOTEBOOKS

DATA_WORDS = {"embedded": "embedded synthetic", "real": "real course data"}

TITLES = {p.key: p.title for p in problems.ordered()}  # the registered problems' (hw3lib.problems)


def glance_rows(selected: Iterable[str], status: Mapping[str, str], runs_root: str | Path,
                data_kind: str) -> list[dict[str, Any]]:
    """One row per problem of the course, in order: ``{key, title, href, data, run, reference, note}`` (``run`` and
    ``reference``: lines of text; ``note``: why there are none)."""

    selected = list(selected)
    rows = []
    for key in NOTEBOOKS:
        row = {"key": key, "title": TITLES[key], "href": None, "data": "—", "run": [], "reference": [], "note": ""}
        rows.append(row)
        if key not in selected:
            row["note"] = "not in this report (hw3 report --only)"
            continue
        row["href"] = f"#section-{key}"
        if status.get(key) != "ok":
            row["note"] = f"{status.get(key, 'not run')}: no results (its section shows why)"
            continue
        path = Path(runs_root) / key / "metrics.json"
        try:
            metrics = json.loads(path.read_text())
            headline = problems.get(key).headline
            row["run"], row["reference"] = headline(metrics) if headline else (
                [f"metrics: {', '.join(sorted(metrics))}"], [])
        except (OSError, ValueError) as exc:
            row["note"] = f"no readable metrics.json ({type(exc).__name__}: {path})"
            continue
        except (KeyError, TypeError, IndexError) as exc:
            row["note"] = f"metrics.json lacks a number the summary reads ({type(exc).__name__}: {exc})"
            continue
        kind = (metrics.get("data") or {}).get("kind") if isinstance(metrics.get("data"), dict) else None
        row["data"] = DATA_WORDS.get(kind or data_kind, kind or data_kind)
    return rows


def training_record(planned: Iterable[Any], finished_before: set) -> dict[str, dict[str, Any]]:
    """Per problem, from its planned runs' checkpoints after the build: ``{"train_s", "trained", "loaded",
    "unfinished"}`` — ``train_s`` the sum of every finished run's ``extra["wall_s"]`` (as ``hw3 results`` shows it),
    ``trained`` the runs this build finished, ``loaded`` those finished before it (``finished_before``: their run
    folders). A folder two problems use (Problem 4 reads Problem 3's bounds) counts for the first."""
    from hw3lib.results import read_run

    seen: set = set()
    out: dict[str, dict[str, Any]] = {}
    for run in planned:
        if getattr(run, "later", False) or run.run_dir in seen:  # steps a later rung would add: not a run
            continue
        seen.add(run.run_dir)
        rec = out.setdefault(run.problem, {"train_s": 0.0, "trained": 0, "loaded": 0, "unfinished": 0})
        try:
            record = read_run(run.run_dir)
        except ValueError:
            record = None
        # a development run the successive halving stopped at its rung is done as planned
        stopped = getattr(run, "until", None) is not None and run.done >= run.steps
        if record is None or not (record.finished or stopped):
            rec["unfinished"] += 1
            continue
        rec["train_s"] += record.wall_s or 0.0
        rec["loaded" if run.run_dir in finished_before else "trained"] += 1
    return out
